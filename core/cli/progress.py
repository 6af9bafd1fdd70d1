"""A tqdm-style progress bar on one ``\\r``-rewritten line, for downloads the CLI makes (no tqdm needed).

``cli_progress(sys.stderr, "resnet18-f37072fd.pth")`` returns the ``progress(done, total)``
callback that :func:`core.training.weights.fetch` (and so ``main.py weights`` and
``main.py train --weights``) calls with byte counts::

    resnet18-f37072fd.pth  42%|██████████▌              | 18.75/44.66 MiB  9.40 MiB/s  0:03 left

The line is redrawn at most ten times a second, and once more, with a newline, when the transfer
completes. stdout stays clean for ``--json``. Not a subcommand: no torch here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from core.units import fmt_duration, human_bytes

BAR_WIDTH = 25
REDRAW_S = 0.1
_BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """``fraction`` of ``width`` cells filled, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_BLOCKS[part] if part and full < width else "")
    return text.ljust(width)


def progress_line(label: str, done: int, total: int, elapsed: float) -> str:
    """The text of one redraw (without the carriage return)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{human_bytes(rate)}/s" if rate else "—/s"
    if total > 0:
        fraction = done / total
        left = fmt_duration((total - done) / rate) + " left" if rate and done < total else fmt_duration(elapsed)
        return (f"{label} {fraction * 100:3.0f}%|{bar(fraction)}| {human_bytes(done)}/{human_bytes(total)}  "
                f"{speed}  {left}")
    return f"{label} {human_bytes(done)}  {speed}  {fmt_duration(elapsed)}"


def cli_progress(stream: TextIO | None = None, label: str = "download") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing :func:`progress_line` on ``stream`` (stderr)."""
    out = stream if stream is not None else sys.stderr
    start = time.monotonic()
    state = {"last": -1.0, "width": 0, "finished": False}

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        complete = total > 0 and done >= total
        if state["finished"] or (not complete and now - state["last"] < REDRAW_S):
            return
        state["last"] = now
        text = progress_line(label, done, total, now - start)
        # pad over a longer previous line so no characters of it remain
        out.write("\r" + text.ljust(int(state["width"])) + ("\n" if complete else ""))
        out.flush()
        state["width"] = len(text)
        state["finished"] = complete

    return progress


__all__ = ["bar", "cli_progress", "progress_line"]
