"""``main.py templates``: the built-in templates with their input shape, parameters and MACs.

Each template is built and analysed (no torch involved), so the numbers are the ones the
editor shows when the template is opened. ``--json`` prints one object per template. The list
comes from the ``template:`` source kind that :mod:`templates` registers in :mod:`core.sources`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from core.analysis import analyze
from core.cli.common import UsageError
from core.layers.spec import fmt_shape
from core.sources import SourceError, list_sources, load_source
from core.units import human


def add_parser(sub: Any) -> None:
    p = sub.add_parser("templates", help="list the built-in templates",
                       description="The built-in templates: open one with `main.py template:NAME` in the GUI, "
                                   "or use template:NAME as a SOURCE (summary, export, train).")
    p.add_argument("--json", action="store_true", help="one JSON object per template, one per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        listed = list_sources("template")
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    rows: list[tuple[str, ...]] = [("Name", "Title", "Input", "Params", "MACs", "torchvision")]
    for info in listed:
        result = analyze(load_source(f"template:{info.name}").graph)
        if args.json:
            print(json.dumps({"name": info.name, "title": info.title, "description": info.description,
                              "input_shape": list(info.input_shape), "num_classes": info.num_classes,
                              "torchvision": info.torchvision, "options": list(info.options),
                              "total_params": result.total_params, "macs": result.macs, "ok": result.ok},
                             ensure_ascii=False), flush=True)
            continue
        rows.append((info.name, info.title, fmt_shape(info.input_shape), human(result.total_params),
                     human(result.macs), info.torchvision or "—"))
    if not args.json:
        print(format_rows(rows))
        print(f"\n{len(rows) - 1} templates. Use one as SOURCE: template:NAME "
              f"(e.g. `main.py summary template:resnet18`).")
    return 0


def format_rows(rows: Sequence[tuple[str, ...]]) -> str:
    """Left-aligned text columns, right-aligned numbers (Params, MACs)."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    right = {3, 4}
    lines = ["  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                       for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
