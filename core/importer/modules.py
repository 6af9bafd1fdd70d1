"""Which ``nn.Module`` classes are layers, and how a module becomes a layer node's parameters and id.

This is the importer's whole knowledge of *modules* (the functional calls are in
:mod:`core.importer.ops`):

- :func:`layer_classes` maps each module class to its layer type, read from every declaration's
  ``torch_class`` in :mod:`core.layers` (and subclasses that keep their parent's ``forward``), so
  the tracer knows what to keep whole and the converter what node to make;
- :func:`module_params` reads a module's constructor arguments back from its attributes (or the
  declaration's ``from_module``), and :func:`user_params` keeps only what differs from torch's
  defaults, which the op handlers use too for the parameters of functional calls;
- :func:`id_paths` turns module paths into node ids, so node ids stay the source's
  ``state_dict`` prefixes wherever a module name is a valid id.

It depends on the layer registry and nothing else of the importer but its error, so both the
tracer and the op handlers can stand on it.
"""

from __future__ import annotations

import importlib
import inspect
import keyword
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import torch
from torch import nn

from core.graph import id_problem
from core.importer.errors import ModelImportError
from core.layers import all_specs, recurrent_modules
from core.layers.spec import Kind, LayerSpec, ParamError, ParamSpec, tup

# -- which module classes are layers --------------------------------------------------------------

def resolve_class(dotted: str) -> type | None:
    """``torch.nn.Conv2d`` → the class, or None when it does not exist here."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj if isinstance(obj, type) else None
    return None


class LayerClasses(dict[type, LayerSpec]):
    """Module class → layer type; a subclass that keeps its parent's ``forward`` is that layer too.

    ``get``, ``in`` and ``[]`` answer for subclasses by walking the class's MRO to the first
    registered class, and accept the subclass only when its ``forward`` is that class's own (a
    subclass that adds an attribute or a constructor argument computes the same thing); answers
    are remembered. A subclass with its own ``forward`` is traced into instead, and
    :mod:`core.importer.trace` recognizes the layer's functional call inside it.
    """

    def resolve(self, cls: type) -> LayerSpec | None:
        if dict.__contains__(self, cls):
            return dict.__getitem__(self, cls)
        spec = None
        for base in cls.__mro__[1:]:
            if dict.__contains__(self, base):
                if getattr(cls, "forward", None) is getattr(base, "forward", None) or _exported_copy(cls):
                    spec = dict.__getitem__(self, base)
                break
        if spec is not None:
            self[cls] = spec
        return spec

    def registered_base(self, cls: type) -> type | None:
        """The first registered class in ``cls``'s MRO (itself included), whatever its forward."""
        return next((base for base in cls.__mro__ if dict.__contains__(self, base)), None)

    def get(self, cls: type, default: Any = None) -> Any:  # type: ignore[override]
        spec = self.resolve(cls) if isinstance(cls, type) else None
        return default if spec is None else spec

    def __contains__(self, cls: object) -> bool:
        return isinstance(cls, type) and self.resolve(cls) is not None

    def __missing__(self, cls: type) -> LayerSpec:
        spec = self.resolve(cls) if isinstance(cls, type) else None
        if spec is None:
            raise KeyError(cls)
        return spec


def _exported_copy(cls: type) -> bool:
    """Whether ``cls`` is the copy of our batch-first recurrent class that an exported ``.py`` holds
    (``SequenceLSTM`` in ``lm.py``): the same name and, on a small bidirectional two-layer example with
    the same weights, the same results as ours. Then it is the layer, as the original is."""
    own = getattr(recurrent_modules, cls.__name__, None)
    if own is None or own is cls or not issubclass(cls, nn.RNNBase) or not issubclass(own, nn.RNNBase):
        return False
    try:
        with torch.random.fork_rng():  # the check leaves the caller's random numbers alone
            torch.manual_seed(0)
            classes: list[Any] = [own, cls]  # both RNNBase subclasses built as ours is
            ours, theirs = (c(3, 4, num_layers=2, bidirectional=True) for c in classes)
            theirs.load_state_dict(ours.state_dict())
            x = torch.randn(2, 5, 3)
            with torch.no_grad():  # forward, not __call__: this may run while torch.fx traces, which patches it
                a, b = ours.forward(x), theirs.forward(x)
        return len(a) == len(b) and all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    except Exception:  # a class of the same name that does not even build like ours is not ours
        return False


# Module classes that are another spelling of a layer type: Swin V2's attention is the V1 type with cosine on.
# torch's own recurrent modules are the layer types whose batch-first subclasses the compiler builds
# (their calls are mapped by core.importer.ops_sequence, which refuses batch_first=False).
ALSO_LAYERS = {"torchvision.models.swin_transformer.ShiftedWindowAttentionV2": "ShiftedWindowAttention",
               "torch.nn.RNN": "RNN", "torch.nn.LSTM": "LSTM", "torch.nn.GRU": "GRU"}


