"""Reading an ONNX file for the importer: the checked model, its inputs, constants and shapes.

:func:`read_onnx` turns a path into an :class:`OnnxModel`, or refuses it in one line naming the
file: a file that is not ONNX (or is cut short) does not parse, a model the ``onnx`` checker
refuses, a model without a data input or with a non-float one, sizes that are not fixed (each
data input becomes one Input node). ONNX's own
shape inference then gives the full shape of every value it can (the batch axis first, symbolic);
the importer compares its own shapes with these, node by node.

Constants are what the graph computes without its input: initializers, ``Constant`` nodes and
the shape arithmetic exporters write around ``Reshape``/``Pad``/``Resize``
(``Shape → Gather → Concat``). :meth:`OnnxModel.fold` evaluates such a node with ONNX's reference
evaluator; ``Shape`` of a real tensor is known too, with :data:`BATCH_MARK` standing for the batch
size, so a target shape ``[N, -1]`` is recognised as "keep the batch, flatten the rest".
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.importer.errors import ModelImportError

# The batch size in folded shape constants: a number no model uses as a size, so arithmetic on
# a shape that still shows it is recognisable as "the batch axis" (see ``Reshape``).
BATCH_MARK = 1_000_003

FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def as_written(x: float) -> float:
    """A float32 attribute as the number it was written as (1e-05, not 9.99999974e-06)."""
    return float(f"{float(x):.7g}")


def ints(values: Any) -> list[int]:
    """An attribute or constant as a list of Python ints."""
    return [int(v) for v in np.asarray(values).reshape(-1)]


def node_label(node: Any) -> str:
    """How a message names an ONNX node: ``node 'conv1' (Conv)``."""
    return f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"


def attributes(node: Any) -> dict[str, Any]:
    """A node's attributes as Python values (strings decoded, tensors as numpy arrays)."""
    from onnx import helper, numpy_helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif hasattr(value, "dims") and hasattr(value, "data_type"):  # a TensorProto
            value = numpy_helper.to_array(value)
        out[a.name] = value
    return out


@dataclass
class OnnxModel:
    """A checked ONNX model with what the conversion reads from it."""

    path: str
    model: Any  # onnx.ModelProto
    opset: int  # of the default domain
    inputs: list[tuple[str, tuple[int, ...]]]  # each data input's name and per-sample shape (no batch axis)
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    shapes: dict[str, tuple[int | None, ...]] = field(default_factory=dict)  # full shapes, batch first
    consumers: dict[str, list[Any]] = field(default_factory=dict)  # value name → nodes reading it
    producers: dict[str, Any] = field(default_factory=dict)  # value name → the node writing it
    fixed_batch: int | None = None  # the batch size the file fixed, if it fixed one (Reshape [1, -1])
    # The nodes in order, read once: protobuf may hand out a new wrapper object on each access,
    # and the conversion tells nodes apart by identity.
    nodes: list[Any] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        """The first data input's name."""
        return self.inputs[0][0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The first data input's per-sample shape."""
        return self.inputs[0][1]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.model.graph.output]

    def sample_shape(self, name: str) -> tuple[int, ...] | None:
        """ONNX's per-sample shape of value ``name`` (batch axis dropped), or None when not fully known."""
        full = self.shapes.get(name)
        if not full or any(d is None for d in full[1:]):
            return None
        return tuple(int(d) for d in full[1:])  # type: ignore[arg-type]  # None ruled out above

    def fold(self, node: Any, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """Evaluate ``node`` on constant inputs with ONNX's reference evaluator (opset of this model)."""
        import onnx
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        names = [n for n in node.input]
        feeds = {n: v for n, v in zip(names, inputs, strict=True) if n and v is not None}
        graph = helper.make_graph([node], "fold", [helper.make_value_info(n, onnx.TypeProto()) for n in feeds],
                                  [helper.make_value_info(n, onnx.TypeProto()) for n in node.output if n])
        model = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        result = ReferenceEvaluator(model).run(None, feeds)
        return [np.asarray(r) for r in result]


def _shape_of(type_proto: Any) -> tuple[int | None, ...] | None:
    t = type_proto.tensor_type if type_proto.HasField("tensor_type") else None
    if t is None or not t.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in t.shape.dim)


