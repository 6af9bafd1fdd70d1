"""Weights in (issue 13, DESIGN.md §11): every accepted file layout, the report, and downloads from 127.0.0.1.

Weights files are made here from torchvision models built with ``weights=None``; downloads come
from a small HTTP server on 127.0.0.1 through ``NETCANVAS_WEIGHTS_MIRROR``, into a torch hub
folder under ``tmp_path`` (``TORCH_HOME``). Nothing here reaches the internet.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import torchvision

from core.compiler import compile_graph
from core.project import ProjectError, load_project, save_project
from core.sources import load_source
from core.training.safetensors_read import SafetensorsError, parse_safetensors
from core.training.weights import (
    WeightsCancelled,
    WeightsError,
    WeightsSpec,
    apply_weights,
    fetch,
    load_weights,
    project_arch,
    project_pipeline,
    project_weights,
    resolve,
    set_project_weights,
)
from core.training.weights_download import MIRROR_ENV, file_sha256
from templates import build_template
from tests.conftest import ROOT

# ------------------------------------------------------------------------------------------ helpers

_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.int64: "I64", torch.bfloat16: "BF16"}


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """A minimal .safetensors writer (the format's header + little-endian buffer), to test our reader."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, at = [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys: list[str]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # running stats unlike a fresh BN's, so a kept buffer is told from an initial one
        for name, buf in model.named_buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5) if name.endswith("running_var") else buf.normal_()
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def resnet18_net() -> torch.nn.Module:
    return compile_graph(build_template("resnet18").graph)


LAYOUTS = ("bare", "model", "state_dict", "module_prefix", "backbone_prefix", "checkpoint", "safetensors")


def _write_layout(layout: str, state: dict[str, torch.Tensor], folder: Path) -> Path:
    path = folder / f"{layout}.{'safetensors' if layout == 'safetensors' else 'pth'}"
    payload: object = {
        "bare": state,
        "model": {"model": state, "epoch": 3},
        "state_dict": {"state_dict": state, "optimizer": {"lr": 0.1}},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
        "backbone_prefix": {"model": {f"backbone.{k}": v for k, v in state.items()}},
        "checkpoint": {"format": "netcanvas-checkpoint", "version": 1, "epoch": 1, "model": state, "optimizer": {}},
    }.get(layout)
    if layout == "safetensors":
        write_safetensors(state, path)
    else:
        torch.save(payload, path)
    return path


# ----------------------------------------------------------------------------------- file layouts


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_loads_every_tensor(layout: str, resnet18_state: dict[str, torch.Tensor],
                                         resnet18_net: torch.nn.Module, tmp_path: Path) -> None:
    path = _write_layout(layout, resnet18_state, tmp_path)
    with torch.no_grad():
        for t in resnet18_net.state_dict().values():
            t.zero_()
    report = apply_weights(resnet18_net, str(path), "resnet18")
    assert report.missing == [] and report.unexpected == [] and report.reinitialized == []
    assert len(report.kept) == len(resnet18_state) == 122
    assert _same(resnet18_net.state_dict(), resnet18_state, list(resnet18_state))
    assert report.sha256 == file_sha256(path) and report.source == str(path)
    assert report.prefix == {"module_prefix": "module.", "backbone_prefix": "backbone."}.get(layout, "")
    assert report.summary() == f"Loaded 122 tensors from {path}"


def test_a_new_head_is_reinitialized_and_the_rest_kept(resnet18_state: dict[str, torch.Tensor],
                                                       tmp_path: Path) -> None:
    path = _write_layout("bare", resnet18_state, tmp_path)
    project = build_template("resnet18", num_classes=10)
    torch.manual_seed(1)
    net = compile_graph(project.graph)
    fresh_head = net.state_dict()["fc.weight"].clone()
    report = apply_weights(net, str(path), None)
    assert report.reinitialized == ["fc.weight", "fc.bias"] and report.missing == [] and report.unexpected == []
    assert len(report.kept) == 120
    assert _same(net.state_dict(), resnet18_state, report.kept)
    assert torch.equal(net.state_dict()["fc.weight"], fresh_head)  # left at its fresh init
    assert report.shapes["fc.weight"] == ((1000, 512), (10, 512))
    assert report.summary() == (f"Loaded 120 tensors from {path}; fc.weight, fc.bias reinitialized "
                                "(shape changed: 1000→10 classes)")
    assert report.to_dict() == {"source": str(path), "kept": 120, "reinitialized": ["fc.weight", "fc.bias"],
                                "missing": [], "unexpected": []}
    status = report.node_status(project.graph)
    assert status["fc"] == "new" and status["conv1"] == "pretrained" and status["layer4.1.bn2"] == "pretrained"
    assert "relu" not in status and "layer1.0.add" not in status  # nodes without tensors
    assert set(status.values()) == {"new", "pretrained"}