@cache
def layer_classes() -> LayerClasses:
    """Module class → layer type, from every declaration's ``torch_class`` (subclasses: see :class:`LayerClasses`)."""
    out = LayerClasses()
    for spec in all_specs():
        names = [spec.torch_class] if (spec.is_module or spec.module_class) else []
        if spec.own_class is not None:
            names.append(spec.own_class)
        names += [cls for cls, type_name in ALSO_LAYERS.items() if type_name == spec.type]
        for name in names:
            cls = resolve_class(name)
            if cls is not None and issubclass(cls, nn.Module):
                out.setdefault(cls, spec)
    return out


# -- reading constructor arguments back from a module ---------------------------------------------

def _plain(value: Any, p: ParamSpec, m: nn.Module) -> Any:
    """A module attribute as a project-file value (lists, numbers, booleans)."""
    if p.kind is Kind.BOOL and isinstance(value, torch.Tensor):
        return True  # ``bias`` is stored as the Parameter itself
    if p.kind is Kind.BOOL and value is None and not p.optional:
        return False
    if p.name == "padding" and isinstance(value, str):
        if value == "valid":
            return 0
        spans = [d * (k - 1) for d, k in zip(tup(m.dilation, 2), tup(m.kernel_size, 2), strict=False)]
        if value == "same" and all(s % 2 == 0 for s in spans):
            return [s // 2 for s in spans]
    if isinstance(value, (tuple, list, torch.Size)):
        return [_plain(v, p, m) for v in value]
    return value


def _norm(value: Any, p: ParamSpec) -> Any:
    if p.kind in (Kind.INTS, Kind.FLOATS) and value is not None:
        return tup(value, p.arity)
    return tuple(value) if isinstance(value, list) else value


def _compact(value: Any, p: ParamSpec) -> Any:
    if p.kind in (Kind.INTS, Kind.FLOATS) and isinstance(value, list) and len(set(value)) == 1:
        return value[0]
    return value


def _torch_required(spec: LayerSpec) -> frozenset[str]:
    """Constructor arguments torch requires (kernel_size …): written out even when they equal our default."""
    return _required_args(spec.torch_class)


@cache
def _required_args(torch_class: str) -> frozenset[str]:
    cls = resolve_class(torch_class)
    if cls is None:
        return frozenset()
    try:
        sig = inspect.signature(cls.__init__)  # type: ignore[misc]  # the class's own constructor, by design
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(k for k, p in sig.parameters.items()
                     if p.default is inspect.Parameter.empty and k != "self"
                     and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def user_params(spec: LayerSpec, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate ``raw`` and keep what differs from torch's defaults (inferred arguments dropped)."""
    try:
        resolved = spec.resolve(raw)
    except ParamError as exc:
        raise ModelImportError(f"{where}: {spec.type} {exc}", where) from None
    out = {}
    required = _torch_required(spec)
    for p in spec.params:
        value = resolved[p.name]
        if p.inferred or (_norm(value, p) == _norm(p.default, p) and p.name not in required):
            continue
        out[p.name] = _compact(value, p)
    return out


def module_params(spec: LayerSpec, m: nn.Module, path: str) -> dict[str, Any]:
    """The constructor arguments of ``m`` as ``spec`` params (through ``spec.from_module`` if set)."""
    if spec.from_module is not None:
        try:
            raw = spec.from_module(m)
        except ParamError as exc:
            raise ModelImportError(f"{path}: {spec.type} {exc}", path) from None
    else:
        raw = {}
        for p in spec.params:
            if p.inferred:
                continue
            if not hasattr(m, p.name):
                raise ModelImportError(f"{path}: {type(m).__name__} has no attribute {p.name!r}, which the "
                                       f"{spec.type} layer type needs", path)
            raw[p.name] = _plain(getattr(m, p.name), p, m)
    return user_params(spec, raw, path)


# -- module paths as node ids ---------------------------------------------------------------------

def _segment(name: str) -> str:
    if name.isdigit() or not id_problem(name):
        return name
    seg = re.sub(r"[^A-Za-z0-9_]", "_", name, flags=re.ASCII) or "_"
    if seg[0].isdigit():
        seg = "_" + seg
    return seg + "_" if keyword.iskeyword(seg) else seg


def id_paths(module: nn.Module) -> dict[str, str]:
    """Module path → node id path: the same path, unless a name has characters ids refuse.

    RegNet names its blocks ``block1-0``; its nodes become ``…block1_0…``, and the layers of a bare
    ``nn.Sequential`` (``0``, ``1`` …) become ``_0``, ``_1`` …;
    :func:`~core.importer.import_with_weights` renames the weights' keys to match.
    """
    paths = [p for p, _ in module.named_modules(remove_duplicate=False)]
    out = {p: p for p in paths if not p or not id_problem(p)}
    taken = set(out.values())
    for path in paths:  # parents come before their children
        if path in out:
            continue
        parent, _, leaf = path.rpartition(".")
        head = out[parent]
        # a top-level number (the layers of a bare nn.Sequential) cannot start an id: 0 → _0
        candidate = f"{head}.{_segment(leaf)}" if head else ("_" + leaf if leaf.isdigit() else _segment(leaf))
        while candidate in taken:
            candidate += "_"
        out[path] = candidate
        taken.add(candidate)
    return out


__all__ = ["LayerClasses", "id_paths", "layer_classes", "module_params", "resolve_class", "user_params"]
