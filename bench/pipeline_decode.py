"""Benchmark: one image through the pretrained weights' input pipeline, NetCanvas's way and torchvision's.

A: ``core.training.data.folder.decode_image(path, (3, 224, 224), 256)``, what a folder dataset with
ResNet-18's ImageNet pipeline decodes per file in its DataLoader workers (uint8 out; normalising
runs batched on the device afterwards). Large JPEGs are decoded at a reduced scale (JPEG draft).
B: ``ResNet18_Weights.IMAGENET1K_V1.transforms()(Image.open(path).convert("RGB"))``, what a
hand-written torchvision loop does per file (full decode, resize, crop, float normalise).

Files: JPEGs of a phone photo's size (4032×3024), a mid-size one (1600×1200) and ImageNet's typical
500×375, plus the same mid-size as PNG (no draft there: A and B do the same work). Rounds interleave
A and B so machine load hits both alike; reported are the median milliseconds and B/A per file,
and the largest difference of A's uint8 from B's (before its float steps) in levels. Torch runs on
one thread, as in a DataLoader worker.

Run: ``.venv/bin/python bench/pipeline_decode.py [--rounds 9]`` (well under a minute on 2 cores).
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
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    import torch
    import torchvision.transforms.functional as F
    from PIL import Image
    from torchvision.models import ResNet18_Weights

    from core.training.data.folder import decode_image
    from tests.core.test_weights_pipeline import _photo

    torch.set_num_threads(1)  # as in a DataLoader worker, where both ways run per file
    preset = ResNet18_Weights.IMAGENET1K_V1.transforms()
    files = [((4032, 3024), "jpg"), ((1600, 1200), "jpg"), ((500, 375), "jpg"), ((1600, 1200), "png")]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, ((w, h), ext) in enumerate(files):
            path = Path(tmp) / f"{w}x{h}.{ext}"
            Image.fromarray(_photo(w, h, i)).save(path, quality=90)  # PNG ignores the quality
            paths.append(path)

        def ours(path: Path) -> None:
            decode_image(str(path), (3, 224, 224), 256)

        def torchvision_way(path: Path) -> None:
            with Image.open(path) as opened:
                preset(opened.convert("RGB"))

        print(f"{'file':<16}{'A ours ms':>11}{'B tv ms':>10}{'B/A':>7}{'max diff':>10}")
        for path in paths:
            times: dict[str, list[float]] = {"A": [], "B": []}
            for _ in range(args.rounds):
                for key, fn in (("A", ours), ("B", torchvision_way)):
                    start = time.perf_counter()
                    fn(path)
                    times[key].append(time.perf_counter() - start)
            a, b = statistics.median(times["A"]) * 1e3, statistics.median(times["B"]) * 1e3
            with Image.open(path) as opened:
                ref = F.pil_to_tensor(F.center_crop(F.resize(opened.convert("RGB"), [256]), [224]))
            got = torch.from_numpy(decode_image(str(path), (3, 224, 224), 256))
            diff = int((got.int() - ref.int()).abs().max())
            print(f"{path.name:<16}{a:>11.1f}{b:>10.1f}{b / a:>7.2f}{diff:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
