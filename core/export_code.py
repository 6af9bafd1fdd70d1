"""The pieces every part of the Python exporter writes: names, literal values, layer constructors.

:mod:`core.export` (the file as a whole) and :mod:`core.export_blocks` with
:mod:`core.export_scope` (a class per repeated block) all build on these, so they live below
the three and each arrow between them points one way. Nothing from a project file reaches the
code unchecked: identifiers pass :func:`safe_name`, values :func:`value_source`, and a
constructor is checked against torch before it is written (:func:`constructor_args`).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from core.compiler import PlannedNode
from core.layers.spec import Emit, Kind

_CHOICE_RE = re.compile(r"[A-Za-z0-9_]+", re.ASCII)
# Globals a layer class defined in core/ may use and still be copied into a torch-only file.
_ALLOWED_GLOBALS = frozenset({"torch", "nn", "F"}) | frozenset(dir(builtins))


class ExportError(ValueError):
    """The network cannot be exported as asked; ``str()`` is one readable sentence."""


# -- names and values ----------------------------------------------------------------------------

def safe_name(text: str) -> str:
    """``text`` if it is a plain ASCII Python identifier (not a keyword), else :class:`ExportError`.

    Every identifier in generated code passes through here: the last line of defence between a
    project file and the code we write.
    """
    if not (isinstance(text, str) and text.isascii() and text.isidentifier() and not keyword.iskeyword(text)):
        raise ExportError(f"{text!r} cannot be used as a Python name in exported code")
    return text


def value_source(value: Any, choices: Sequence[str] = ()) -> str:
    """Python source for a validated parameter value (lists become tuples, as torch stores them)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"cannot write the non-finite number {value}")
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        items = [value_source(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, str) and value in choices and _CHOICE_RE.fullmatch(value):
        return repr(value)
    raise ExportError(f"cannot write the value {str(value)[:40]!r} into code")


def same_value(a: Any, b: Any) -> bool:
    """Whether a parameter value equals torch's default (``[1, 1]`` and ``(1, 1)`` are equal)."""
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return tuple(a) == tuple(b)
    if isinstance(a, (list, tuple)) != isinstance(b, (list, tuple)):
        return False
    try:
        return bool(a == b)
    except (TypeError, RuntimeError):  # pragma: no cover - defaults that don't compare (tensors)
        return False


# -- stateless ops -------------------------------------------------------------------------------

# Terms per statement of a chained operator (Add, Multiply): ``a + b + c`` nests one level per
# term, and Python's parser gives up near 1,000 levels (a 3,000-input Add), so longer chains
# continue on the next line from the running value, in the same left-to-right order as the
# compiled model.
CHAIN_TERMS = 32


def op_statements(node: PlannedNode, inputs: Sequence[str], name: str) -> list[str]:
    """``name = a + b`` for a stateless op, from its declaration's code; long chains over several lines."""
    code = node.spec.code
    if code is None:
        raise ExportError(f"{node.id}: layer type {node.type} declares no code for export")
    ins = list(inputs)
    if not is_split(node, ins):
        return [f"{name} = {code(ins, node.params)}"]
    lines = [f"{name} = {code(ins[:CHAIN_TERMS], node.params)}"]
    for start in range(CHAIN_TERMS, len(ins), CHAIN_TERMS - 1):
        lines.append(f"{name} = {code([name, *ins[start:start + CHAIN_TERMS - 1]], node.params)}")
    return lines


def is_split(node: PlannedNode, inputs: Sequence[object]) -> bool:
    """Whether :func:`op_statements` writes the op over several statements.

    Its variable is then read back on the later lines, so it must not be one of the inputs.
    """
    fx = node.spec.fx
    return fx is not None and fx.emit is Emit.CHAIN and len(inputs) > CHAIN_TERMS


# -- constructors --------------------------------------------------------------------------------

@dataclass
class LayerClasses:
    """Layer classes the file needs that torch.nn lacks (copied from core's declarations)."""

    sources: dict[str, str] = field(default_factory=dict)


def _class_ref(cls: type, node: PlannedNode, classes: LayerClasses) -> str:
    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{safe_name(cls.__name__)}"
    if cls.__module__.split(".")[0] == "core":
        name = safe_name(cls.__name__)
        if name not in classes.sources:
            source, needs = _class_source(cls, node)
            for dep in needs:  # core classes it builds (a Transformer layer's attention) come first
                _class_ref(dep, node, classes)
            classes.sources[name] = source
        return name
    raise ExportError(f"{node.id}: {node.type} builds {cls.__module__}.{cls.__qualname__}, which a file that "
                      f"imports only torch cannot construct")


def _class_source(cls: type, node: PlannedNode) -> tuple[str, list[type]]:
    """The source of a layer class defined in core/, if it only uses torch, builtins and other such
    classes of its own module (returned second, for the file to define too)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError) as exc:
        raise ExportError(f"{node.id}: cannot read the source of {cls.__qualname__}: {exc}") from None
    tree = ast.parse(source)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in (*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg) if a is not None}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    foreign = sorted(loaded - bound - _ALLOWED_GLOBALS)
    home = vars(inspect.getmodule(cls) or object)
    needs = [home[n] for n in foreign if isinstance(home.get(n), type) and issubclass(home[n], nn.Module)
             and home[n].__module__ == cls.__module__]
    foreign = [n for n in foreign if not any(c.__name__ == n for c in needs)]
    if foreign:
        raise ExportError(f"{node.id}: {cls.__qualname__} uses {', '.join(foreign)}, which a file that imports "
                          f"only torch does not have")
    return source, needs


@dataclass(frozen=True)
class CtorArg:
    """One argument of a layer's constructor as the exporter writes it (positional or keyword)."""

    name: str
    value: Any
    positional: bool
    default: Any  # inspect.Parameter.empty: a required argument
    choices: tuple[str, ...] = ()

    @property
    def omitted(self) -> bool:
        """A keyword argument equal to torch's default is left out of the call."""
        return (not self.positional and self.default is not inspect.Parameter.empty
                and same_value(self.value, self.default))

    def literal(self) -> str:
        return value_source(self.value, self.choices)


def constructor_args(node: PlannedNode, classes: LayerClasses | None = None) -> tuple[str, list[CtorArg]]:
    """The class reference and every given argument of ``node``'s constructor, positional ones first.

    The inferred arguments (``in_channels`` …) and the required argument right after them are
    positional, everything else is a keyword. The arguments are checked: the class built from
    exactly these (defaults left out) must describe the same module as the declaration's ``build``.
    """
    classes = classes if classes is not None else LayerClasses()
    assert node.spec.build is not None
    build = node.spec.build
    built = _on_meta(node, lambda: build(node.build_params))
    cls = type(built)
    ref = _class_ref(cls, node, classes)
    sig = inspect.signature(cls)
    # A parameter the build consumes itself (it picks the class) is no constructor argument.
    given = {k: v for k, v in node.build_params.items()
             if k not in node.spec.param_names or node.spec.param(k).constructor}
    unknown = [k for k in given if k not in sig.parameters]
    if unknown:
        raise ExportError(f"{node.id}: {node.type}'s parameter(s) {', '.join(unknown)} are not arguments of "
                          f"{cls.__name__}; the exporter writes constructors from the declared parameters")

    def choices(name: str) -> tuple[str, ...]:
        try:
            pspec = node.spec.param(name)
        except KeyError:
            return ()
        return pspec.choices if pspec.kind is Kind.CHOICE else ()

    args: list[CtorArg] = []
    n_positional = 0
    previous_inferred = False
    for index, (name, p) in enumerate(sig.parameters.items()):
        if name not in given:
            continue
        value = given[name]
        required = p.default is inspect.Parameter.empty
        inferred = name in node.args
        if (index == n_positional and required and (inferred or previous_inferred)
                and p.kind is p.POSITIONAL_OR_KEYWORD):
            args.append(CtorArg(name, value, True, p.default, choices(name)))
            n_positional += 1
            previous_inferred = inferred
            continue
        previous_inferred = False
        args.append(CtorArg(name, value, False, p.default, choices(name)))
    written = [a for a in args if not a.omitted]
    _check_constructor(node, built, cls, [(a.name, a.value) for a in written if a.positional],
                       [(a.name, a.value) for a in written if not a.positional])
    return ref, args


def constructor(node: PlannedNode, classes: LayerClasses | None = None) -> str:
    """``nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)`` for a module node.

    Written from :func:`constructor_args`: values equal to torch's defaults are left out.
    """
    ref, args = constructor_args(node, classes)
    parts = [a.literal() if a.positional else f"{safe_name(a.name)}={a.literal()}" for a in args if not a.omitted]
    return f"{ref}({', '.join(parts)})"


def _on_meta(node: PlannedNode, make: Callable[[], nn.Module]) -> nn.Module:
    """The layer built on the meta device (no memory), to read its class and arguments back.

    Sizes the analysis accepts can still be more than torch can describe (a Linear of 2**62
    features overflows its storage size): that is a sentence about the node, not a traceback.
    """
    try:
        with torch.device("meta"):
            return make()
    except (RuntimeError, OverflowError, ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ExportError(f"{node.id}: torch cannot build this {node.type} with these sizes, so it cannot be "
                          f"exported ({detail})") from None


def _check_constructor(node: PlannedNode, built: nn.Module, cls: type, positional: list[tuple[str, Any]],
                       keywords: list[tuple[str, Any]]) -> None:
    def py(v: Any) -> Any:
        return tuple(v) if isinstance(v, list) else v

    rebuilt = _on_meta(node, lambda: cls(*[py(v) for _, v in positional], **{k: py(v) for k, v in keywords}))
    shapes = [{k: tuple(t.shape) for k, t in m.state_dict().items()} for m in (built, rebuilt)]
    if built.extra_repr() != rebuilt.extra_repr() or shapes[0] != shapes[1]:
        raise ExportError(f"{node.id}: the constructor written from {node.type}'s parameters builds "
                          f"{rebuilt.extra_repr()!r}, not {built.extra_repr()!r} — the layer declaration and "
                          f"torch disagree")


__all__ = ["CHAIN_TERMS", "CtorArg", "ExportError", "LayerClasses", "constructor", "constructor_args", "is_split",
           "op_statements", "safe_name", "same_value", "value_source"]
