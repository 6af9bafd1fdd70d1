"""The frozen declaration of a layer type, and of its parameters.

A :class:`LayerSpec` is the single source of truth about a layer type: the palette reads its
category and doc, the inspector its :class:`ParamSpec` list (by *meaning*, never by widget),
analysis calls :attr:`LayerSpec.infer` and :attr:`LayerSpec.window`, the compiler calls
:attr:`LayerSpec.build` (or :attr:`LayerSpec.function`, written into fx as :attr:`LayerSpec.fx`
says), the exporter writes the constructor from the same parameters, and the importer reads a
module's attributes back through :attr:`LayerSpec.from_module`. The editor names new nodes after
:attr:`LayerSpec.stem` and fills in :attr:`LayerSpec.editor_defaults`; the training dock offers
the :attr:`LayerSpec.feature_maps` layers first; the data-fit check walks back from the Output
through :attr:`LayerSpec.fit_role`. Adding a layer type means adding one declaration.

Shapes here are per sample, channels first, without the batch axis (DESIGN.md §5).
"""

from __future__ import annotations

import importlib
import keyword
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is only needed when a module is actually built
    import torch.nn

Shape = tuple[int, ...]
Params = Mapping[str, Any]


class Category(StrEnum):
    """Palette categories, in the order the palette lists them."""

    IO = "Input / Output"
    CONV = "Convolution"
    POOL = "Pooling"
    NORM = "Normalization"
    ACTIVATION = "Activation"
    LINEAR = "Linear"
    DROPOUT = "Dropout"
    RECURRENT = "Recurrent"  # sequences: Embedding, RNN, LSTM, GRU
    ATTENTION = "Attention"  # multi-head attention, Transformer layers, positional encoding
    SHAPE = "Shape"
    MERGE = "Merge"


class Kind(StrEnum):
    """What a parameter value means. The inspector maps each kind to one widget."""

    INT = "int"  # a whole number within [min, max]
    FLOAT = "float"  # a real number within [min, max]
    BOOL = "bool"
    CHOICE = "choice"  # one of ``choices`` (strings)
    INTS = "ints"  # an int, or a list of ``arity`` ints (kernel_size=3 or [3, 5])
    FLOATS = "floats"  # a float, or a list of ``arity`` floats (Upsample scale_factor)
    SHAPE = "shape"  # a list of positive ints of any length >= 1 (Input shape, LayerNorm)
    NAME = "name"  # a Python identifier, or "" for none (an Output's name: a dict output's key)


class Emit(StrEnum):
    """How the compiler writes a ``function`` op into the fx graph, so ``gm.code`` reads like torch."""

    CALL = "call"  # target(*inputs, **params): one call_function node
    CHAIN = "chain"  # a binary target folded over the inputs left to right: (a + b) + c
    LIST = "list"  # target([inputs], **params): torch.cat([a, b], dim=1)


@dataclass(frozen=True, slots=True)
class FxCall:
    """The fx target of a ``function`` op and how its inputs are passed (:class:`Emit`).

    ``target`` may be a dotted name (``"torch.cat"``), imported only when a graph is compiled, so
    that declaring a layer never imports torch.
    """

    target: Callable[..., Any] | str
    emit: Emit = Emit.CALL

    def resolve(self) -> Callable[..., Any]:
        """The callable itself (a dotted name is imported: ``"torch.cat"`` → ``torch.cat``)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, name = self.target.rpartition(".")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return fn


class FitRole(StrEnum):
    """What a layer is to the data-fit check, which walks back from the first Output to the layer
    whose width sets the network's output size (the number of classes)."""

    HEAD = "head"  # its ``width_param`` sets the output size (Linear.out_features)
    PASS_THROUGH = "pass-through"  # keeps the channels or features it is given (ReLU, Dropout, pooling …)
    OTHER = "other"  # the walk stops here: no one parameter upstream sets the output size


class ParamError(ValueError):
    """A parameter value that its declaration refuses; ``str()`` is a full sentence."""


