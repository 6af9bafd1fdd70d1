"""Tracing: the source module as a ``torch.fx`` graph whose every value's shape is known.

:func:`trace_module` traces symbolically, keeping every module class the layer registry knows
whole (as a leaf), in training mode so that training-only branches (GoogLeNet's and Inception's
auxiliary heads) are part of the graph. :func:`shape_values` then runs the trace once on meta
(or fake) tensors, so each fx node's ``meta['val']`` holds its value's shape, or the int of
shape arithmetic, without computing anything.

This stage knows torch.fx and nothing of the editable graph; the converter
(:mod:`core.importer.converter`) reads what it leaves in ``meta``. Both failures are turned into
a :class:`~core.importer.errors.ModelImportError` that names the module where tracing stopped.
"""

from __future__ import annotations

import inspect
import logging
import operator
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import fx, nn

from core.importer.errors import ModelImportError
from core.importer.fold import fold_layer_calls
from core.importer.modules import layer_classes
from core.importer.sequence import as_ids, example, takes_ids
from core.layers.spec import fmt_shape

BATCH = 2  # traced batch size: 2 tells the batch axis apart from a real axis of size 1
Shapes = tuple[tuple[int, ...], ...]  # per-sample shape of each tensor input, in the forward's order


class _Tracer(fx.Tracer):
    """Keeps registered layer classes whole and remembers which module it is inside."""

    def __init__(self) -> None:
        super().__init__()
        self.classes = layer_classes()
        self.stack: list[str] = []
        # Buffers read in a traced forward become graph reads too: BatchNorm's own forward does
        # ``self.num_batches_tracked.add_(1)``, which must be recorded, not run on the source.
        self.proxy_buffer_attributes = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, nn.TransformerEncoder) and type(m) not in self.classes:
            return False  # a stack of TransformerEncoderLayer (a layer type each) with a final norm: traced into
        return type(m) in self.classes or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        # Not popped on an exception: the innermost path is where tracing failed.
        self.stack.append(self.path_of_module(m))
        out = super().call_module(m, forward, args, kwargs)
        self.stack.pop()
        return out


class _SizedProxy(fx.Proxy):
    """A proxy that knows its value (a fake tensor), so sizes read from it are plain ints.

    ``x.shape``, ``x.size()``, ``x.dim()``, ``len(x)``, ``x.numel()``, ``x.dtype`` and ``x.device``
    answer with the traced input's concrete values, so ``if x.shape[-1] % 2``, "same" padding
    computed from the input and ``F.pad`` amounts become constants of the trace. Only a tensor's
    *values* stay unknown: an ``if`` on them still fails, and only then does the refusal say the
    forward depends on them.
    """

    value: Any = None

    def _known(self) -> torch.Tensor | None:
        value = self.__dict__.get("value")
        return value if isinstance(value, torch.Tensor) else None

    def size(self, dim: int | None = None) -> Any:
        v = self._known()
        if v is None:
            return self.tracer.create_proxy("call_method", "size", (self,) if dim is None else (self, dim), {})
        return v.size() if dim is None else v.size(dim)

    def dim(self) -> Any:
        v = self._known()
        return self.tracer.create_proxy("call_method", "dim", (self,), {}) if v is None else v.dim()

    def numel(self) -> Any:
        v = self._known()
        return self.tracer.create_proxy("call_method", "numel", (self,), {}) if v is None else v.numel()

    @property
    def shape(self) -> Any:
        v = self._known()
        return self.tracer.create_proxy("call_function", getattr, (self, "shape"), {}) if v is None else v.shape

    @property
    def dtype(self) -> Any:
        v = self._known()
        return self.tracer.create_proxy("call_function", getattr, (self, "dtype"), {}) if v is None else v.dtype

    @property
    def device(self) -> Any:
        v = self._known()
        return self.tracer.create_proxy("call_function", getattr, (self, "device"), {}) if v is None else v.device

    @property
    def is_nested(self) -> Any:  # nn.TransformerEncoder asks before choosing its path
        v = self._known()
        return self.tracer.create_proxy("call_function", getattr, (self, "is_nested"), {}) if v is None else v.is_nested

    @property
    def ndim(self) -> Any:
        v = self._known()
        return self.tracer.create_proxy("call_function", getattr, (self, "ndim"), {}) if v is None else v.dim()

    def __len__(self) -> int:
        v = self._known()
        if v is not None:
            return len(v)
        value = self.__dict__.get("value")
        if isinstance(value, (tuple, list)):
            return len(value)
        return super().__len__()


