"""The state of one ONNX import while its nodes are walked: values, shapes, weights, node ids.

:class:`OnnxConversion` is what the handlers of :mod:`core.importer.onnx_ops` work through: it
hands them each input as a layer output (a :class:`~core.importer.values.Ref`) or a constant (a
numpy array), adds the layer nodes they ask for with shapes from the layer declarations (compared
with ONNX's own shape inference as they are added), keeps the weights keyed for the compiled
graph, and names the nodes.

Node ids: a node with weights takes the prefix of its initializers' names (``layer1.0.conv1``
from ``layer1.0.conv1.weight``, what torch's exporters write); others take the module path torch's
exporters record (``pkg.torch.onnx.name_scopes``, or the ``/layer1/layer1.0/relu/Relu`` names of
the older exporter), else the node's name made a valid id, else the op type.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.graph import Graph, id_problem
from core.importer.errors import ModelImportError
from core.importer.modules import user_params
from core.importer.onnx_read import OnnxModel, node_label
from core.importer.values import Ref
from core.layers import get_spec
from core.layers.spec import LayerError, ParamError, fmt_shape

Shape = tuple[int, ...]
Value = Ref | np.ndarray

# Names of nn.Module attributes: a node id segment equal to one would shadow it in the compiled module.
_TORCH_NAMES = frozenset(dir(torch.nn.Module()))
_WEIGHT_LEAVES = ("weight", "bias", "running_mean", "running_var")


def _segment(seg: str) -> str:
    seg = re.sub(r"[^A-Za-z0-9_]", "_", seg, flags=re.ASCII) or "_"
    if seg[0].isdigit():
        seg = "_" + seg
    if keyword.iskeyword(seg) or seg in _TORCH_NAMES:
        seg += "_"
    return seg


def valid_id(text: str) -> str:
    """``text`` as a node id: the same where it is one, else each dotted segment made valid."""
    if not id_problem(text) and not any(s in _TORCH_NAMES for s in text.split(".")):
        return text
    parts = [p for p in text.split(".") if p] or ["op"]
    out = [_segment(parts[0])] + [p if p.isdigit() else _segment(p) for p in parts[1:]]
    return ".".join(out)


def _scope_path(node: Any) -> str | None:
    """The module path an exporter recorded for ``node`` (None for a call outside any submodule)."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            return scopes[-2] if len(scopes) >= 3 and scopes[-2] else None
    name = node.name
    if name.startswith("/") and name.count("/") >= 2:
        # torch's older exporter: /features/features.1/conv/conv.0/Conv is features.1.conv.0 (a scope
        # that starts with the one before it names that one's child)
        path, prev = "", ""
        for part in name.strip("/").split("/")[:-1]:
            leaf = part[len(prev) + 1:] if prev and part.startswith(prev + ".") else part
            path, prev = (f"{path}.{leaf}" if path else leaf), part
        return path or None
    return None