def _load(path: str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load(path)
    except FileNotFoundError:
        raise ModelImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelImportError(f"{path}: is a folder, not an ONNX file") from None
    except OSError as exc:
        raise ModelImportError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        why = "it does not parse" if isinstance(exc, DecodeError) else str(exc).splitlines()[0][:200]
        raise ModelImportError(f"{path} is not a readable ONNX model (truncated or another format?): {why}") from None


def _check(path: str, model: Any) -> None:
    import onnx

    if not model.graph.node and not model.graph.output:
        raise ModelImportError(f"{path} is not an ONNX model: it holds no graph (an empty or foreign file?)")
    try:
        # the checker reads the file itself: a model of weights is not serialised again for it
        onnx.checker.check_model(path)
    except (onnx.checker.ValidationError, ValueError) as exc:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ModelImportError(f"{path}: the ONNX checker refuses the model: {first[:200]}") from None


def _the_inputs(path: str, model: Any, given: Sequence[Sequence[int]] | None,
                ) -> tuple[list[tuple[str, tuple[int, ...]]], int | None]:
    """The data inputs (initializers listed as inputs by old exporters are not data), each with its
    per-sample sizes (``given``: one shape per input, in the file's order), and the batch size the
    file fixed, if it fixed one."""
    weights = {i.name for i in model.graph.initializer}
    data = [i for i in model.graph.input if i.name not in weights]
    if not data:
        raise ModelImportError(f"{path}: the model has no data input; a network here starts from at least one Input")
    if given is not None and len(given) != len(data):
        names = ", ".join(repr(i.name) for i in data)
        raise ModelImportError(f"{path}: the model has {len(data)} data input{'s' * (len(data) != 1)} ({names}), "
                               f"but {len(given)} --input-shape {'was' if len(given) == 1 else 'were'} given: give "
                               f"one per input, in that order")
    out = [(inp.name, _sizes(path, inp, given[k] if given is not None else None)) for k, inp in enumerate(data)]
    dims = list(data[0].type.tensor_type.shape.dim)
    fixed = int(dims[0].dim_value) if dims[0].HasField("dim_value") and dims[0].dim_value >= 1 else None
    for inp in data:
        batch = inp.type.tensor_type.shape.dim[0]
        batch.Clear()  # the first axis is the batch, whatever the file fixed it to
        batch.dim_param = "batch"
    return out, fixed


def _sizes(path: str, inp: Any, given: Sequence[int] | None) -> tuple[int, ...]:
    """Input ``inp``'s sizes without the batch axis: the file's, or ``given`` where the file leaves them open."""
    tt = inp.type.tensor_type
    if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
        import onnx

        tensor = inp.type.HasField("tensor_type")
        kind = onnx.TensorProto.DataType.Name(tt.elem_type).lower() if tensor else "not a tensor"
        raise ModelImportError(f"{path}: input {inp.name!r} is {kind}; NetCanvas imports networks whose input "
                               f"is a float tensor (images, features)")
    dims = list(tt.shape.dim)
    if len(dims) < 2:
        raise ModelImportError(f"{path}: input {inp.name!r} has {len(dims)} axes; the first axis is taken as the "
                               f"batch, so it needs at least two")
    if given is not None:
        shape = tuple(int(d) for d in given)
        if len(shape) != len(dims) - 1 or any(d < 1 for d in shape):
            raise ModelImportError(f"{path}: --input-shape {','.join(map(str, shape))} does not fit input "
                                   f"{inp.name!r}, which has {len(dims) - 1} axes besides the batch")
        for d, size in zip(dims[1:], shape, strict=True):
            if d.HasField("dim_value") and d.dim_value != size:
                raise ModelImportError(f"{path}: input {inp.name!r} is fixed at {[x.dim_value for x in dims[1:]]}, "
                                       f"not {list(shape)}")
            d.dim_value = size
        return shape
    for axis, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value < 1:
            named = f" ({d.dim_param!r})" if d.dim_param else ""
            raise ModelImportError(f"{path}: input {inp.name!r} has no fixed size at axis {axis}{named}; give "
                                   f"the sizes without the batch axis (--input-shape C,H,W)")
    return tuple(int(d.dim_value) for d in dims[1:])


def _without_weights(model: Any) -> Any:
    """The model with its large initializers declared (name, type, shape) but not holding their data:
    shape inference needs their shapes only, and serialising a VGG's 500 MB for it took seconds.
    Small ones (shapes for Reshape, pads, scales) keep their values for inference's data propagation."""
    from onnx import helper

    g = model.graph
    size = {i.name: math.prod(i.dims) for i in g.initializer}
    small = [i for i in g.initializer if size[i.name] <= 1024]
    named = {i.name for i in g.input}
    declared = [helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in g.initializer
                if size[i.name] > 1024 and i.name not in named]
    graph = helper.make_graph(list(g.node), g.name, [*g.input, *declared], list(g.output), small,
                              value_info=list(g.value_info))
    light = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    light.functions.extend(model.functions)
    return light


def read_onnx(path: str | os.PathLike[str],
              input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None) -> OnnxModel:
    """Load, check and shape-infer the ONNX model at ``path``; raises :class:`ModelImportError`.

    ``input_shape``: the per-sample sizes of the one data input, or one shape per data input (in the
    file's order) for a model with several; needed only where the file leaves sizes open."""
    import onnx
    from onnx import numpy_helper

    where = os.fspath(path)
    model = _load(where)
    _check(where, model)
    given: list[Sequence[int]] | None = None
    if input_shape is not None:
        items = list(input_shape)
        flat = all(isinstance(d, int) for d in items)  # one shape, (3, 224, 224), or one per input
        given = [[int(d) for d in items]] if flat else [list(s) for s in items]  # type: ignore[arg-type, call-overload]
    inputs, fixed = _the_inputs(where, model, given)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    try:
        inferred = onnx.shape_inference.infer_shapes(_without_weights(model), check_type=False, strict_mode=False,
                                                     data_prop=True)
    except Exception:  # inference is a cross-check only; the conversion infers its own shapes
        inferred = model
    m = OnnxModel(where, model, int(opset), inputs, fixed_batch=fixed)
    for init in model.graph.initializer:
        m.consts[init.name] = numpy_helper.to_array(init)
    for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        s = _shape_of(vi.type)
        if s is not None:
            m.shapes[vi.name] = s
    m.nodes = list(model.graph.node)
    for node in m.nodes:
        for name in node.input:
            if name:
                m.consumers.setdefault(name, []).append(node)
        for name in node.output:
            m.producers[name] = node
    return m


__all__ = ["BATCH_MARK", "OnnxModel", "as_written", "attributes", "ints", "node_label", "read_onnx"]
