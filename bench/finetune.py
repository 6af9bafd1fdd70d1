"""Benchmark: fine-tuning ResNet-18 on a folder of images, the engine next to a hand-written torchvision loop.

The practitioner's recipe (issue 13), done twice on the same generated image folder (4 classes ×
``--per-class`` JPEGs at 160 px in a temporary folder, one subfolder per class), from the same
weights file (saved from ``torchvision.models.resnet18(weights=None)``: no download here), with a new
4-class head, ``layer1`` and ``layer2`` frozen (their BatchNorm in eval mode), the head at 10× the
learning rate, SGD with momentum, the same batch size and DataLoader workers:

- **engine**: ``template:resnet18`` with its Input set to ``--size``, the head replaced, the stages
  frozen and the multiplier set by :mod:`core.finetune`, trained by :class:`TrainingSession` with
  ``weights_spec`` = the file (the folder source decodes each image, resizes the shorter side,
  centre-crops, flips on the device and normalises with ImageNet's mean/std);
- **torchvision loop**: ``torchvision.models.resnet18()`` with the file's ``state_dict``, ``fc``
  replaced by a 4-class ``Linear``, ``ImageFolder`` with ``Resize(size)`` + ``CenterCrop(size)`` +
  ``RandomHorizontalFlip()`` + ``ToTensor()`` + ``Normalize(mean, std)``, a shuffled ``DataLoader``
  (persistent workers like the engine's), the same two parameter groups, frozen BatchNorm in eval
  mode, ``loss.item()`` every step as such loops do.

Timed: each training epoch (data loading included, validation excluded: the engine gets no
validation split here), as images per second, the two sides taking turns epoch by epoch (the engine
runs on a thread and waits in its ``epoch_end`` event); each side's best epoch is compared, since a
shared machine only ever slows an epoch down and the first epoch pays the workers' start. ``--device cuda``
runs both with bf16 autocast and channels_last.

Run: ``.venv/bin/python bench/finetune.py`` (about two minutes on 2 CPU cores; ``--size``,
``--per-class``, ``--epochs``, ``--rounds``, ``--batch``, ``--workers``, ``--device``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CLASSES = 4
LR = 0.01
HEAD_MULT = 10.0
FROZEN = ("layer1", "layer2")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_folder(root: Path, per_class: int, side: int = 160, seed: int = 0) -> Path:
    """``root/class_k/NNN.jpg``: per class a hue and a shape (disc, bar, ring, cross) on noise, so
    the classes are learnable and the JPEGs decode like photos (no two alike)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    hues = np.array([[220, 60, 50], [50, 170, 70], [60, 90, 220], [210, 180, 40]], dtype=np.float32)
    for k in range(CLASSES):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.12, 0.25)
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
            mask = [d < r, np.abs(yy - cy) < r / 3, np.abs(d - r) < 0.04,
                    (np.abs(xx - cx) < r / 4) | (np.abs(yy - cy) < r / 4)][k]
            img = rng.normal(110, 40, (side, side, 3)).astype(np.float32)
            img[mask] = hues[k] + rng.normal(0, 20, 3)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.jpg", quality=90)
    return root


def save_weights(path: Path) -> Path:
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def engine_project(args: argparse.Namespace) -> Any:
    """``template:resnet18`` at ``--size`` with the fine-tuning edits (head, frozen stages, head ×10)."""
    from core.finetune import freeze, replace_head, set_lr_mults
    from templates import build_template

    project = build_template("resnet18")
    g = project.graph
    g.set_param("input", "shape", [3, args.size, args.size])
    replace_head(g, CLASSES)
    freeze(g, FROZEN)
    set_lr_mults(g, {"fc": HEAD_MULT})
    return project