def test_a_foreign_file_reports_missing_and_unexpected_and_never_raises(tmp_path: Path) -> None:
    lenet = load_project(ROOT / "resources" / "demo_lenet.json")
    lenet_net = compile_graph(lenet.graph)
    path = tmp_path / "lenet.pth"
    torch.save(lenet_net.state_dict(), path)
    project = build_template("resnet18", num_classes=10)
    net = compile_graph(project.graph)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    report = apply_weights(net, str(path), None)
    theirs = list(lenet_net.state_dict())
    assert report.kept == [] and report.reinitialized == ["conv1.weight"]  # the one name both share
    assert report.unexpected == [k for k in theirs if k != "conv1.weight"]
    assert len(report.missing) == 121 and _same(net.state_dict(), before, list(before))
    assert set(report.node_status(project.graph).values()) == {"new"}
    assert "missing, left at their initial values" in report.summary()


def test_partial_node_status_and_a_prefix_only_some_keys_carry(resnet18_state: dict[str, torch.Tensor]) -> None:
    project = build_template("resnet18")
    net = compile_graph(project.graph)
    state = {k: v for k, v in resnet18_state.items() if k != "bn1.running_var"}
    report = load_weights(net, state, "test")
    assert report.missing == ["bn1.running_var"]
    status = report.node_status(project.graph)
    assert status["bn1"] == "partial" and status["conv1"] == "pretrained"


def test_mobilenet_import_mirrors_torchvision_and_loads_every_tensor(tmp_path: Path) -> None:
    project = load_source("torchvision:mobilenet_v3_small")
    assert project_arch(project) == "mobilenet_v3_small"
    torch.manual_seed(2)
    state = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    path = tmp_path / "mnv3.pth"
    torch.save({"model": state}, path)
    net = compile_graph(project.graph)
    report = apply_weights(net, str(path), project_arch(project))
    assert report.reinitialized == report.missing == report.unexpected == []
    assert _same(net.state_dict(), state, list(state)) and len(report.kept) == len(state)


