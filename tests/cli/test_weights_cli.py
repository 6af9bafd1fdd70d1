"""``main.py weights SOURCE --from W [--json]``: the report, exit statuses 0/2, and the progress bar."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import torchvision

from core.cli import main
from core.cli.progress import bar, cli_progress
from core.cli.weights import format_report
from core.project import save_project
from core.training.weights_download import MIRROR_ENV
from templates import build_template
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save({"state_dict": torchvision.models.resnet18(weights=None).state_dict()}, path)
    return path


def test_json_report_for_a_new_head(resnet18_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = save_project(build_template("resnet18", num_classes=10), tmp_path / "r10.json")
    assert main(["weights", str(project), "--from", str(resnet18_file), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"source": str(resnet18_file), "kept": 120, "reinitialized": ["fc.weight", "fc.bias"],
                                   "missing": [], "unexpected": []}
    assert out.out.count("\n") == 1 and out.err == ""  # a local file: no progress bar


def test_text_report(resnet18_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "template:resnet18", "--from", str(resnet18_file)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"Loaded 122 tensors from {resnet18_file}"
    assert text[1].startswith("  sha256: ") and len(text) == 2


def test_text_report_of_a_new_head_and_the_weights_input() -> None:
    from core.training.weights import WeightsReport, resolve

    report = WeightsReport("ResNet18_Weights.IMAGENET1K_V1", "ab" * 32, ["conv1.weight"], ["fc.weight"], ["x"],
                           ["y"], shapes={"fc.weight": ((1000, 512), (10, 512))}, prefix="module.", last_key="fc.bias")
    assert format_report(report, resolve("DEFAULT", "resnet18").transforms()).splitlines() == [
        "Loaded 1 tensor from ResNet18_Weights.IMAGENET1K_V1; fc.weight reinitialized (shape changed: 1000→10 "
        "outputs); 1 missing, left at their initial values (x); 1 in the file unused (y)",
        f"  sha256: {'ab' * 32}", "  the file's key prefix 'module.' was stripped",
        "  reinitialized (shape changed; left at their initial values):",
        "    fc.weight: file [1000, 512] → network [10, 512]",
        "  missing (not in the file; left at their initial values):", "    x",
        "  unexpected (in the file, not in the network; unused):", "    y",
        "  input these weights expect: resize 256 → centre crop 224, mean [0.485, 0.456, 0.406], "
        "std [0.229, 0.224, 0.225]"]


def test_unusable_weights_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
            (["template:lenet5", "--from", "DEFAULT"], "mirrors none"),
            (["template:resnet18", "--from", str(tmp_path / "none.pth")], "no weights file at"),
            (["template:resnet18", "--from", "IMAGENET1K_V7"], "its weights: DEFAULT, IMAGENET1K_V1"),
            (["template:nonet", "--from", "DEFAULT"], "no template named 'nonet'")):
        assert main(["weights", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_offline_download_subprocess(tmp_path: Path) -> None:
    """The whole command, as a user runs it offline: one plain line naming URL, cache path and size."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "TORCH_HOME": str(tmp_path / "th"), MIRROR_ENV: f"http://127.0.0.1:{port}"}
    out = subprocess.run([sys.executable, "main.py", "weights", "template:resnet18", "--from", "DEFAULT"], cwd=ROOT,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2 and out.stdout == ""
    cache = tmp_path / "th" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert out.stderr.startswith(f"error: cannot download http://127.0.0.1:{port}/resnet18-f37072fd.pth (")
    assert out.stderr.endswith(f"put that file (44.66 MiB) at {cache}\n") and out.stderr.count("\n") == 1


@pytest.fixture()
def serve_wrong_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    body = b"\0" * (3 << 20)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/")
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_draws_a_bar_and_refuses_a_wrong_hash(serve_wrong_file: None, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "template:resnet18", "--from", "DEFAULT", "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    bar_line, error = out.err.split("\n")[:2]
    assert bar_line.startswith("\rresnet18-f37072fd.pth ") and "100%|" in bar_line and "3.00 MiB/3.00 MiB" in bar_line
    assert error.startswith("error: http://127.0.0.1:") and "not f37072fd as its name says; it was not kept" in error
    assert not any((tmp_path / "th" / "hub" / "checkpoints").iterdir())


def test_progress_bar_is_one_line_redrawn() -> None:
    stream = io.StringIO()
    progress = cli_progress(stream, "w.pth")
    progress(0, 4 << 20)
    progress(1 << 20, 4 << 20)  # within 0.1 s of the last redraw: skipped
    progress(4 << 20, 4 << 20)
    progress(4 << 20, 4 << 20)  # after completion: nothing more
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") == 2
    assert text.startswith("\rw.pth   0%|" + " " * 25 + "| 0 B/4.00 MiB")
    assert "w.pth 100%|" + "█" * 25 + "| 4.00 MiB/4.00 MiB" in text
    assert bar(0.5, 4) == "██  " and bar(0.0625, 2) == "▏ "
