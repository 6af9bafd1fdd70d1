"""Benchmark: the compiled ResNet-18 template next to torchvision's ``resnet18()``, forward + backward.

Both models get the same weights (the compiled model loads torchvision's ``state_dict`` with
``strict=True``, which this script checks first, along with equal eval-mode outputs), the same
input batch, and the same step: ``zero_grad``, forward, cross-entropy loss, backward. Steps are
interleaved (A, B, B, A, …) within one process so that clock drift, thermal state and other load
on the machine hit both alike. Reported: each model's median step time, and the ratio
compiled / torchvision as the median of the per-round ratios (the budget's figure: the two steps
of a round ran back to back, so load that changes slowly cancels), next to the ratio of medians
and of the fastest steps (DESIGN.md §10 budget: within 2 %).

Defaults suit a small, shared CPU machine: batch 8 at 3×128×128, one thread, and the process's
CPU time per step (``--clock cpu``), which other processes competing for the cores do not
inflate the way they inflate elapsed time. On a GPU use ``--device cuda`` (elapsed time).

Run: ``.venv/bin/python bench/compile.py`` (about a minute on 2 cores);
options: ``--batch 16 --size 224 --rounds 20 --threads 2 --device cuda``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET = 0.02  # DESIGN.md §10: within 2 %


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="input height and width")
    parser.add_argument("--rounds", type=int, default=30, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                        help="torch threads (1 by default: steadier on a shared machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clock", choices=("cpu", "wall"), default=None,
                        help="cpu: this process's CPU time (default on CPU: a busy shared machine's other "
                             "processes don't count); wall: elapsed time (default on CUDA)")
    parser.add_argument("--inplace-relu", action="store_true",
                        help="set inplace=True on the template's ReLUs, as torchvision's ResNet has them")
    args = parser.parse_args()

    import torch
    import torchvision

    from core.compiler import compile_graph
    from templates import build_template

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock_name = args.clock or ("wall" if device.type == "cuda" else "cpu")
    clock = time.perf_counter if clock_name == "wall" else time.process_time
    project = build_template("resnet18")
    if args.inplace_relu:
        for node in list(project.graph.nodes.values()):
            if node.type == "ReLU":
                project.graph.set_param(node.id, "inplace", True)
    compiled = compile_graph(project.graph, seed=0)
    reference = torchvision.models.resnet18()
    compiled.load_state_dict(reference.state_dict(), strict=True)
    compiled.to(device)
    reference.to(device)

    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    compiled.eval()
    reference.eval()
    with torch.no_grad():
        diff = (compiled(x) - reference(x)).abs().max().item()
    print(f"strict load of torchvision's state_dict: ok; max |output difference| in eval: {diff:.2e}")
    if diff > 1e-4:
        print("FAIL: the compiled model does not compute what torchvision's does")
        return 1
    compiled.train()
    reference.train()

    def step(model: torch.nn.Module) -> Callable[[], float]:
        loss_fn = torch.nn.CrossEntropyLoss()

        def run() -> float:
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = clock()
            loss = loss_fn(model(x), y)
            loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return clock() - t0

        return run

    runs = {"compiled": step(compiled), "torchvision": step(reference)}
    for _ in range(args.warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for i in range(args.rounds):
        for name in order if i % 2 == 0 else reversed(order):  # ABBA: neither always goes first
            times[name].append(runs[name]())

    med = {name: statistics.median(t) for name, t in times.items()}
    # Each round's two steps ran back to back: their ratio cancels slow changes in machine load.
    paired = statistics.median(a / b for a, b in zip(times["compiled"], times["torchvision"], strict=True))
    ratio = med["compiled"] / med["torchvision"]
    print(f"ResNet-18{' (in-place ReLUs)' if args.inplace_relu else ''}, forward+backward, "
          f"batch {args.batch} at 3×{args.size}×{args.size}, "
          f"{args.threads} thread(s), {args.device}, {clock_name} time, median of {args.rounds} interleaved rounds:")
    for name, t in times.items():
        print(f"  {name:12s} {med[name] * 1e3:9.1f} ms/step   (min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f})")
    fastest = min(times["compiled"]) / min(times["torchvision"])
    verdict = "within" if abs(paired - 1) <= BUDGET else "OUTSIDE"
    print(f"  ratio compiled / torchvision: {paired:.3f} (median of per-round ratios; {verdict} the "
          f"±{BUDGET:.0%} budget), {ratio:.3f} (ratio of medians), {fastest:.3f} (ratio of fastest steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