class LayerError(Exception):
    """Raised by a shape rule: the node cannot accept its inputs.

    ``fix`` is an optional :class:`core.analysis.Fix`-like object (kept untyped here so the
    registry does not depend on analysis); ``param`` names the parameter at fault, if any.
    """

    def __init__(self, message: str, fix: Any = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.param = param


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One constructor argument of a layer, with the torch name, default and valid range."""

    name: str
    kind: Kind
    default: Any
    doc: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    arity: int = 1  # for INTS / FLOATS: how many axes a list must give
    optional: bool = False  # ``None`` is a legal value (torch's ``stride=None`` → kernel_size)
    inferred: bool = False  # derived from the input shape (in_channels …); never required
    min_inclusive: bool = True  # False for e.g. LeakyReLU slope bounds that exclude the end
    # An optional parameter whose unset value (``None``) means "the value of that other parameter":
    # torch's pooling ``stride=None`` is ``kernel_size``. The inspector shows the value in effect.
    default_from: str | None = None
    # False: the declaration's ``build`` consumes the value itself (ConvTranspose2d's ``weight_init`` picks
    # the class it builds), so it is no argument of the built class's constructor and export leaves it out.
    constructor: bool = True

    # -- validation ------------------------------------------------------------------------
    def validate(self, value: Any) -> Any:
        """Return ``value`` normalized (lists for tuples, int for integral floats) or raise.

        Accepts exactly the JSON forms of the project file: numbers, booleans, strings,
        lists. Raises :class:`ParamError` with a message such as
        ``must be a positive integer, got -1``.
        """
        if value is None:
            if self.optional or self.inferred:
                return None
            raise ParamError(f"is required ({self._expect()}), got null")
        kind = self.kind
        if kind is Kind.BOOL:
            if isinstance(value, bool):
                return value
            raise ParamError(f"must be true or false, got {_show(value)}")
        if kind is Kind.CHOICE:
            if isinstance(value, str) and value in self.choices:
                return value
            raise ParamError(f"must be one of {', '.join(map(repr, self.choices))}, got {_show(value)}")
        if kind is Kind.INT:
            return self._number(value, integer=True)
        if kind is Kind.FLOAT:
            return self._number(value, integer=False)
        if kind in (Kind.INTS, Kind.FLOATS):
            integer = kind is Kind.INTS
            if isinstance(value, (list, tuple)):
                if len(value) != self.arity:
                    raise ParamError(
                        f"must be one number or a list of {self.arity}, got a list of {len(value)}"
                    )
                items = [self._number(v, integer=integer) for v in value]
                # A list of identical values is still kept as the user wrote it.
                return items
            return self._number(value, integer=integer)
        if kind is Kind.NAME:
            if isinstance(value, str) and (value == "" or is_identifier_segment(value)):
                return value
            raise ParamError(f"must be a Python identifier (letters, digits and _, not starting with a digit) "
                             f"or empty, got {_show(value)}")
        if kind is Kind.SHAPE:
            if not isinstance(value, (list, tuple)) or not value:
                raise ParamError(f"must be a non-empty list of positive integers, got {_show(value)}")
            return [self._number(v, integer=True, floor=1) for v in value]
        raise ParamError(f"has an unknown kind {kind!r}")  # pragma: no cover - closed enum

    def _number(self, value: Any, *, integer: bool, floor: float | None = None) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"must be {self._expect()}, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"must be a finite number, got {value}")
        if integer:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ParamError(f"must be {self._expect()}, got {value}")
                value = int(value)
        else:
            value = float(value)
        lo = self.min if floor is None else floor
        if lo is not None and (value < lo or (value == lo and not self.min_inclusive)):
            raise ParamError(f"must be {self._expect(lo)}, got {_show(value)}")
        if self.max is not None and value > self.max:
            raise ParamError(f"must be {self._expect(lo)}, got {_show(value)}")
        return value

    def _expect(self, lo: float | None = None) -> str:
        lo = self.min if lo is None else lo
        hi = self.max
        integer = self.kind in (Kind.INT, Kind.INTS, Kind.SHAPE)
        noun = "an integer" if integer else "a number"
        if integer and lo == 1 and hi is None:
            return "a positive integer"
        if integer and lo == 0 and hi is None:
            return "a non-negative integer"
        if lo is not None and hi is not None:
            return f"{noun} from {_num(lo)} to {_num(hi)}"
        if lo is not None:
            rel = ">=" if self.min_inclusive else ">"
            return f"{noun} {rel} {_num(lo)}"
        if hi is not None:
            return f"{noun} <= {_num(hi)}"
        return noun


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window along each spatial axis, for receptive-field propagation.

    ``transposed`` marks a transposed convolution (it divides the jump by the stride).
    """

    kernel: tuple[int, ...]
    stride: tuple[float, ...]  # n/o for adaptive pooling whose output size does not divide its input
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    transposed: bool = False


class _Global:
    """Sentinel: the layer sees the whole input (Linear, Flatten, global pooling)."""

    _instance: _Global | None = None

    def __new__(cls) -> _Global:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "GLOBAL"


GLOBAL: Any = _Global()


class _UnknownField:
    """Sentinel: the layer's receptive field is not computed (a sequence layer, whose field is the whole
    sequence or its prefix, DESIGN.md §5): analysis shows it, and the fields after it, as unknown."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN_FIELD"


UNKNOWN_FIELD: Any = _UnknownField()


class SequenceRule(StrEnum):
    """Receptive-field rule of a sequence layer, whose field is no sliding window (DESIGN.md §5):
    ``WHOLE`` (attention, a bidirectional RNN: every step sees every step), ``PREFIX`` (causal
    attention, a forward RNN: step t sees steps 0…t) and ``STEP`` (an Embedding: each vector is one
    token's, a field of 1 step that later windows widen). See :func:`core.receptive_field.sequence_field`."""

    WHOLE = "whole sequence"
    PREFIX = "prefix"
    STEP = "1 step"


class Scale:
    """Receptive-field rule for resampling by ``factor`` per axis (Upsample): jump /= factor."""

    __slots__ = ("factor",)

    def __init__(self, factor: tuple[float, ...]) -> None:
        self.factor = factor


@dataclass(frozen=True, slots=True)
class Inferred:
    """What a shape rule derives for one node from its parameters and input shapes.

    ``args`` holds the input-dependent constructor arguments (``in_channels`` …) that the
    compiler passes and the inspector shows read-only. ``params`` counts what torch's
    ``parameters()`` yields, ``buffers`` what ``buffers()`` yields (running stats).
    ``warnings`` are ``(message, fix)`` pairs for valid-but-suspicious settings.
    """

    out_shapes: tuple[Shape, ...]
    args: Mapping[str, Any] = field(default_factory=dict)
    params: int = 0
    buffers: int = 0
    macs: int = 0
    warnings: tuple[tuple[str, Any], ...] = ()
    # Elements per sample saved for backward besides the outputs (attention's heads·T·S weights),
    # which the training-memory estimate adds to the outputs' size.
    saved: int = 0


InferFn = Callable[[Params, Sequence[Shape]], Inferred]
WindowFn = Callable[[Params, Sequence[Shape]], "Window | _Global | _UnknownField | SequenceRule | Scale | None"]
BuildFn = Callable[[Params], "torch.nn.Module"]
ShortFn = Callable[[Params], str]
FromModuleFn = Callable[["torch.nn.Module"], dict[str, Any]]
CodeFn = Callable[[Sequence[str], Params], str]
# The editor's starting parameters for a layer dropped from the palette, given its input shape
# when it is dropped onto a node (None when it is not connected yet).
EditorDefaultsFn = Callable[["Shape | None"], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """One layer type. ``type`` is the torch.nn class name or a graph type (Input, Add …).

    Exactly one of ``build`` (a module layer: ``call_module``) or ``function`` (a merge or
    other stateless op: ``call_function``) is set, except for Input/Output.
    ``code`` is how the exporter writes a ``function`` call: given the input variable names
    and the validated params, it returns a Python expression (``x1 + x2``); ``fx`` is how the
    compiler writes it (``None``: ``function(*inputs, **params)``).

    What the editor and the training tools need to know is declared here too: ``id_stem`` names
    new nodes (``bn`` → ``bn1``; empty: the type name in lower case without its ``2d``),
    ``editor_defaults`` gives a dropped layer parameters that work where torch's defaults would
    be an error (Upsample's unset size), ``feature_maps`` marks the layers whose outputs the
    training dock shows first as feature maps, and ``fit_role`` (with ``width_param`` for a head)
    tells the data-fit check which parameter sets the number of classes.
    """

    type: str
    category: Category
    doc: str
    params: tuple[ParamSpec, ...]
    infer: InferFn
    window: WindowFn | None = None  # None: the receptive field passes through unchanged
    build: BuildFn | None = None
    function: Callable[..., Any] | None = None
    code: CodeFn | None = None
    min_inputs: int = 1
    max_inputs: int | None = 1  # None: any number (Add, Concat)
    num_outputs: Callable[[Params], int] | None = None  # None: one output
    short: ShortFn | None = None
    module_class: str | None = None  # dotted class the importer matches; default torch.nn.<type>
    from_module: FromModuleFn | None = None  # importer: module -> params; default reads attributes
    # Our own module class that an imported model may already hold (a compiled NetCanvas model
    # imported again): the importer takes it for this type as well as ``torch_class``.
    own_class: str | None = None
    legacy_names: tuple[str, ...] = ()  # earlier type names that still load
    trainable_note: str = ""  # extra doc for the inspector (e.g. "BN: 2C learnable + 2C buffers")
    fx: FxCall | None = None  # how the compiler emits ``function``; None: function(*inputs, **params)
    id_stem: str = ""  # stem of new node ids ("bn" → bn1); "" → derived from the type name
    editor_defaults: EditorDefaultsFn | None = None  # a dropped layer's params; None: torch's defaults
    feature_maps: bool = False  # the training dock's Maps tab shows this layer's output by default
    fit_role: FitRole | None = None  # to the data-fit check; every registered type declares one
    width_param: str | None = None  # a head's parameter that sets the output width (out_features)
    # Takes integer ids, not floats (Embedding): examples fed to it (conformance tests) are token ids.
    int_inputs: bool = False

    # -- parameters ---------------------------------------------------------------------------
    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.type} has no parameter {name!r}")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def resolve(self, given: Params) -> dict[str, Any]:
        """Validate ``given`` and fill in defaults; raise :class:`ParamError` naming the param.

        Unknown parameter names are refused with the list of known ones.
        """
        out: dict[str, Any] = {}
        for key in given:
            if not any(p.name == key for p in self.params):
                known = ", ".join(self.param_names) or "none"
                raise ParamError(f"{key}: {self.type} has no parameter {key!r} (known: {known})")
        for p in self.params:
            if p.name in given:
                try:
                    out[p.name] = p.validate(given[p.name])
                except ParamError as exc:
                    raise ParamError(f"{p.name}: {exc}") from None
            else:
                out[p.name] = p.default
        return out

    def in_effect(self, resolved: Params) -> dict[str, Any]:
        """``resolved`` params with every unset derived default filled in (``default_from``):
        the values torch actually uses (a MaxPool2d's stride is its kernel_size when unset)."""
        out = dict(resolved)
        for p in self.params:
            if p.default_from is not None and out.get(p.name) is None:
                out[p.name] = out.get(p.default_from)
        return out

    def outputs(self, params: Params) -> int:
        return 1 if self.num_outputs is None else self.num_outputs(params)

    @property
    def is_module(self) -> bool:
        return self.build is not None

    @property
    def torch_class(self) -> str:
        return self.module_class or f"torch.nn.{self.type}"

    @property
    def stem(self) -> str:
        """The stem of a new node's id: ``id_stem``, or ``Conv2d`` → ``conv`` (ids are attribute names)."""
        stem = self.id_stem or re.sub(r"\dd$", "", self.type).lower()
        return re.sub(r"[^a-z0-9_]", "", stem) or "node"

    def starting_params(self, input_shape: Shape | None) -> dict[str, Any]:
        """Parameters for a layer dropped from the palette (``editor_defaults``, else none given)."""
        return {} if self.editor_defaults is None else self.editor_defaults(input_shape)


# -- helpers shared by declarations ------------------------------------------------------------

def tup(value: Any, n: int) -> tuple[Any, ...]:
    """``3`` → ``(3, 3)``; ``[3, 5]`` → ``(3, 5)`` (torch's ``_pair``/``_ntuple``)."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


def torch_builder(type_name: str) -> BuildFn:
    """A ``build`` function passing the validated params to ``torch.nn.<type_name>`` (lists → tuples)."""

    def build(p: Params) -> Any:
        import torch.nn as nn

        return getattr(nn, type_name)(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items()})

    return build


def sample_axis(type_name: str, dim: int, rank: int, what: str = "dim") -> int:
    """torch's ``dim`` (batch axis = 0, negative from the end) → per-sample axis; refuses the batch."""
    nd = rank + 1
    if not -nd <= dim < nd:
        raise LayerError(f"{type_name} {what}={dim} is out of range for {rank}-D samples "
                         f"(dims count the batch axis: 1 is the first axis of a sample)", param=what)
    axis = dim % nd
    if axis == 0:
        raise LayerError(f"{type_name} {what}={dim} is the batch axis, which would mix samples "
                         f"— use 1 (channels) or a later axis", set_param_fix(what, 1), param=what)
    return axis - 1


def numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def fmt_shape(shape: Sequence[int] | None) -> str:
    """``(16, 5, 5)`` → ``16×5×5``; ``None`` → ``?``."""
    if shape is None:
        return "?"
    return "×".join(str(d) for d in shape) if len(shape) else "scalar"


def is_identifier_segment(seg: str) -> bool:
    return seg.isidentifier() and seg.isascii() and not keyword.iskeyword(seg)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    if value is None:
        text = "null"
    return text if len(text) <= 40 else text[:37] + "..."


class FixAction(StrEnum):
    """What a :class:`Fix` does; its value is the action's name as the JSON and the tests write it."""

    SET_PARAM = "set_param"  # set ``param`` of ``node`` to ``value`` (None: inferred or torch's default)
    INSERT_BEFORE = "insert_before"  # a new ``layer_type`` node between ``node`` and its input at ``port``
    REMOVE_EDGE = "remove_edge"  # disconnect the input of ``node`` at ``port``
    REPLACE_TYPE = "replace_type"  # change ``node``'s type to ``layer_type`` (a misspelt type)
    ADD_INPUT = "add_input"  # add the missing Input node
    ADD_OUTPUT = "add_output"  # add the missing Output node
    # connect output ``from_port`` of ``source`` to ``node``'s input ``port`` (and to that of each
    # node in ``value``, a tuple of further ids)
    CONNECT = "connect"
    RENAME = "rename"  # give ``node`` the id ``value`` (an id that clashes with a torch attribute)


@dataclass(frozen=True, slots=True)
class Fix:
    """A concrete, applicable repair proposed with a diagnostic: ``action`` (a :class:`FixAction`)
    says what it does, the other fields what to.

    :func:`core.fixes.apply_fix` applies any of them to a graph, undoably.

    Shape rules don't know the node id; analysis fills ``node`` in with :meth:`at`.
    """

    label: str
    action: FixAction
    node: str | None = None
    param: str | None = None
    value: Any = None
    layer_type: str | None = None
    layer_params: Mapping[str, Any] = field(default_factory=dict)
    port: int = 0
    source: str | None = None
    from_port: int = 0

    def at(self, node: str) -> Fix:
        if self.node is not None:
            return self
        return replace(self, node=node)


def set_param_fix(param: str, value: Any, label: str | None = None) -> Fix:
    shown = "its default" if value is None else _show(value)
    return Fix(label or f"set {param} to {shown}", FixAction.SET_PARAM, param=param, value=value)


def insert_fix(layer_type: str, params: Mapping[str, Any] | None = None, label: str | None = None,
               port: int = 0) -> Fix:
    return Fix(label or f"insert {layer_type}", FixAction.INSERT_BEFORE, layer_type=layer_type,
               layer_params=dict(params or {}), port=port)