def test_a_run_folder_is_a_weights_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    demo = str(ROOT / "resources" / "demo_lenet.json")
    run = tmp_path / "run"
    assert main(["train", demo, "--dataset", "synthetic:3,32,32,10", "--train-size", "64", "--val-size", "32",
                 "--batch-size", "32", "--device", "cpu", "--epochs", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    trained = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    net = compile_graph(load_project(demo).graph)
    for source in (run, run / "checkpoints" / "last.pt"):
        report = apply_weights(net, str(source), None)
        assert report.missing == report.unexpected == report.reinitialized == []
        assert _same(net.state_dict(), trained, list(trained))


@pytest.mark.parametrize(("content", "message"), [
    (b"not a torch file", "damaged or not a weights file"),
    (None, "contains code"),
    ({"epoch": 3, "lr": 0.1}, "holds no tensors by name"),
])
def test_unreadable_files_are_one_line_errors(content: object, message: str, tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content if content is not None else torch.nn.Linear(2, 2), path)  # None: a whole module
    with pytest.raises(WeightsError, match=message) as info:
        fetch(resolve(str(path), None))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_safetensors_reader_round_trips_dtypes_and_refuses_damage(tmp_path: Path) -> None:
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5), "c": torch.randn(2).half(), "d": torch.zeros(0, 3),
               "e": torch.randn(2, 2).bfloat16()}
    path = tmp_path / "t.safetensors"
    write_safetensors(tensors, path)
    data = path.read_bytes()
    back = parse_safetensors(data)
    assert list(back) == list(tensors)
    assert all(torch.equal(back[k], tensors[k]) and back[k].dtype == tensors[k].dtype for k in tensors)
    for damaged, message in ((data[:-4], "data_offsets"), (data[:6], "not a safetensors file"),
                             (struct.pack("<Q", 10**9) + data[8:], "truncated"),
                             (struct.pack("<Q", 2) + b"[]", "not a JSON object")):
        with pytest.raises(SafetensorsError, match=message):
            parse_safetensors(damaged, "t.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(data[:-4])
    with pytest.raises(WeightsError, match=r"bad\.safetensors: tensor 'e'"):
        fetch(resolve(str(tmp_path / "bad.safetensors"), None))


# ------------------------------------------------------------------------------------------ resolve


def test_resolve_enum_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    spec = resolve("DEFAULT", "resnet18")
    assert spec.label == "ResNet18_Weights.IMAGENET1K_V1" and spec.arch == "resnet18" and not spec.is_file
    assert spec.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert spec.file_size == round(44.661 * 2**20)
    pipeline = spec.transforms()
    assert pipeline is not None and (pipeline.resize, pipeline.crop) == (256, 224)
    assert pipeline.mean == (0.485, 0.456, 0.406) and pipeline.std == (0.229, 0.224, 0.225)
    assert resolve("imagenet1k_v2", "resnet50").label == "ResNet50_Weights.IMAGENET1K_V2"
    assert resolve("ResNet50_Weights.IMAGENET1K_V2", None).arch == "resnet50"
    assert resolve("MobileNet_V3_Small_Weights.DEFAULT", None).arch == "mobilenet_v3_small"
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/models")
    assert resolve("DEFAULT", "resnet18").url == "http://mirror.example/models/resnet18-f37072fd.pth"


def test_a_name_stays_a_name_beside_a_file_of_that_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       resnet18_state: dict[str, torch.Tensor]) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save(resnet18_state, tmp_path / "DEFAULT")
    torch.save(resnet18_state, tmp_path / "mine")
    assert resolve("DEFAULT", "resnet18").label == "ResNet18_Weights.IMAGENET1K_V1"
    assert resolve("./DEFAULT", "resnet18").path == Path("DEFAULT")
    with pytest.raises(WeightsError, match=r"its weights: DEFAULT, IMAGENET1K_V1 \(for the file mine, say ./mine\)"):
        resolve("mine", "resnet18")


@pytest.mark.parametrize(("spec", "arch", "message"), [
    ("IMAGENET1K_V9", "resnet18", "resnet18 has no weights 'IMAGENET1K_V9'; its weights: DEFAULT, IMAGENET1K_V1"),
    ("DEFAULT", None, "mirrors none"),
    ("DEFAULT", "resnet1", "did you mean resnet18"),
    ("Foo_Weights.X", None, "no weights enum 'Foo_Weights'"),
    ("ResNet50_Weights.V3", None, "its members: DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2"),
    ("missing/w.pth", None, "no weights file at missing/w.pth"),
    ("", None, "no weights source given"),
    ("two words", None, "neither a file nor a torchvision weights name"),
])
def test_resolve_errors_are_one_line(spec: str, arch: str | None, message: str) -> None:
    with pytest.raises(WeightsError, match=message) as info:
        resolve(spec, arch)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------- project


def test_project_records_its_weights_and_its_torchvision_model(tmp_path: Path) -> None:
    project = build_template("resnet18", num_classes=10)
    assert project.extra["torchvision"] == "resnet18" and project_arch(project) == "resnet18"
    assert project_weights(project) is None
    assert "torchvision" not in build_template("lenet5").extra and project_arch(build_template("lenet5")) is None
    net = compile_graph(project.graph)
    report = load_weights(net, {}, "ResNet18_Weights.IMAGENET1K_V1", "ab" * 32)
    set_project_weights(project, report)
    again = load_project(save_project(project, tmp_path / "p.json"))
    assert project_weights(again) == {"source": "ResNet18_Weights.IMAGENET1K_V1", "sha256": "ab" * 32}
    assert project_arch(again) == "resnet18"
    pipeline = project_pipeline(again)  # the folder dataset's resize/crop/mean/std for these weights
    assert pipeline is not None and pipeline.to_dict() == {
        "resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear"}
    del again.extra["torchvision"]
    assert project_arch(again) == "resnet18"  # from the recorded qualified weights name
    again.extra["weights"] = {"source": "runs/x/checkpoints/last.pt"}
    assert project_pipeline(again) is None  # a file does not say
    for bad, where in (({"source": ""}, "weights.source"), ("x", "weights"),
                       ({"source": "DEFAULT", "sha256": "zz"}, "weights.sha256")):
        again.extra["weights"] = bad
        with pytest.raises(ProjectError) as info:
            project_weights(again)
        assert info.value.where == where and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------- download


