"""Benchmark: segmentation training through the engine next to a hand-written loop on the same tensors.

Same data (``shapes-seg``: uint8 images and uint8 masks in memory), same model (compiled from the
same graph with the same seed: identical initial weights), same batch size, optimizer and loss, in
one process, interleaved round by round so machine load hits both alike. Timed: the training pass
of one epoch (validation excluded), as images per second.

- **engine**: ``Trainer`` on the ``segmentation`` task as ``main.py train`` runs it: reporting on
  (batch events at its 20/s rate), the per-step pixel accuracy it keeps on the device; augmentation
  off, as in the hand loop; its default channels_last layout for convolutional models.
- **overlay**: the same with a probe receiver, as the Training dock runs it: the live mask overlay,
  which a segmentation run refreshes even with no node probed (a forward pass of the 4 probe images
  in eval mode: at the epoch's first report, then every ``probe_interval`` = 1 s while the probes'
  time stays within a fiftieth of the epoch, ``core.training.probes.ProbeCadence``). Each round
  prints how many refreshes its epoch made.
- **hand**: the same tensors on the device; per step an index gather of images and masks,
  normalisation, forward, per-pixel ``F.cross_entropy(ignore_index=255)``, backward, SGD step;
  losses accumulated on the device (no per-step sync); the same channels_last layout.

Budget: engine ≥ 0.95× hand and overlay ≥ 0.95× hand (training as the user runs it, the Training
dock open), each the median of the rounds' own ratios.

Measured (issue 15, 2-core CPU shared with other jobs, load 3–8, ``--rounds 5 --train 2048``):
before, the overlay's mask-only probes waited max(1 s, 19 × the last probe) and the overlay row ran
at 0.92× hand (median, worst 0.854) where engine ran at 0.97×. On a loaded CPU a probe of 4 images
takes 0.05–0.27 s instead of ~10 ms (each small parallel op waits for a descheduled thread), so that
rule spent 4.0–4.7 % of every epoch probing (14–18 refreshes per ~30 s epoch), and more when a cheap
probe was followed by dear ones. Now a budget holds the probes to a fiftieth: 1.2–2.0 % of the
epoch (median 1.8 %; 2–11 refreshes per ~30 s epoch, every 3–15 s), measured side by side with the
old rule in the same rounds; on the quiet rounds (~450 images/s) the overlay refreshed every second
for 0.8–1.0 % of the epoch. The wall-clock ratios of those runs swing more than that (engine/hand
0.78–1.10 across rounds, 0.16–6.0 when another job starts or stops mid-round): the per-round probe
share printed here is the number that load does not blur; overlay/hand = engine/hand × (1 − share).

Models: ``--model small`` (default: an FCN-like net built here, three strided convolutions, a 1×1
class head and a ×8 transposed convolution back to 64×64), or a template's graph (``--model unet``,
``--model fcn-resnet18``).

Run: ``.venv/bin/python bench/segmentation.py`` (``--rounds``, ``--train``, ``--batch``, ``--threads``).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F
from torch import nn

from core.analysis import analyze
from core.compiler import compile_graph
from core.project import project_from_dict
from core.training import Callbacks, TrainConfig, Trainer
from core.training.data import DataSource
from core.training.data.segmentation import SHAPES_SEG_CLASSES, shapes_seg_source
from core.training.events import ProbeData
from core.training.probes import Prober

LR = 0.05


def _conv(i: int, out: int, stride: int) -> list[dict[str, Any]]:
    return [{"id": f"conv{i}", "type": "Conv2d",
             "params": {"out_channels": out, "kernel_size": 3, "stride": stride, "padding": 1}},
            {"id": f"bn{i}", "type": "BatchNorm2d"}, {"id": f"relu{i}", "type": "ReLU"}]


def small_fcn() -> dict[str, Any]:
    """An FCN-like net for 3×64×64: 64 → 32 → 16 → 8 by strided convolutions, a 1×1 head to the
    classes, then one transposed convolution (kernel 16, stride 8, padding 4) back to 64×64."""
    nodes: list[dict[str, Any]] = [{"id": "input", "type": "Input", "params": {"shape": [3, 64, 64]}}]
    for i, (out, stride) in enumerate(((32, 2), (64, 2), (128, 2)), start=1):
        nodes += _conv(i, out, stride)
    nodes += [{"id": "head", "type": "Conv2d", "params": {"out_channels": len(SHAPES_SEG_CLASSES), "kernel_size": 1}},
              {"id": "up", "type": "ConvTranspose2d",
               "params": {"out_channels": len(SHAPES_SEG_CLASSES), "kernel_size": 16, "stride": 8, "padding": 4}},
              {"id": "output", "type": "Output"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    return {"format": "netcanvas-project", "version": 1, "name": "small FCN", "graph": {"nodes": nodes, "edges": edges}}


def load_model_project(name: str) -> Any:
    if name == "small":
        return project_from_dict(small_fcn())
    import templates  # noqa: F401  (registers the template:NAME source, as main.py does)
    from core.cli.common import load_or_fail

    return load_or_fail(f"template:{name}")


def make_model(project: Any, device: torch.device, channels_last: bool) -> nn.Module:
    model = compile_graph(project.graph, seed=0).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


class TimedProber(Prober):
    """The engine's prober, keeping the wall time of each capture (the probe's forward pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def capture(self, *args: Any, **kwargs: Any) -> ProbeData:
        t0 = time.perf_counter()
        try:
            return super().capture(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - t0)


