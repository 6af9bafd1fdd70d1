"""ONNX export: LeNet and a two-output graph checked with onnxruntime; the missing-package message."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from core.compiler import compile_graph
from core.export import ExportError, export_onnx
from core.project import load_project
from tests.conftest import ROOT
from tests.core.test_export import nested_graph


def _run_onnx(path: str, x: torch.Tensor) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    return session.run(None, {"x": x.numpy()})


@pytest.mark.slow  # torch's ONNX exporter takes a few seconds on its first use
def test_lenet_onnx_matches_torch_with_a_dynamic_batch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph = load_project(ROOT / "resources" / "demo_lenet.json").graph
    model = compile_graph(graph, seed=3)
    model.train()
    path = export_onnx(graph, tmp_path / "lenet.onnx", model=model)
    assert model.training  # the caller's mode is restored
    assert list(tmp_path.iterdir()) == [path]  # one self-contained file, no temporaries left
    x = torch.randn(5, 3, 32, 32)  # traced with batch 1, run with 5
    (got,) = _run_onnx(str(path), x)
    with torch.no_grad():
        want = model.eval()(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_two_outputs_and_batchnorm_in_eval_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph = nested_graph()
    model = compile_graph(graph, seed=0)
    with torch.no_grad():
        model.get_submodule("features.0.bn").running_var.fill_(2.0)
    path = export_onnx(graph, tmp_path / "nested.onnx", model=model)
    x = torch.randn(2, 3, 6, 6)
    got = _run_onnx(str(path), x)
    with torch.no_grad():
        want = model.eval()(x)
    assert len(got) == 2
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("missing", ["onnx", "onnxscript"])
def test_missing_packages_give_one_clear_line(tmp_path, monkeypatch, missing) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` raise ImportError
    graph = load_project(ROOT / "resources" / "demo_lenet.json").graph
    with pytest.raises(ExportError) as info:
        export_onnx(graph, tmp_path / "x.onnx")
    message = str(info.value)
    assert "\n" not in message
    assert f"({missing} is not installed)" in message and "pip install 'netcanvas[onnx]'" in message
    assert not (tmp_path / "x.onnx").exists()


def test_an_onnx_export_removes_what_a_killed_export_left(tmp_path) -> None:
    import os
    import time

    graph = load_project(ROOT / "resources" / "demo_lenet.json").graph
    target = tmp_path / "net.onnx"
    stale = tmp_path / ".net.onnx.k1ll3d0x.onnx"  # a killed export's temporary file
    fresh = tmp_path / ".net.onnx.wr1t1ng0.onnx"  # another export in progress right now
    for f in (stale, fresh):
        f.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    export_onnx(graph, target)
    assert target.exists() and not stale.exists() and fresh.exists()
