"""Cross-check the static analysis against torchinfo, off the GUI thread.

:class:`VerifyThread` compiles a *copy* of the graph (the user may keep editing meanwhile),
runs ``torchinfo.summary`` on it, and compares the total parameter count and every module's
output shape with the :class:`core.analysis.Analysis` the copy was taken with. torchinfo runs
a real forward pass, so agreement means the shapes on the canvas are what torch computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal

from core.analysis import Analysis
from core.graph import Graph
from core.layers.spec import fmt_shape


@dataclass
class VerifyReport:
    """What the comparison found; ``differences`` are readable sentences."""

    agrees: bool
    headline: str
    differences: list[str] = field(default_factory=list)
    layers_compared: int = 0


def verify_graph(graph: Graph, analysis: Analysis) -> VerifyReport:
    """Compile ``graph``, run torchinfo with batch 2 in eval mode, compare with ``analysis``."""
    if not analysis.ok:
        return VerifyReport(False, "Fix the errors first: a graph with errors cannot be compiled.",
                            [d.message for d in analysis.errors])
    shapes = list(analysis.input_shapes) or [analysis.input_shape]
    if any(s is None for s in shapes):
        return VerifyReport(False, "The graph has no Input node with a shape to run torchinfo on.")
    # One size per Input, in file order (the compiled forward's argument order); one Input: one tuple.
    sizes = [(2, *s) for s in shapes if s is not None]
    import torch
    import torchinfo

    from core.compiler import CompileError, TooBigError, compile_graph

    try:
        model = compile_graph(graph, seed=0, analysis=analysis)
    except TooBigError as exc:  # refused before allocating: the sentence is the whole answer
        return VerifyReport(False, str(exc))
    except CompileError as exc:
        return VerifyReport(False, "The graph does not compile.", [str(exc)])
    names = {id(m): n for n, m in model.named_modules()}
    try:
        # Batch 2 and eval mode: BatchNorm1d refuses a batch of one in training mode.
        with torch.no_grad():
            stats = torchinfo.summary(model, input_size=sizes if len(sizes) > 1 else sizes[0], verbose=0, device="cpu",
                                      mode="eval", depth=64)
    except Exception as exc:  # torch's own message is the most useful thing to show here
        return VerifyReport(False, "torchinfo could not run the compiled model.", [f"{type(exc).__name__}: {exc}"])
    diffs: list[str] = []
    if stats.total_params != analysis.total_params:
        diffs.append(f"total parameters: torchinfo counts {stats.total_params:,}, "
                     f"the analysis {analysis.total_params:,}")
    if stats.trainable_params != analysis.trainable_params:
        diffs.append(f"trainable parameters: torchinfo counts {stats.trainable_params:,}, "
                     f"the analysis {analysis.trainable_params:,}")
    compared = 0
    for info in stats.summary_list:
        name = names.get(id(info.module))
        result = analysis.nodes.get(name) if name else None
        if result is None or not isinstance(info.output_size, list) or not info.output_size:
            continue
        got = tuple(int(d) for d in info.output_size[1:])
        compared += 1
        if result.output_shape is not None and got != tuple(result.output_shape):
            diffs.append(f"{name}: torch gives {fmt_shape(got)}, the analysis {fmt_shape(result.output_shape)}")
    if diffs:
        return VerifyReport(False, f"torchinfo disagrees in {len(diffs)} place{'s' * (len(diffs) != 1)}.",
                            diffs, compared)
    return VerifyReport(True, f"torchinfo agrees: {stats.total_params:,} parameters and the output shapes "
                              f"of all {compared} layers match.", [], compared)


class VerifyThread(QThread):
    """Runs :func:`verify_graph` and emits ``verified(VerifyReport)`` back on the GUI thread."""

    verified = Signal(object)

    def __init__(self, graph: Graph, analysis: Analysis, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.analysis = analysis

    def run(self) -> None:
        try:
            report = verify_graph(self.graph, self.analysis)
        except Exception as exc:  # never let a worker die silently: report it in the panel
            report = VerifyReport(False, "Verification failed.", [f"{type(exc).__name__}: {exc}"])
        self.verified.emit(report)


__all__ = ["VerifyReport", "VerifyThread", "verify_graph"]