class _ShapeTracer(_Tracer):
    """:class:`_Tracer` that also computes every value on fake tensors while it traces.

    Each proxy carries its value (:class:`_SizedProxy`), so shape arithmetic on the concrete
    input shape is done in Python and leaves constants in the graph. The values are computed on
    fake tensors: nothing is allocated and the source's weights and buffers are never changed.
    """

    def __init__(self, module: nn.Module, input_shapes: Shapes) -> None:
        super().__init__()
        from torch._subclasses.fake_tensor import FakeTensorMode

        self.mode = FakeTensorMode(allow_non_fake_inputs=True)
        device = _device(module)
        # one example per tensor input, in the forward's order (the required arguments come first)
        self.examples = [self.mode.from_tensor(torch.empty(BATCH, *shape, device=device)) for shape in input_shapes]
        self.eager = False  # True while a value is computed: module calls and attributes run for real

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _SizedProxy(node, self)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        return attr_val if self.eager else super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        if self.eager:
            return forward(*args, **kwargs)
        if args and isinstance(args[0], _SizedProxy) and args[0].node.op == "placeholder" and takes_ids(m):
            args[0].__dict__["value"] = as_ids(args[0].__dict__.get("value"))  # an Input of token ids
        return super().call_module(m, forward, args, kwargs)

    def iter(self, obj: fx.Proxy) -> Any:
        value = obj.__dict__.get("value")
        if isinstance(value, (tuple, list)):
            return iter([obj[i] for i in range(len(value))])  # type: ignore[index]  # Proxy.__getitem__ is patched in
        return super().iter(obj)

    def create_proxy(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                     name: str | None = None, type_expr: Any | None = None,
                     proxy_factory_fn: Any = None) -> Any:
        rv = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if isinstance(rv, fx.Proxy):
            try:
                rv.__dict__["value"] = self._value(kind, target, args, kwargs)
            except Exception:
                rv.__dict__["value"] = None  # unknown: sizes read from it stay symbolic
        return rv

    def _value(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kind == "placeholder":  # an input beyond the shapes given stays unknown; it is refused later
            return self.examples.pop(0) if self.examples else None

        def unwrap(a: Any) -> Any:
            if isinstance(a, fx.proxy.Attribute):  # x.dtype, x.T …: the attribute of its root's value
                return getattr(unwrap(a.root), a.attr)
            if isinstance(a, fx.Proxy):
                value = a.__dict__.get("value")
                if value is None:
                    raise LookupError("unknown value")
                return value
            return a

        vargs = fx.node.map_aggregate(args, unwrap)
        vkwargs = fx.node.map_aggregate(kwargs, unwrap)
        self.eager = True
        try:
            with self.mode, torch.no_grad():
                if kind == "get_attr":
                    value: Any = self.root
                    for seg in str(target).split("."):
                        value = getattr(value, seg)
                    # a fake copy: an in-place op traced on it (num_batches_tracked.add_) leaves the source alone
                    return self.mode.from_tensor(value) if isinstance(value, torch.Tensor) else value
                if kind == "call_function":
                    return target(*vargs, **vkwargs)
                if kind == "call_method":
                    return getattr(vargs[0], target)(*vargs[1:], **vkwargs)
                if kind == "call_module":
                    m = self.root.get_submodule(target)
                    with _mode(m, False):  # eval: a layer run for its shape updates no statistics
                        return m(*vargs, **vkwargs)
        finally:
            self.eager = False
        return None


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's own logging of failures we answer ourselves (fake tensors log a traceback)."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextmanager
def _mode(module: nn.Module, training: bool) -> Iterator[None]:
    """Temporarily set every submodule's train/eval flag; restores each one afterwards."""
    saved = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def trace_module(module: nn.Module, input_shapes: Shapes | None = None) -> fx.GraphModule:
    """``module`` traced in training mode, registered layer classes kept whole.

    Plain symbolic tracing first; when it fails and ``input_shapes`` are given, once more with
    sizes known (:class:`_ShapeTracer`), so a forward that branches or pads on its input's shape
    traces to the constants of that shape. Layer subclasses with their own ``forward`` are then
    folded back into their layer (:func:`core.importer.fold.fold_layer_calls`).
    """
    tracer: _Tracer = _Tracer()
    defaults = _optional_args(module)
    try:
        with _mode(module, True):
            graph = tracer.trace(module, concrete_args=defaults)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError … for dynamic code
        if input_shapes is None:
            raise _trace_error(module, tracer, exc) from None
        tracer = _ShapeTracer(module, input_shapes)
        try:
            with _mode(module, True), _quiet():
                graph = tracer.trace(module, concrete_args=defaults)
        except Exception as exc2:
            raise _trace_error(module, tracer, exc2) from None
    _drop_specializations(graph)
    gm = fx.GraphModule(module, graph, class_name=type(module).__name__)
    fold_layer_calls(gm, module)
    return gm


def _optional_args(module: nn.Module) -> dict[str, Any]:
    """The forward's optional arguments (``mask=None``) at their defaults: the import is of that call.

    Traced as placeholders, ``if mask is not None`` would take the wrong branch and each would be a
    second input; given as constants, they take their default's branch and leave no input.
    """
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params[1:]
            if p.default is not inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _drop_specializations(graph: fx.Graph) -> None:
    """Drop fx's checks that the optional arguments keep their defaults, and their placeholders."""
    for n in reversed(list(graph.nodes)):
        if n.op == "call_function" and n.target is torch.fx._symbolic_trace._assert_is_none:
            graph.erase_node(n)
        elif (n.op == "call_function" and n.target is torch._assert and len(n.args) > 1
              and "has been specialized" in str(n.args[1])):
            graph.erase_node(n)
        elif n.op == "call_function" and n.target is operator.eq and not n.users:
            graph.erase_node(n)
        elif n.op == "placeholder" and n.args and not n.users:
            graph.erase_node(n)


def _trace_error(module: nn.Module, tracer: _Tracer, exc: Exception) -> ModelImportError:
    where = tracer.stack[-1] if tracer.stack else ""
    reason = _reason(exc)
    for internal in ("'_SizedProxy' object", "'Proxy' object"):  # our stand-in for a tensor is no user's word
        reason = reason.replace(internal, "a tensor")
    if "does not support item assignment" in reason:
        reason += " (x[...] = … changes a tensor in place, which a layer node cannot do)"
    if isinstance(tracer, _ShapeTracer) and ("control flow" in reason or "iterate" in reason):
        # sizes were known, so what the forward branched or looped on is a tensor's values
        reason += " (the forward depends on tensor values, e.g. an `if` on a tensor)"
    at = f" in module {where!r} ({type(module.get_submodule(where)).__name__})" if where else " in forward"
    return ModelImportError(f"torch.fx cannot trace {type(module).__name__}{at}: {reason}", where)


class _Recorder(fx.Interpreter):
    """Runs the traced graph and keeps each node's result in ``node.meta['val']``."""

    def __init__(self, gm: fx.GraphModule, at: list[fx.Node]) -> None:
        super().__init__(gm)
        self.at = at  # the node being run, so a failure can say where

    def run_node(self, n: fx.Node) -> Any:
        self.at[:] = [n]
        value = super().run_node(n)
        n.meta["val"] = value
        return value


class _Holder(nn.Module):
    """Lets ``functional_call`` swap the traced module's weights while :class:`_Recorder` runs it."""

    def __init__(self, gm: fx.GraphModule, at: list[fx.Node]) -> None:
        super().__init__()
        self.gm = gm
        self.at = at

    def forward(self, *xs: torch.Tensor) -> Any:
        return _Recorder(self.gm, self.at).run(*xs)


def _inputs_match(gm: fx.GraphModule, module: nn.Module, input_shapes: Shapes) -> None:
    """Refuse a forward whose required arguments are not one per input shape given, naming them."""
    required = [str(n.target) for n in gm.graph.nodes if n.op == "placeholder" and not n.args]
    if len(required) != len(input_shapes):
        given = "one input shape was" if len(input_shapes) == 1 else f"{len(input_shapes)} input shapes were"
        raise ModelImportError(
            f"{type(module).__name__}.forward takes {len(required)} tensor input{'s' * (len(required) != 1)} "
            f"({', '.join(required)}), but {given} given: give one shape per input, in the forward's order"
            + (f", or wrap the model in a module whose forward supplies {', '.join(required[len(input_shapes):])} "
               f"itself" if len(input_shapes) < len(required) else ""))


def _device(module: nn.Module) -> torch.device:
    first = next(iter([*module.parameters(), *module.buffers()]), None)
    return first.device if first is not None else torch.device("cpu")


def _fmt_shapes(input_shapes: Shapes) -> str:
    return " and ".join(fmt_shape(s) for s in input_shapes)


def _where(module: nn.Module, n: fx.Node | None) -> tuple[str, str]:
    """(module path, "module 'p' (Class)") of the module whose forward runs fx node ``n``."""
    if n is None:
        return "", ""
    if n.op == "call_module":
        path = str(n.target)
    else:
        stack = n.meta.get("nn_module_stack") or {}
        path = str(list(stack.values())[-1][0]) if stack else ""
    try:
        cls = type(module.get_submodule(path)).__name__
    except AttributeError:
        return path, f"module {path!r}"
    return path, (f"module {path!r} ({cls})" if path else f"{cls}.forward")


def _traced_values(reason: str, n: fx.Node | None) -> str:
    """A forward's own message with the sizes it printed while traced (``Proxy(getitem_2)``) written out:
    torchvision's ViT says ``Expected 224 but got Proxy(getitem_2)!`` of an image that is 384 high."""
    if n is None or "Proxy(" not in reason:
        return reason
    known = {node.name: node.meta.get("val") for node in n.graph.nodes}

    def value(match: re.Match[str]) -> str:
        val = known.get(match.group(1))
        return str(val) if isinstance(val, (int, float)) and not isinstance(val, bool) else "a traced value"

    return re.sub(r"Proxy\((\w+)\)", value, reason)


def _run_error(module: nn.Module, input_shapes: Shapes, n: fx.Node | None, exc: Exception) -> ModelImportError:
    """Why the trace does not run on the input, in the user's terms: which module, which input it needs."""
    reason = _traced_values(_reason(exc), n)
    path, where = _where(module, n)
    target = module.get_submodule(path) if n is not None and n.op == "call_module" else None
    takes_ids = isinstance(target, nn.Embedding) or (n is not None and n.target is torch.nn.functional.embedding)
    if takes_ids or ("Long" in reason and ("Float" in reason or "float" in reason)):
        what = where or type(module).__name__
        return ModelImportError(
            f"{what} takes integer ids (torch.long), but the forward's argument ({_fmt_shapes(input_shapes)}) "
            f"reaches it through other operations: an input is imported as token ids when the Embedding reads "
            f"it directly", path)
    at = f"{where} fails: " if where else ""
    inputs = f"a {_fmt_shapes(input_shapes)} input" if len(input_shapes) == 1 else f"{_fmt_shapes(input_shapes)} inputs"
    return ModelImportError(f"{type(module).__name__} does not run on {inputs}: {at}"
                            f"{reason} — check the input shape (per sample, without the batch axis)", path)


def shape_values(gm: fx.GraphModule, module: nn.Module, input_shapes: Shapes,
                 ids: frozenset[int] = frozenset()) -> None:
    """Fill ``node.meta['val']`` with every value's shape (ints for shape arithmetic), computing nothing.

    Runs on meta tensors standing in for the weights; a forward that needs real values (a tensor
    constant that is not a buffer) runs on fake tensors instead, which is slower but general.
    The inputs at positions ``ids`` are token ids (``torch.long``, see :mod:`core.importer.sequence`).
    """
    _inputs_match(gm, module, input_shapes)
    at: list[fx.Node] = []
    try:
        # eval(): nothing in the source (BatchNorm running statistics) may change while we look.
        with _mode(module, False), torch.no_grad(), _quiet():  # shape propagation: the user sees no torch chatter
            holder = _Holder(gm, at)
            try:
                state = {k: torch.empty_like(v, device="meta")
                         for k, v in [*holder.named_parameters(), *holder.named_buffers()]}
                xs = tuple(example(shape, i in ids, BATCH, "meta") for i, shape in enumerate(input_shapes))
                torch.func.functional_call(holder, state, xs)
            except Exception:
                # The fallback's machinery is imported only when a model needs it.
                from torch._subclasses.fake_tensor import FakeTensorMode
                from torch.fx.passes.fake_tensor_prop import FakeTensorProp

                class _FakeRecorder(FakeTensorProp):
                    def run_node(self, n: fx.Node) -> Any:
                        at[:] = [n]
                        return super().run_node(n)

                at.clear()
                mode = FakeTensorMode(allow_non_fake_inputs=True)
                device = _device(module)
                fakes = [mode.from_tensor(example(shape, i in ids, BATCH, device))
                         for i, shape in enumerate(input_shapes)]
                _FakeRecorder(gm, mode).propagate_dont_convert_inputs(*fakes)
    except Exception as exc:
        raise _run_error(module, input_shapes, at[0] if at else None, exc) from None


__all__ = ["BATCH", "shape_values", "trace_module"]
