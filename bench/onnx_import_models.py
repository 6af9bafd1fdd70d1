"""Benchmark: torchvision models exported to ONNX and imported back as NetCanvas graphs.

For each model (resnet18, mobilenet_v2, squeezenet1_0 by default; random weights, BatchNorm
running statistics that are not the identity) and each exporter:

- ``ts``: torch's TorchScript exporter with constant folding off, so BatchNormalization stays a node;
- ``ts-folded``: the same exporter as people usually run it (BatchNorm folded into the convolution);
- ``dynamo``: ``torch.onnx.export``'s default (the one ``main.py export -o x.onnx`` uses), whose
  optimiser folds BatchNorm and drops all-zero convolution biases;

prints the export and import times, the layer count, the parameters of the source module and of
the import, and the largest difference of the compiled import's output from onnxruntime's and from
the source module's on one random batch of two.

Run: ``.venv/bin/python bench/onnx_import_models.py [--models resnet18,mobilenet_v2]
[--exporters ts,ts-folded,dynamo]`` (dynamo takes 10–50 s a model).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.compiler import compile_graph
from core.importer.onnx_import import import_onnx

EXPORTERS = ("ts", "ts-folded", "dynamo")


def _source(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.get_model(name).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _export(model: nn.Module, exporter: str, path: Path) -> None:
    x = torch.zeros(2, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(model, (x,), str(path), input_names=["x"], external_data=False, verbose=False,
                              dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}},
                              do_constant_folding=exporter == "ts-folded",
                              training=torch.onnx.TrainingMode.EVAL if exporter == "ts-folded"
                              else torch.onnx.TrainingMode.PRESERVE)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def run(names: list[str], exporters: list[str]) -> None:
    import onnxruntime as ort

    print(f"{'model':<15} {'exporter':<10} {'export s':>8} {'import s':>8} {'layers':>6} {'params src':>11} "
          f"{'params imp':>11} {'max|imp-ort|':>12} {'max|imp-src|':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            source = _source(name)
            x = torch.randn(2, 3, 224, 224)
            with torch.no_grad():
                want = source(x).numpy()
            for exporter in exporters:
                path = Path(tmp) / f"{name}-{exporter}.onnx"
                t0 = time.perf_counter()
                _export(source, exporter, path)
                t1 = time.perf_counter()
                graph, state = import_onnx(path)
                t2 = time.perf_counter()
                model = compile_graph(graph, seed=0)
                model.load_state_dict(state, strict=True)
                with torch.no_grad():
                    got = model.eval()(x).numpy()
                session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                (ref,) = session.run(None, {"x": x.numpy()})
                layers = sum(1 for n in graph.nodes.values() if n.type not in ("Input", "Output"))
                print(f"{name:<15} {exporter:<10} {t1 - t0:8.1f} {t2 - t1:8.2f} {layers:6d} {_params(source):11,d} "
                      f"{_params(model):11,d} {float(np.abs(got - ref).max()):12.2e} "
                      f"{float(np.abs(got - want).max()):12.2e}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--models", default="resnet18,mobilenet_v2,squeezenet1_0")
    p.add_argument("--exporters", default=",".join(EXPORTERS))
    args = p.parse_args()
    exporters = [e for e in args.exporters.split(",") if e]
    unknown = [e for e in exporters if e not in EXPORTERS]
    if unknown:
        p.error(f"unknown exporter {unknown[0]!r}; choose from {', '.join(EXPORTERS)}")
    run([m for m in args.models.split(",") if m], exporters)


if __name__ == "__main__":
    main()