def engine_epoch(project: Any, data: DataSource, device: torch.device, batch: int, overlay: bool,
                 probes: list[tuple[int, float, float]] | None = None) -> float:
    """Images/s of one engine epoch; with ``overlay``, ``probes`` gets (how many probes, their seconds,
    the epoch's training seconds)."""
    rates: list[float] = []

    cfg = TrainConfig(task="segmentation", dataset="shapes-seg", epochs=1, batch_size=batch, lr=LR, momentum=0.9,
                      augment=False, device=str(device))
    trainer = Trainer(make_model(project, device, False), data, cfg,
                      Callbacks(batch=lambda _: None, probe=(lambda _: None) if overlay else None,
                                epoch_end=lambda m: rates.append(m.images_per_s)),
                      analysis=analyze(project.graph), graph=project.graph)
    trainer.prober = prober = TimedProber()
    summary = trainer.run()
    if not summary.ok:
        raise SystemExit(f"engine failed: {summary.message}")
    if overlay and not prober.seconds:
        raise SystemExit("the engine made no mask probe: the overlay row would not measure what a run does")
    if overlay and probes is not None:
        probes.append((len(prober.seconds), sum(prober.seconds), data.train_count / rates[0]))
    return rates[0]


def hand_epoch(project: Any, data: Any, device: torch.device, batch: int, channels_last: bool) -> float:
    model = make_model(project, device, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    images = data.train.images.to(device)
    if channels_last:  # stored NHWC like the engine does, so a gathered batch needs no layout copy
        images = images.permute(0, 2, 3, 1).contiguous()
    masks = data.train.masks.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros((), device=device)
    n = masks.shape[0]
    _sync(device)
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=gen).to(device)
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        x = images[idx].permute(0, 3, 1, 2) if channels_last else images[idx]
        x = (x.float() / 255 - mean) / std
        y = masks[idx].long()
        loss = F.cross_entropy(model(x), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    float(total)
    _sync(device)
    return n / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", help="small (built here) or a template: unet, fcn-resnet18")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", type=int, default=512, help="training images per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    project = load_model_project(args.model)
    data = shapes_seg_source(seed=0, train=args.train, val=16)
    convs = any(isinstance(m, nn.Conv2d) for m in make_model(project, torch.device("cpu"), False).modules())
    rows: dict[str, list[float]] = {"engine": [], "overlay": [], "hand": []}
    probes: list[tuple[int, float, float]] = []
    print(f"{args.model} on shapes-seg, {args.train:,} images/epoch of 3×64×64, batch {args.batch}, SGD, "
          f"{device}, {torch.get_num_threads()} torch thread(s)")
    for r in range(args.rounds):
        rows["engine"].append(engine_epoch(project, data, device, args.batch, overlay=False))
        rows["overlay"].append(engine_epoch(project, data, device, args.batch, overlay=True, probes=probes))
        rows["hand"].append(hand_epoch(project, data, device, args.batch, channels_last=convs))
        count, probing, seconds = probes[-1]
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.1f}" for k, v in rows.items())
              + f"; engine/hand {rows['engine'][-1] / rows['hand'][-1]:.3f}, "
              f"overlay/hand {rows['overlay'][-1] / rows['hand'][-1]:.3f}; the overlay: {count} refreshes "
              f"in {seconds:.1f} s, {probing:.2f} s of probing ({probing / seconds:.1%})", flush=True)
    # Best of the interleaved rounds: other processes on a shared machine only ever slow a round down.
    best = {k: max(v) for k, v in rows.items()}
    print("  images/s, best of rounds (median):")
    for k, v in best.items():
        print(f"    {k:7s} {v:10,.1f}  ({statistics.median(rows[k]):,.1f})")
    # The budget is judged on the median of the rounds' own ratios (each round's rows ran back to back).
    for name in ("engine", "overlay"):
        ratios = [a / b for a, b in zip(rows[name], rows["hand"], strict=True)]
        median = statistics.median(ratios)
        print(f"    {name + ' / hand':14s} = {median:.3f} median of rounds (worst {min(ratios):.3f}, best-of "
              f"{best[name] / best['hand']:.3f})  budget ≥ 0.95 {'ok' if median >= 0.95 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
