"""Benchmark: loading a ResNet-18 weights file, NetCanvas's way next to the plain torch way.

A: ``core.training.weights.apply_weights(net, FILE, "resnet18")`` into the compiled ResNet-18
template: resolve, read with ``weights_only=True``, sha256 of the file (for the project's record),
prefix matching, shape checks, the report, ``load_state_dict(strict=False)``.
B: ``torchvision.models.resnet18().load_state_dict(torch.load(FILE, weights_only=True))``, what a
hand-written script does (no hash, no report).
Also: the same file as ``.safetensors`` through our reader (A on that file).

Rounds interleave A, B, C so machine load hits all alike; reported are the median times and the
ratios A/B and C/B (wall clock: this is file reading plus copying). The weights are random
(``weights=None``), the same size and layout as torchvision's 44.7 MiB file.

Run: ``.venv/bin/python bench/weights_load.py [--rounds 15]`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    import torch
    import torchvision

    from core.compiler import compile_graph
    from core.training.weights import apply_weights
    from templates import build_template
    from tests.core.test_weights import write_safetensors

    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    net = compile_graph(build_template("resnet18").graph)
    plain = torchvision.models.resnet18(weights=None)
    with tempfile.TemporaryDirectory() as folder:
        pth, st = Path(folder) / "resnet18.pth", Path(folder) / "resnet18.safetensors"
        torch.save(state, pth)
        write_safetensors(state, st)
        size = pth.stat().st_size
        report = apply_weights(net, str(pth), "resnet18")
        assert len(report.kept) == 122 and not (report.missing or report.unexpected or report.reinitialized)
        assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())

        def a() -> None:
            apply_weights(net, str(pth), "resnet18")

        def b() -> None:
            plain.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))

        def c() -> None:
            apply_weights(net, str(st), "resnet18")

        times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        for _ in range(2):  # warm the page cache and the allocator
            a(), b(), c()
        for i in range(args.rounds):
            order = (("a", a), ("b", b), ("c", c)) if i % 2 == 0 else (("c", c), ("b", b), ("a", a))
            for key, fn in order:
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ResNet-18 weights ({size / 2**20:.1f} MiB), median of {args.rounds} rounds, wall clock:")
    print(f"  A NetCanvas apply_weights (.pth, hash + report): {med['a'] * 1e3:7.1f} ms")
    print(f"  B torch.load + load_state_dict (plain script):   {med['b'] * 1e3:7.1f} ms")
    print(f"  C NetCanvas apply_weights (.safetensors):        {med['c'] * 1e3:7.1f} ms")
    print(f"  ratio A/B: {med['a'] / med['b']:.2f}   ratio C/B: {med['c'] / med['b']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
