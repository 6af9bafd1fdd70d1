"""The seam between the converter and the op handlers, and the helpers every handler uses.

:class:`Conversion` is the few things a handler may ask of the conversion in progress (add a
node, look up shapes and ids, refuse); declaring it here, instead of importing the converter,
keeps the arrow pointing one way: the converter imports the handlers, never the reverse.
:func:`describe` names a call as the user wrote it, :func:`bind_args` reads its arguments by name,
:func:`tensor_input` refuses anything but a layer's output in the user's terms. Split out of
:mod:`core.importer.ops` so the handler tables can grow across modules.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import fx, nn

from core.graph import Graph
from core.importer.errors import ModelImportError
from core.importer.values import Param, Ref


class Conversion(Protocol):
    """What a handler may use of the conversion in progress (:class:`~core.importer.converter.Converter`)."""

    module: nn.Module  # the source module (a buffer's owner tells whether it is saved in state_dict)
    graph: Graph
    values: dict[fx.Node, Any]  # fx node → the value it stands for (a Ref, a Multi, shape arithmetic …)
    ids: dict[str, str]  # module path → node id path
    skip: set[fx.Node]  # fx nodes a handler has already folded into an earlier node
    param_nodes: dict[str, str]  # source parameter name → the Parameter node that holds it
    absorbed: set[str]  # non-persistent buffers a node computes itself (BlurPool2d's filter)

    def fail(self, n: fx.Node, what: str, why: str = ...) -> ModelImportError:
        """The refusal for ``what`` at ``n``, naming the module whose forward does it."""
        ...

    def shapes(self, n: fx.Node) -> tuple[tuple[int, ...], ...]:
        """Torch's per-sample shapes of ``n``'s value(s)."""
        ...

    def add(self, type_name: str, node_id: str, params: Mapping[str, Any], inputs: Sequence[Any],
            scope: str, n: fx.Node | None) -> Any:
        """Add node ``node_id`` in the group of module ``scope``, fed by ``inputs``."""
        ...

    def functional(self, n: fx.Node, type_name: str, params: Mapping[str, Any], inputs: Sequence[Any],
                   name: str | None = None, *, last: bool = True) -> Any:
        """Add the node for functional call ``n``, with an id in the calling module's scope.

        ``last=False`` for a node that is not yet ``n``'s whole result (a chain of Slices for
        ``x[:, 1:, :4]``): its shape is not compared with torch's value of ``n``."""
        ...

    def refs(self, n: fx.Node, value: Any, what: str) -> list[Ref]:
        """The tensors in ``value`` as references; anything else is refused."""
        ...


Handler = Callable[[Conversion, fx.Node, tuple[Any, ...], dict[str, Any]], Any]


def describe(n: fx.Node) -> str:
    """How a reader would write the call: ``F.relu``, ``torch.einsum``, ``Tensor.view``, ``operator.add``."""
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    name = getattr(n.target, "__name__", str(n.target))
    if getattr(F, name, None) is n.target:
        return f"F.{name}"
    if getattr(torch, name, None) is n.target:
        return f"torch.{name}"
    if getattr(operator, name, None) is n.target:
        return f"operator.{name}"
    mod = getattr(n.target, "__module__", None) or ""
    return f"{mod}.{name}" if mod else name


def bind_args(conv: Conversion, n: fx.Node, args: Sequence[Any], kwargs: Mapping[str, Any],
          names: Sequence[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Positional and keyword arguments by name (``names[0]`` is the tensor input)."""
    if len(args) > len(names):
        raise conv.fail(n, f"{describe(n)} with {len(args)} positional arguments")
    bound = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise conv.fail(n, f"{describe(n)} with argument {key}=")
        bound[key] = value
    for key, value in defaults.items():
        bound.setdefault(key, value)
    missing = [k for k in names if k not in bound]
    if missing:
        raise conv.fail(n, f"{describe(n)} without {missing[0]}")
    return bound


def made_in_forward(param: Param) -> bool:
    """Whether ``param`` is no attribute of the source but a tensor its forward creates (``torch.rand(2, 3)``,
    ``torch.tensor([…])``), which torch.fx keeps as a constant named ``_tensor_constant0``."""
    return param.path.rpartition(".")[2].startswith("_tensor_constant")


MADE_IN_FORWARD = ("a tensor created in forward (torch.tensor, torch.rand, torch.zeros …)",
                   "its values are made by the forward, not learned or computed from the input, and a layer "
                   "node only takes a layer's output or a learned parameter")


def tensor_input(conv: Conversion, n: fx.Node, value: Any) -> Any:
    if isinstance(value, Param) and made_in_forward(value):
        raise conv.fail(n, f"{describe(n)} of {MADE_IN_FORWARD[0]}", MADE_IN_FORWARD[1])
    if isinstance(value, Param):  # in the user's words: the attribute they read, not our stand-in for it
        what = "buffer" if not isinstance(value.value, torch.nn.Parameter) else "parameter"
        raise conv.fail(n, f"{describe(n)} of the {what} {value.path!r} used directly in forward",
                        "only a layer's output can go through it; a parameter can be added, multiplied or "
                        "expanded as it is")
    if not isinstance(value, Ref):
        raise conv.fail(n, f"{describe(n)} on a {type(value).__name__}")
    return value


def rank_of(n: fx.Node, arg: int = 0) -> int:
    """Number of axes of the argument's value, the batch axis included."""
    src = n.args[arg]
    assert isinstance(src, fx.Node)
    return int(src.meta["val"].dim())


@dataclass(frozen=True)
class ModuleCall:
    """How the converter makes the node of a layer module called with more than its tensors.

    ``inputs`` are the node's inputs, ``result`` turns the node's reference into the value of the
    call (a tuple for a module that returns one), ``checked`` whether torch's value of the call is
    the node's output, whose shape the import compares with the analysis'. (Declared here, below
    every handler module, because the attention and the recurrent calls both make one.)
    """

    inputs: list[Ref]
    result: Callable[[Ref], Any]
    checked: bool


__all__ = ["MADE_IN_FORWARD", "Conversion", "Handler", "ModuleCall", "bind_args", "describe", "made_in_forward",
           "rank_of", "tensor_input"]