class HandLoop:
    """The hand-written torchvision fine-tuning loop, one epoch per :meth:`epoch` call."""

    def __init__(self, folder: Path, weights: Path, args: argparse.Namespace) -> None:
        import torchvision
        from torchvision import transforms

        self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        torch.manual_seed(0)
        model = torchvision.models.resnet18()
        model.load_state_dict(torch.load(weights, weights_only=True))
        model.fc = nn.Linear(model.fc.in_features, CLASSES)
        self.frozen = [getattr(model, name) for name in FROZEN]
        for part in self.frozen:
            part.requires_grad_(False)
        model = model.to(self.device)
        if self.cuda:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        head = list(model.fc.parameters())
        rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("fc.")]
        self.optimizer = torch.optim.SGD([{"params": rest}, {"params": head, "lr": LR * HEAD_MULT}], lr=LR,
                                         momentum=0.9)
        tf = transforms.Compose([transforms.Resize(args.size), transforms.CenterCrop(args.size),
                                 transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                 transforms.Normalize(MEAN, STD)])
        dataset = torchvision.datasets.ImageFolder(str(folder), transform=tf)
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True,
                                                  num_workers=args.workers, pin_memory=self.cuda,
                                                  persistent_workers=args.workers > 0)

    def epoch(self) -> float:
        """Train one epoch; images/s."""
        model, device = self.model, self.device
        model.train()
        for part in self.frozen:  # the pretrained BatchNorm statistics stay, as in the engine
            part.eval()
        t0 = time.perf_counter()
        seen = 0
        for x, y in self.loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if self.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cuda):
                loss = F.cross_entropy(model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss.item()
            seen += int(y.shape[0])
        if self.cuda:
            torch.cuda.synchronize(device)
        return seen / (time.perf_counter() - t0)


def interleaved(folder: Path, weights: Path, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Images/s by epoch of the engine (a :class:`TrainingSession`, as ``main.py train`` runs it, on a
    thread) and of the hand loop, epoch by epoch in turn: the engine waits in its ``epoch_end``
    event (outside its timed epoch) while the hand loop trains one, so machine load hits both alike."""
    from core.training import Callbacks, TrainConfig, TrainingSession

    cuda = args.device.startswith("cuda")
    cfg = TrainConfig(dataset=f"folder:{folder}", val_fraction=0.0, workers=args.workers, epochs=args.epochs,
                      batch_size=args.batch, optimizer="sgd", lr=LR, momentum=0.9, crop_padding=0, hflip=True,
                      device=args.device, amp="bf16" if cuda else "off",
                      channels_last={"auto": None, "on": True, "off": False}[args.engine_channels_last])
    hand = HandLoop(folder, weights, args)
    engine: list[float] = []
    hand_rates: list[float] = []
    turn = threading.Event()
    back = threading.Event()

    def epoch_end(m: Any) -> None:
        engine.append(m.images_per_s)
        turn.set()
        back.wait()
        back.clear()

    session = TrainingSession(engine_project(args), cfg, Callbacks(epoch_end=epoch_end),
                              weights_spec=str(weights), weights_arch="resnet18", evaluate=False)
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(session.run()), daemon=True)
    worker.start()
    for _ in range(args.epochs):
        while not turn.wait(0.5):
            if not worker.is_alive():
                raise SystemExit(f"engine failed: {result[0].message if result else 'no result'}")
        turn.clear()
        hand_rates.append(hand.epoch())
        back.set()
    worker.join()
    if not result or not result[0].ok:
        raise SystemExit(f"engine failed: {result[0].message if result else 'no result'}")
    report = session.weights_report
    assert report is not None and sorted(report.reinitialized) == ["fc.bias", "fc.weight"], report
    return engine, hand_rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast and channels_last on CUDA)")
    parser.add_argument("--size", type=int, default=None, help="network input side in pixels "
                                                                "(default 64 on the CPU, 224 on CUDA)")
    parser.add_argument("--per-class", dest="per_class", type=int, default=None,
                        help="images per class (default 32 on the CPU, 512 on CUDA)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per side per round (default 3 CPU, 4 CUDA)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of both sides (each interleaved by epoch)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (both sides)")
    parser.add_argument("--engine-channels-last", dest="engine_channels_last", choices=("auto", "on", "off"),
                        default="auto", help="the engine's layout (auto: its default, channels_last for convnets)")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU here")
    args.size = args.size or (224 if cuda else 64)
    args.per_class = args.per_class or (512 if cuda else 32)
    args.epochs = args.epochs or (4 if cuda else 3)
    where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"torch {torch.__version__}; ResNet-18 fine-tuning on {where}: {CLASSES} classes × {args.per_class} JPEGs "
          f"(160 px) → {args.size} px, batch {args.batch}, {args.workers} workers, {args.epochs} epochs, "
          f"{'+'.join(FROZEN)} frozen, fc ×{HEAD_MULT:g} lr, SGD" + (", bf16 + channels_last" if cuda else ""),
          flush=True)
    rows: dict[str, list[float]] = {"engine": [], "torchvision loop": []}
    with tempfile.TemporaryDirectory(prefix="netcanvas-finetune-") as tmp:
        folder = make_folder(Path(tmp) / "images", args.per_class)
        weights = save_weights(Path(tmp) / "resnet18.pth")
        for r in range(args.rounds):
            engine, hand = interleaved(folder, weights, args)
            rows["engine"] += engine
            rows["torchvision loop"] += hand
            print(f"  round {r + 1}: engine " + ", ".join(f"{v:,.1f}" for v in engine)
                  + " | torchvision loop " + ", ".join(f"{v:,.1f}" for v in hand) + "  images/s by epoch", flush=True)
    best = {k: max(v) for k, v in rows.items()}
    print("  images/s, best epoch (median):")
    for k, v in best.items():
        print(f"    {k:17s} {v:10,.1f}  ({statistics.median(rows[k]):,.1f})")
    print(f"    engine / torchvision loop = {best['engine'] / best['torchvision loop']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

