"""Token-id inputs: which of a traced forward's inputs are integer ids, and their example tensors.

A project's Input carries no dtype: it is a token-id input when it feeds a layer that takes
integer ids (``LayerSpec.int_inputs``, the Embedding), which is how the exporter and the
compiler treat it too (:func:`core.export.token_inputs`). The import follows the same rule on the
source's trace: a placeholder whose consumer is an ``nn.Embedding`` module or an
``F.embedding`` call is shape-propagated with ``torch.long`` ids instead of floats, so the
Embedding runs, and the imported Input feeds an Embedding node and is a token-id input again.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from core.importer.modules import layer_classes


def takes_ids(m: nn.Module) -> bool:
    """Whether module ``m`` reads integer ids: an ``nn.Embedding``, or a layer declaring ``int_inputs``."""
    spec = layer_classes().get(type(m))
    return isinstance(m, nn.Embedding) or bool(spec is not None and spec.int_inputs)


def as_ids(value: object) -> object:
    """A float example (a fake tensor) as ``torch.long`` ids of the same shape; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return torch.zeros_like(value, dtype=torch.long)
    return value


def _takes_ids(gm: fx.GraphModule, user: fx.Node) -> bool:
    """Whether fx node ``user`` reads integer ids: an id-taking module (:func:`takes_ids`), or ``F.embedding``."""
    if user.op == "call_function":
        return user.target is torch.nn.functional.embedding
    return user.op == "call_module" and takes_ids(gm.get_submodule(str(user.target)))


def id_inputs(gm: fx.GraphModule) -> frozenset[int]:
    """Positions (among the required inputs, in the forward's order) of the inputs that are token ids."""
    required = [n for n in gm.graph.nodes if n.op == "placeholder" and not n.args]
    return frozenset(i for i, n in enumerate(required) if any(_takes_ids(gm, u) for u in n.users))


def example(shape: tuple[int, ...], ids: bool, batch: int, device: torch.device | str) -> torch.Tensor:
    """An uninitialised example of a batch of ``shape`` samples: ``torch.long`` ids (zeros) or floats.

    Only shapes are read from it (on the meta device or fake tensors), so id 0, which every
    vocabulary has, is as good as any.
    """
    if ids:
        return torch.zeros(batch, *shape, dtype=torch.long, device=device)
    return torch.empty(batch, *shape, device=device)


__all__ = ["as_ids", "example", "id_inputs", "takes_ids"]
