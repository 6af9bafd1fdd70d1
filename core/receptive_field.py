"""Receptive fields (DESIGN.md §5; Araujo et al., "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019): the per-node record, one layer's effect on it, and merges.

Per spatial axis a field has a ``size``, an effective ``stride`` (the jump between neighbouring
output positions, in input pixels) and an effective ``padding``. A layer with kernel ``k``
(effective ``d·(k−1)+1``), stride ``s`` and padding ``p`` maps ``size += (k_eff−1)·jump``,
``padding += p·jump``, ``jump *= s``. A merge takes the largest size and padding over its inputs.

A stride may be a fraction: adaptive pooling from ``n`` to ``o`` positions, ``o`` not dividing
``n``, has windows of unequal width starting at ⌊i·n/o⌋ (DESIGN.md §5); its declaration gives the
widest window as the kernel and ``n/o`` as the stride: the field's size is then the exact size of
the widest window, its stride the mean step, and position ``i``'s window starts up to one jump of
the pooling's input before ``i·stride − padding`` (windows are not evenly spaced there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from core.layers.spec import Scale, SequenceRule, Window


class ReceptiveField(NamedTuple):
    """Per spatial axis: ``size`` (``None`` = the whole input), effective ``stride`` and ``padding``.

    ``sequence`` marks a field along a sequence (DESIGN.md §5): ``"steps"`` for a window of ``size``
    time steps (after an Embedding, widened by Conv1d stacks), ``"prefix"`` and ``"whole"`` (``size``
    ``None``) for what causal and full attention or forward and bidirectional RNNs see; ``""`` for
    image fields.

    An immutable record. It and :class:`NodeResult` are named tuples rather than frozen dataclasses
    because analysis creates one per node on every pass, and a frozen dataclass's ``__init__``
    costs seven times as much (it sets each field through ``object.__setattr__``).
    """

    size: tuple[float, ...] | None
    stride: tuple[float, ...]
    padding: tuple[float, ...]
    sequence: str = ""

    @property
    def is_global(self) -> bool:
        return self.size is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": ints(self.size),
                               "stride": ints(self.stride) if self.size is not None else None,
                               "padding": ints(self.padding) if self.size is not None else None}
        if self.sequence:  # only then: image fields keep their exact JSON form
            out["sequence"] = self.sequence
        return out

    def short(self) -> str:
        """``3×3``, ``global``; along a sequence ``9 steps``, ``prefix`` or ``whole sequence``."""
        if self.sequence == "whole":
            return SequenceRule.WHOLE.value
        if self.sequence == "prefix":
            return SequenceRule.PREFIX.value
        if self.size is None:
            return "global"
        if self.sequence == "steps" and len(self.size) == 1:
            return f"{fmt_num(self.size[0])} step{'' if self.size[0] == 1 else 's'}"
        return "×".join(fmt_num(x) for x in self.size)


GLOBAL_RF = ReceptiveField(None, (), ())
WHOLE_SEQUENCE_RF = ReceptiveField(None, (), (), "whole")
PREFIX_RF = ReceptiveField(None, (), (), "prefix")
ONE_STEP_RF = ReceptiveField((1,), (1,), (0,), "steps")
_WIDTH = {"prefix": 1, "whole": 2}  # how much of a sequence a non-window field covers


def sequence_field(base: ReceptiveField, rule: SequenceRule) -> ReceptiveField:
    """A sequence layer's field: an Embedding starts one of 1 step; attention and RNNs see the whole
    sequence or its prefix, and never less than their input already saw (a forward RNN after
    full attention still sees the whole sequence; anything after a global field stays global)."""
    if rule is SequenceRule.STEP:
        return ONE_STEP_RF
    if base.size is None and not base.sequence:
        return base  # global already (an image flattened into tokens)
    want = WHOLE_SEQUENCE_RF if rule is SequenceRule.WHOLE else PREFIX_RF
    return base if _WIDTH.get(base.sequence, 0) >= _WIDTH[want.sequence] else want


def compile_rule(rule: Any) -> Any:
    """A window rule as per-axis ``(k_eff − 1, stride, padding)`` tuples, computed once per memo entry;
    ``GLOBAL``, ``None`` and ``Scale`` stay as they are."""
    if not isinstance(rule, Window):
        return rule
    span = tuple(d * (k - 1) for k, d in zip(rule.kernel, rule.dilation, strict=True))
    return Step(span, rule.stride, rule.padding, rule.transposed)


class Step:
    """A compiled sliding window (see :func:`compile_rule`)."""

    __slots__ = ("padding", "span", "stride", "transposed")

    def __init__(self, span: tuple[int, ...], stride: tuple[float, ...], padding: tuple[int, ...],
                 transposed: bool) -> None:
        self.span, self.stride, self.padding, self.transposed = span, stride, padding, transposed


def apply_rule(base: ReceptiveField, rule: Any) -> ReceptiveField:
    """One layer's effect on a local field: ``size += (k_eff−1)·jump``, ``padding += p·jump``,
    ``jump *= s`` per axis (Araujo et al., eqs. 2 and 3); a transposed conv divides the jump."""
    size, jump, pad = base.size, base.stride, base.padding
    assert size is not None
    if isinstance(rule, Scale):
        return ReceptiveField(size, tuple(j / f for j, f in zip(jump, rule.factor, strict=True)), pad, base.sequence)
    if not isinstance(rule, Step) or len(size) != len(rule.span):
        return base
    span, stride, padding = rule.span, rule.stride, rule.padding
    if rule.transposed:
        # each output position draws on ceil((k_eff) / s) input positions; padding is approximate
        # (Distill §upsampling): the field of a transposed conv is not a plain window
        return ReceptiveField(
            tuple(a + (-(-(k + 1) // s) - 1) * j for a, k, s, j in zip(size, span, stride, jump, strict=True)),
            tuple(j / s for j, s in zip(jump, stride, strict=True)),
            tuple(q + (k - p) * j / s for q, k, p, s, j in zip(pad, span, padding, stride, jump, strict=True)),
            base.sequence)
    if len(size) == 2:  # the common case, unrolled: this runs for every conv and pool of the graph
        j0, j1 = jump
        return ReceptiveField((size[0] + span[0] * j0, size[1] + span[1] * j1),
                              (j0 * stride[0], j1 * stride[1]),
                              (pad[0] + padding[0] * j0, pad[1] + padding[1] * j1))
    return ReceptiveField(tuple(a + k * j for a, k, j in zip(size, span, jump, strict=True)),
                          tuple(j * s for j, s in zip(jump, stride, strict=True)),
                          tuple(q + p * j for q, p, j in zip(pad, padding, jump, strict=True)), base.sequence)


def merge_fields(rfs: Sequence[ReceptiveField | None], keep_local: bool) -> tuple[ReceptiveField | None, str | None]:
    """The field of a merge: the largest size and padding over the inputs (DESIGN.md §5), and a
    note when the inputs' effective strides differ (the field is then not well defined).

    A global input makes the merge global, except with ``keep_local`` (a Multiply whose other
    input is a squeeze-excitation gate keeps its spatial input's field, as the Distill tables do).
    """
    first = rfs[0]
    if all(r == first for r in rfs):
        return first, None
    known = [r for r in rfs if r is not None]
    if not known:
        return None, None
    local = [r for r in known if r.size is not None]
    if not local or (not keep_local and len(local) < len(known)):
        # the widest of the inputs' fields: global, then the whole sequence, then a prefix
        wide = [r for r in known if r.size is None]
        if any(not r.sequence for r in wide):
            return GLOBAL_RF, None
        return max(wide, key=lambda r: _WIDTH[r.sequence]), None
    best = local[0]
    n = len(best.stride)
    size, pad = list(best.size), list(best.padding)  # type: ignore[arg-type]
    jumps = {best.stride}
    for r in local[1:]:
        if len(r.stride) != n:
            return best, None  # inputs of different dimensionality: the shape rule reports that
        jumps.add(r.stride)
        rs, rp = r.size, r.padding
        for i in range(n):
            if rs[i] > size[i]:  # type: ignore[index]
                size[i] = rs[i]  # type: ignore[index]
            if rp[i] > pad[i]:
                pad[i] = rp[i]
    note = None
    if len(jumps) > 1:
        note = (f"its inputs have different effective strides "
                f"({' and '.join('×'.join(fmt_num(x) for x in j) for j in sorted(jumps))}), so its receptive "
                f"field is not well defined; shown: the largest size and padding with the first input's stride")
    for r in local:  # reuse an input's field when it is the largest on every axis (the usual case)
        if list(r.size) == size and list(r.padding) == pad and r.stride == best.stride:  # type: ignore[arg-type]
            return r, note
    return ReceptiveField(tuple(size), best.stride, tuple(pad), best.sequence), note


def ints(values: Sequence[float] | None) -> list[float] | None:
    if values is None:
        return None
    return [int(v) if float(v).is_integer() else v for v in values]


def fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


__all__ = ["GLOBAL_RF", "ONE_STEP_RF", "PREFIX_RF", "WHOLE_SEQUENCE_RF", "ReceptiveField", "Step", "apply_rule",
           "compile_rule", "fmt_num", "ints", "merge_fields", "sequence_field"]