class _Files:
    """What the test server serves, and what it was asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.short = False  # announce the full length, send half, close: a dropped connection


@pytest.fixture()
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, _Files]]:
    served = _Files()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            body = served.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            sent = body[:len(body) // 2] if served.short else body
            for i in range(0, len(sent), 1 << 16):
                try:
                    self.wfile.write(sent[i:i + (1 << 16)])
                except (BrokenPipeError, ConnectionResetError):  # the client cancelled
                    return

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(MIRROR_ENV, base)
    try:
        yield base, served
    finally:
        httpd.shutdown()
        httpd.server_close()


def _mobilenet_bytes() -> tuple[dict[str, torch.Tensor], bytes]:
    torch.manual_seed(3)
    state = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    return state, buf.getvalue()


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_download_checks_the_hash_and_caches_the_file(server: tuple[str, _Files], tmp_path: Path) -> None:
    import hashlib

    base, served = server
    state, data = _mobilenet_bytes()
    sha = hashlib.sha256(data).hexdigest()
    name = f"mobilenet_v3_small-{sha[:8]}.pth"
    served.files[name] = data
    spec = WeightsSpec(label="test weights", url=base + name, file_size=len(data))
    assert spec.cache_path == _cache(tmp_path) / name
    seen: list[tuple[int, int]] = []
    got, digest = fetch(spec, progress=lambda done, total: seen.append((done, total)))
    assert digest == sha and _same(got, state, list(state))
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data)) and len(seen) > 2
    assert [p.name for p in _cache(tmp_path).iterdir()] == [name]
    again, digest2 = fetch(spec)  # from the cache: no second request
    assert digest2 == sha and served.requests == [f"/{name}"] and _same(again, state, list(state))


def test_a_wrong_hash_keeps_nothing(server: tuple[str, _Files], tmp_path: Path) -> None:
    _, served = server
    _state, data = _mobilenet_bytes()
    served.files["resnet18-f37072fd.pth"] = data  # not the file whose hash the name carries
    spec = resolve("DEFAULT", "resnet18")
    with pytest.raises(WeightsError, match=r"sha256 starts [0-9a-f]{8}, not f37072fd") as info:
        fetch(spec)
    assert "\n" not in str(info.value)
    assert list(_cache(tmp_path).iterdir()) == []


def test_cancel_mid_download_writes_nothing(server: tuple[str, _Files], tmp_path: Path) -> None:
    base, served = server
    _state, data = _mobilenet_bytes()
    served.files["mnv3-0123abcd.pth"] = data
    seen: list[int] = []
    spec = WeightsSpec(label="test", url=base + "mnv3-0123abcd.pth")
    with pytest.raises(WeightsCancelled, match="cancelled; nothing was saved"):
        fetch(spec, progress=lambda done, total: seen.append(done), cancel=lambda: len(seen) > 2)
    assert 0 < seen[-1] < len(data)  # it stopped partway
    assert list(_cache(tmp_path).iterdir()) == []


def test_a_dropped_connection_writes_nothing(server: tuple[str, _Files], tmp_path: Path) -> None:
    base, served = server
    served.files["w.pth"] = b"x" * (3 << 20)
    served.short = True
    with pytest.raises(WeightsError) as info:
        fetch(WeightsSpec(label="test", url=base + "w.pth"))
    assert str(info.value) == (f"cannot download {base}w.pth (the connection closed after {3 << 19} of {3 << 20} "
                               f"bytes); without a network, put that file (3.00 MiB) at {_cache(tmp_path) / 'w.pth'}")
    assert list(_cache(tmp_path).iterdir()) == []


def test_offline_is_one_plain_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/")
    spec = resolve("DEFAULT", "resnet18")
    with pytest.raises(WeightsError) as info:
        fetch(spec)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"cannot download http://127.0.0.1:{port}/resnet18-f37072fd.pth (")
    assert text.endswith(f"put that file (44.66 MiB) at {_cache(tmp_path) / 'resnet18-f37072fd.pth'}")
    assert not any(_cache(tmp_path).iterdir())
