"""``main.py summary SOURCE... [--json]``: a torchinfo-like table, totals and diagnostics."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.analysis import Analysis, analyze
from core.cli.common import load_or_fail
from core.layers.spec import fmt_shape
from core.units import count, human, human_bytes, json_safe


def add_parser(sub: Any) -> None:
    p = sub.add_parser("summary", help="analyse one or more sources (table, or --json)",
                       description="Shapes, parameters, MACs and receptive fields of each layer, "
                                   "totals and diagnostics. SOURCE: a project file, template:NAME "
                                   "or torchvision:NAME.")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="one JSON object per source, one per line")
    p.add_argument("--batch-size", type=int, default=32, help="batch size for the memory estimate (table only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    for i, source in enumerate(args.sources):
        project = load_or_fail(source)
        result = analyze(project.graph)
        if args.json:
            print(json.dumps(json_safe(result.to_dict(source)), separators=(", ", ": ")), flush=True)
        else:
            if i:
                print()
            print(format_table(result, title=f"{project.name} ({source})", batch_size=args.batch_size))
        if not result.ok:
            status = 1
    return status


def format_table(a: Analysis, title: str = "", batch_size: int = 32) -> str:
    """The human-readable summary: one row per node in topological order, then totals."""
    rows = [("Layer", "Type", "Output shape", "Params", "MACs", "RF (size/stride/pad)")]
    for nid in a.order:
        r = a.nodes[nid]
        if r.rf is None:
            rf = "—"
        elif r.rf.size is None or r.rf.sequence:  # global, whole sequence, prefix, 9 steps
            rf = r.rf.short()
        else:
            rf = "/".join(_axes(v) for v in (r.rf.size, r.rf.stride, r.rf.padding))
        shape = fmt_shape(r.output_shape) if r.known else "?"
        if r.out_shapes is not None and len(r.out_shapes) > 1:
            shape = ", ".join(fmt_shape(s) for s in r.out_shapes)
        rows.append((nid, r.type, shape, count(r.params), count(r.macs), rf))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    right = {3, 4}

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                         for c, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "=" * max(len(line(rows[0])), 60)
    out = []
    if title:
        out.append(title)
    out += [rule, line(rows[0]), "-" * len(rule)]
    out += [line(r) for r in rows[1:]]
    out.append(rule)
    frozen = a.total_params - a.trainable_params
    mem = a.memory(batch_size, "sgd")
    # With errors, layers of unknown shape are not counted: the totals are lower bounds, and say so.
    at_least = "≥ " if a.partial else ""
    out += [
        (f"Input shape:           {fmt_shape(a.input_shape)}" if len(a.input_shapes) < 2
         else f"Input shapes:          {', '.join(fmt_shape(s) for s in a.input_shapes)}"),
        f"Output shape(s):       {', '.join(fmt_shape(s) for s in a.output_shapes) or '—'}",
        f"Total params:          {at_least}{count(a.total_params)} ({human(a.total_params)})",
        f"Trainable params:      {at_least}{count(a.trainable_params)}",
        f"Non-trainable params:  {count(frozen)}",
        f"Buffers (running stats): {count(a.buffers)}",
        f"MACs per sample:       {at_least}{count(a.macs)} ({human(a.macs, 'MACs')}, {human(a.flops, 'FLOPs')})",
        f"Activations per sample: {at_least}{human_bytes(a.activation_bytes)}",
        f"Training memory (batch {batch_size}, SGD+momentum, fp32): {at_least}{human_bytes(mem.total)} "
        f"(params {human_bytes(mem.params)}, grads {human_bytes(mem.grads)}, "
        f"optimizer {human_bytes(mem.optimizer_state)}, activations {human_bytes(mem.activations)})",
        rule,
    ]
    if a.partial:
        out.append("Totals are partial (≥): layers after an error have unknown shapes and are not counted.")
    if a.diagnostics:
        out.append(f"Diagnostics ({len(a.diagnostics)}):")
        for d in a.diagnostics:
            fix = f"  [fix: {d.fix.label}]" if d.fix is not None else ""
            out.append(f"  {d.severity.value:7s} {d.message}{fix}")
    else:
        out.append("Diagnostics: none — the network is consistent.")
    return "\n".join(out)


def _axes(values: tuple[float, ...]) -> str:
    parts = [_axis(v) for v in values]
    return parts[0] if len(set(parts)) == 1 else "×".join(parts)


def _axis(v: float) -> str:
    # Integers stay exact and are never pushed through float(): a padding of 10**400 makes sizes
    # beyond a float's range (they read in scientific form, like every other huge count).
    if isinstance(v, int):
        return str(v) if abs(v) < 10**21 else count(v)
    return str(int(v)) if v.is_integer() else f"{v:.3g}"
