"""Parameter: a learned tensor that a network uses directly, as a source node without inputs.

ViT's class token (``self.class_token.expand(n, -1, -1)``, concatenated before the patches) and
its positional embedding (``x + self.pos_embedding``) are tensors of weights that no layer owns;
a Parameter node holds one, in a :class:`~core.layers.extra_modules.LearnedTensor` whose state is
``<node id>.weight``. Its output is one sample of ``shape`` with a batch axis of size 1, which
broadcasts over the batch in Add, Multiply, Subtract and Divide, and which Expand widens to the
batch of another input. ``batch_axis`` keeps the stored tensor's layout (``1×N×D`` or ``N×D``) so
that a source's weights load with ``strict=True``.

It computes nothing per sample: 0 MACs; its parameters are the tensor's elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import Category, FitRole, Inferred, Kind, LayerSpec, Params, ParamSpec, Shape, fmt_shape, numel


def _infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    shape = tuple(p["shape"])
    return Inferred(out_shapes=(shape,), params=numel(shape))


def _build(p: Params) -> Any:
    from core.layers.extra_modules import LearnedTensor

    return LearnedTensor(p["shape"], batch_axis=p["batch_axis"])


def _from_module(m: Any) -> dict[str, Any]:
    return {"shape": list(m.shape), "batch_axis": bool(m.batch_axis)}


Parameter = register(LayerSpec(
    type="Parameter", category=Category.IO,
    doc="A learned tensor used directly, without an input: ViT's class token or positional embedding.",
    params=(ParamSpec("shape", Kind.SHAPE, [1, 64], "Shape of one sample of the tensor, e.g. 1×D for a class "
                      "token, N×D for N positional embeddings."),
            ParamSpec("batch_axis", Kind.BOOL, True, "Stored with a leading axis of size 1 (1×shape, as ViT's "
                      "tokens are); off: stored as shape itself.")),
    infer=_infer, build=_build, min_inputs=0, max_inputs=0,
    short=lambda p: fmt_shape(p["shape"]),
    module_class="core.layers.extra_modules.LearnedTensor", from_module=_from_module,
    trainable_note="every element of the tensor is learned (parameter `weight`)",
    id_stem="param", fit_role=FitRole.OTHER,
))

__all__ = ["Parameter"]