class OnnxConversion:
    """One walk over the ONNX nodes that builds the graph, the state_dict and the expected shapes."""

    def __init__(self, m: OnnxModel) -> None:
        self.m = m
        self.graph = Graph()
        self.values: dict[str, Value] = dict(m.consts)  # ONNX value name → a node's output or a constant
        self.out_shapes: dict[Ref, Shape] = {}  # per-sample shape of each node output
        self.state: dict[str, torch.Tensor] = {}
        self.done: set[int] = set()  # ids of ONNX nodes a handler has folded into an earlier node
        # Ids that nodes with weights will take: nothing else may take them, or a path under them.
        self.reserved = {p for p in (self._weights_prefix(n) for n in m.nodes) if p}
        # Module paths that hold other modules (layer1.0 of layer1.0.conv1): a call recorded there is
        # a call in that module's own forward, named after it (layer1.0.add), never the path itself.
        paths = self.reserved | {valid_id(p) for p in (_scope_path(n) for n in m.nodes) if p}
        self.containers = {".".join(p.split(".")[:k]) for p in paths for k in range(1, p.count(".") + 1)}

    # -- what handlers read ----------------------------------------------------------------------
    def fail(self, node: Any, why: str) -> ModelImportError:
        return ModelImportError(f"cannot import ONNX {node_label(node)}: {why}", node.name or None)

    def has(self, node: Any, i: int) -> bool:
        return i < len(node.input) and bool(node.input[i])

    def value(self, node: Any, i: int) -> Value:
        name = node.input[i]
        if name not in self.values:
            raise self.fail(node, f"its input {name!r} comes from nothing imported before it")
        return self.values[name]

    def tensor(self, node: Any, i: int = 0) -> Ref:
        """Input ``i``, which must come from a layer (not a constant)."""
        v = self.value(node, i)
        if not isinstance(v, Ref):
            raise self.fail(node, f"input {i + 1} ({node.input[i]!r}) is a constant tensor; a layer needs it to "
                                  f"come from the network's input")
        return v

    def const(self, node: Any, i: int, what: str) -> np.ndarray | None:
        """Input ``i`` as a constant (None when the input is left out); a computed one is refused."""
        if not self.has(node, i):
            return None
        v = self.value(node, i)
        if isinstance(v, Ref):
            raise self.fail(node, f"its {what} ({node.input[i]!r}) is computed by the network; NetCanvas needs it "
                                  f"to be a constant")
        return v

    def shape(self, ref: Ref) -> Shape:
        return self.out_shapes[ref]

    def rank(self, ref: Ref) -> int:
        """Number of axes, the batch axis included (what ONNX's axis attributes count)."""
        return len(self.out_shapes[ref]) + 1

    def axis(self, node: Any, axis: int, rank: int) -> int:
        """A non-negative axis; the batch axis (0) is refused."""
        a = axis + rank if axis < 0 else axis
        if not 0 < a < rank:
            raise self.fail(node, f"it works along axis {axis} of a {rank}-axis tensor, which is the batch axis "
                                  f"or none at all; a layer works within each sample")
        return a

    def is_only_user(self, value_name: str, node: Any) -> bool:
        users = self.m.consumers.get(value_name, [])
        return len(users) == 1 and users[0] is node and value_name not in self.m.output_names

    def peek(self, name: str) -> Value | None:
        """Value ``name`` if known by now; a ``Constant`` node later in the file is evaluated early
        (patterns look ahead at the constants of the nodes they fold)."""
        if name in self.values or not name:
            return self.values.get(name)
        producer = self.m.producers.get(name)
        if producer is not None and producer.op_type == "Constant":
            self.fold(producer, [])
            self.done.add(id(producer))
        return self.values.get(name)

    def users(self, value_name: str) -> list[Any]:
        return self.m.consumers.get(value_name, [])

    # -- what handlers do ------------------------------------------------------------------------
    def fold(self, node: Any, inputs: Sequence[Any]) -> None:
        """Evaluate a node whose inputs are all constants; its outputs become constants."""
        if node.op_type.startswith("Random"):
            raise self.fail(node, "it draws random numbers, which an imported layer cannot reproduce")
        try:
            results = self.m.fold(node, inputs)
        except Exception as exc:  # the reference evaluator raises many kinds; the answer is one line
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            raise self.fail(node, f"its constant inputs cannot be evaluated ({first})") from None
        for name, value in zip(node.output, results, strict=False):
            if name:
                self.alias(name, value)

    def alias(self, name: str, value: Value) -> None:
        """ONNX value ``name`` is ``value`` (Identity, Dropout in inference, a folded pattern)."""
        self.values[name] = value

    def add(self, node: Any, type_name: str, params: Mapping[str, Any], inputs: Sequence[Ref],
            weights: Mapping[str, np.ndarray] | None = None, outputs: Sequence[str] | None = None,
            hint: str | None = None) -> list[Ref]:
        """Add a ``type_name`` node for ONNX ``node`` fed by ``inputs``; its ports become ``outputs``
        (default: the ONNX node's outputs) and ``weights`` its state_dict entries."""
        spec = get_spec(type_name)
        if spec is None:
            raise self.fail(node, f"it needs a {type_name} layer, which NetCanvas does not have yet")
        node_id = self._fresh(node, hint, weights)
        params = user_params(spec, params, node_id)
        resolved = spec.resolve(params)
        try:
            inferred = spec.infer(resolved, [self.out_shapes[r] for r in inputs])
        except (LayerError, ParamError) as exc:
            raise self.fail(node, f"as {type_name}: {getattr(exc, 'message', str(exc))}") from None
        self.graph.add_node(type_name, node_id, params)
        for port, ref in enumerate(inputs):
            self.graph.add_edge(ref.node, node_id, port, ref.port)
        names = list(node.output if outputs is None else outputs)
        refs = [Ref(node_id, port) for port in range(len(inferred.out_shapes))]
        for ref, shape in zip(refs, inferred.out_shapes, strict=True):
            self.out_shapes[ref] = tuple(shape)
        for port, name in enumerate(names):
            if not name:
                continue
            if port >= len(refs):
                raise self.fail(node, f"its output {port + 1} ({name!r}) has no counterpart in the {type_name} layer")
            self._expect(node, name, refs[port], type_name)
            self.values[name] = refs[port]
        for leaf, array in (weights or {}).items():
            self.state[f"{node_id}.{leaf}"] = torch.from_numpy(np.array(array, dtype=np.float32))
        if type_name.startswith("BatchNorm"):
            self.state[f"{node_id}.num_batches_tracked"] = torch.tensor(0)
        return refs

    def _expect(self, node: Any, name: str, ref: Ref, type_name: str) -> None:
        want = self.m.sample_shape(name)
        got = self.out_shapes[ref]
        if want is not None and want != got:
            raise self.fail(node, f"as {type_name} it gives {fmt_shape(got)} per sample but ONNX gives "
                                  f"{fmt_shape(want)}; this configuration cannot be imported faithfully")

    # -- ids --------------------------------------------------------------------------------------
    def _weights_prefix(self, node: Any) -> str | None:
        for name in node.input[1:]:
            head, dot, leaf = name.rpartition(".")
            if dot and head and leaf in _WEIGHT_LEAVES and name in self.m.consts:
                return valid_id(head)
        return None

    def clashes(self, candidate: str) -> bool:
        """Whether ``candidate`` is taken, or a path above or below a taken id."""
        taken = [*self.graph.nodes, *(r for r in self.reserved)]
        return any(t == candidate or t.startswith(candidate + ".") or candidate.startswith(t + ".") for t in taken)

    def _fresh(self, node: Any, hint: str | None, weights: Mapping[str, np.ndarray] | None) -> str:
        if weights:
            own = self._weights_prefix(node)
            if own is not None and own not in self.graph.nodes:
                return own
        scope = _scope_path(node)
        if hint is not None:
            base = f"{scope}.{hint}" if scope else hint
        elif scope:
            base = scope
        elif node.name and not node.name.startswith("/"):
            base = node.name.removeprefix("node_") or node.name  # the dynamo exporter's prefix: node_add_45
        else:
            base = node.op_type.lower()
        stem = valid_id(base)
        op = _segment(node.op_type.lower())
        if stem in self.containers:
            stem = f"{stem}.{op}"  # a call in a block's own forward (layer1.0 → layer1.0.add)
        candidate, k = stem, 0
        while self.clashes(candidate):
            if stem.rpartition(".")[2].isdigit():  # features.0_1 is no id: features.0.conv, features.0.conv_1
                stem = candidate = f"{stem}.{op}"
                continue
            k += 1
            candidate = f"{stem}_{k}"
        return candidate

    def add_outputs(self) -> None:
        """One Output node per ONNX graph output."""
        for i, out in enumerate(self.m.model.graph.output):
            v = self.values.get(out.name)
            if not isinstance(v, Ref):
                raise ModelImportError(f"{self.m.path}: output {out.name!r} is a constant, not computed from the "
                                       f"input; only computed tensors can be Outputs")
            # the file's name for it where that is an id (our export writes the Output ids), else output, output_1 …
            named = not id_problem(out.name) and out.name not in _TORCH_NAMES
            stem = out.name if named else "output" if i == 0 else f"output_{i}"
            node_id, k = stem, 0
            while self.clashes(node_id):
                k += 1
                node_id = f"{stem}_{k}"
            self.graph.add_node("Output", node_id)
            self.graph.add_edge(v.node, node_id, 0, v.port)


Handler = Callable[[OnnxConversion, Any], None]  # what the op tables map an ONNX op type to

__all__ = ["Handler", "OnnxConversion", "valid_id"]
