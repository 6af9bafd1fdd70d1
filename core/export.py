"""Exporters (DESIGN.md §6–7): standalone Python source, ONNX, and the project file.

:func:`python_source` writes one readable file that imports only torch: an ``nn.Module``
subclass constructible with no arguments, whose ``__init__`` names each layer at its module path
(``self.conv1 = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)``, written from the
declaration's parameters and torch's constructor signature, never from ``repr``), and whose
``forward`` calls them in topological order. Nested ids (``layer1.0.conv1``) become nested
containers, so the file loads the compiled model's ``state_dict`` with ``strict=True``. A block
structure used more than once (ResNet's bottleneck) is written once as its own class and built
per block with the arguments that differ (:mod:`core.export_blocks`), as torchvision writes it.

Nothing from a project file reaches the code unchecked: identifiers go through
:func:`safe_name` (ASCII identifiers, no keywords, ids re-validated by
:func:`core.graph.id_problem`), the class name and docstring text are sanitised from the project
name, numbers are rendered from validated numbers, and strings only from a declaration's closed
choices. Those checked pieces (names, values, constructors) are :mod:`core.export_code`, below
this module and the block writers alike.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import keyword
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.compiler import Plan, PlannedNode, compile_plan, input_names, plan_graph, var_name
from core.export_blocks import structured_model
from core.export_code import (
    CtorArg,
    ExportError,
    LayerClasses,
    constructor,
    constructor_args,
    is_split,
    op_statements,
    safe_name,
)
from core.graph import Graph, id_problem
from core.layers.spec import fmt_shape
from core.module_names import id_clash, layer_names
from core.project import Project, atomic_write_text, remove_stale_temp_files, replace_file, save_project

EXTENSIONS = (".py", ".onnx", ".json")
# Names the generated module itself uses; variables and classes must not shadow them.
_RESERVED = frozenset({"self", "torch", "nn", "F", "x"})


# -- names and text ------------------------------------------------------------------------------

def class_name(project_name: str) -> str:
    """A CamelCase class name from a free-text project name (``LeNet-5 on Shapes`` → ``LeNet5OnShapes``)."""
    words = re.findall(r"[A-Za-z0-9]+", project_name, re.ASCII)
    name = "".join(w[0].upper() + w[1:] for w in words)[:60]
    if not name or name[0].isdigit():
        name = "Net" + name
    if name in _RESERVED or keyword.iskeyword(name) or hasattr(builtins, name):
        name += "Model"
    return safe_name(name)


def doc_text(text: str, limit: int = 100) -> str:
    """Free text made safe inside a ``\"\"\"`` docstring: one line, no quotes or backslashes."""
    cleaned = "".join(ch if ch.isprintable() and ch not in "\"'\\" else " " for ch in text)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 3].rstrip() + "..."
    return cleaned


# -- module tree ---------------------------------------------------------------------------------

@dataclass
class _Tree:
    """A module path prefix: a layer (``node``) or a plain container, with its children."""

    node: PlannedNode | None = None
    children: dict[str, _Tree] = field(default_factory=dict)

    @property
    def is_list(self) -> bool:
        """A container whose children are exactly 0…n-1: written as an ``nn.ModuleList``."""
        return self.node is None and bool(self.children) and set(self.children) == {
            str(i) for i in range(len(self.children))}


def _tree(nodes: Sequence[PlannedNode]) -> _Tree:
    root = _Tree()
    for n in nodes:
        t = root
        for seg in n.id.split("."):
            t = t.children.setdefault(seg, _Tree())
        t.node = n
    return root


class _InitWriter:
    """Writes ``__init__`` statements and remembers the access expression of every layer."""

    def __init__(self, classes: LayerClasses) -> None:
        self.classes = classes
        self.lines: list[str] = []
        self.access: dict[str, str] = {}
        self.containers = False

    def literal(self, t: _Tree, indent: int) -> str:
        if t.node is not None:
            return constructor(t.node, self.classes)
        self.containers = True
        if t.is_list:
            pad = " " * (indent + 4)
            items = "".join(f"{pad}{self.literal(t.children[str(i)], indent + 4)},\n"
                            for i in range(len(t.children)))
            return "nn.ModuleList([\n" + items + " " * indent + "])"
        return "nn.Module()"

    def fill(self, t: _Tree, expr: str) -> None:
        """Statements creating ``t``'s children (those its literal did not create already)."""
        if t.node is not None:
            self.access[t.node.id] = expr
        if t.is_list:
            for i in range(len(t.children)):
                self.fill(t.children[str(i)], f"{expr}[{i}]")
            return
        for seg, child in t.children.items():
            if seg.isdigit():
                self.lines.append(f'{expr}.add_module("{int(seg)}", {self.literal(child, 8)})')
                sub = f'{expr}.get_submodule("{int(seg)}")'
            else:
                sub = f"{expr}.{safe_name(seg)}"
                self.lines.append(f"{sub} = {self.literal(child, 8)}")
            self.fill(child, sub)


# -- Python source -------------------------------------------------------------------------------

def python_source(graph: Graph, name: str = "Network", *, plan: Plan | None = None, blocks: bool = True) -> str:
    """One standalone, readable Python file defining the network as an ``nn.Module`` subclass.

    With ``blocks``, every block structure the graph's groups repeat becomes one ``nn.Module``
    class of its own (:mod:`core.export_blocks`), built once per block with the arguments that
    differ; without repeated blocks (or with ``blocks=False``) every layer is written out.
    """
    plan = plan if plan is not None else plan_graph(graph)
    layers = layer_names(graph)
    for key, node in [*plan.nodes.items(), *plan.idle.items()]:  # validated at load; again before they become code
        for nid in {key, node.id}:
            problem = id_problem(nid)
            if problem:
                raise ExportError(f"invalid node id: {problem}")
            clash = id_clash(nid, layers)
            if clash:
                raise ExportError(f"{nid}: {clash} — rename it")
    cls = class_name(name)
    classes = LayerClasses()
    structured = None
    if blocks and not plan.idle:
        # Layers that never run (idle: they reach no Output but hold weights) are written out
        # flat, where each layer is one statement at its module path: the block classes describe
        # what runs, and an idle layer inside a block would change the block's class.
        structured = structured_model(graph, plan, classes, reserved=_RESERVED | {cls})
    block_sources: list[str] = []
    if structured is not None:
        init, forward, block_sources = structured.init, structured.forward, structured.classes
        while cls in classes.sources or cls in structured.names:
            cls += "Model"
    else:
        writer = _InitWriter(classes)
        writer.fill(_tree(plan.built_nodes), "self")
        if cls in classes.sources:
            cls += "Model"
        frozen = [n for n in plan.built_nodes if n.frozen]
        init = list(writer.lines)
        if writer.containers:
            init[:0] = ["# Containers (nn.ModuleList, nn.Module) only give the layers their module paths,",
                        "# so the state_dict keys match NetCanvas's; forward calls the layers themselves."]
        if plan.idle:
            idle = [writer.access[nid] for nid in plan.idle]
            init.append(f"# {', '.join(idle)}: reach{'es' if len(idle) == 1 else ''} no Output in NetCanvas; "
                        f"kept with {'its' if len(idle) == 1 else 'their'} weights, never called in forward.")
        if frozen:
            init.append("# Frozen in NetCanvas: no gradient updates.")
            init += [f"{writer.access[n.id]}.requires_grad_(False)" for n in frozen]
        forward = _forward_lines(plan, writer.access, reserved=_RESERVED | {cls, *classes.sources})
    a = plan.analysis
    outs = ", ".join(f"N×{fmt_shape(s)}" for s in a.output_shapes if s is not None)
    title = doc_text(name) or "Network"
    frozen_params = a.total_params - a.trainable_params
    args = input_names(plan.inputs)
    shapes = [plan.nodes[i].out_shapes[0] for i in plan.inputs]
    tokens = token_inputs(plan)
    examples = list(zip(plan.inputs, shapes, strict=True))
    if len(plan.inputs) == 1:
        inputs_text = f"Input: N×{fmt_shape(shapes[0])} (a batch of {fmt_shape(shapes[0])} samples)."
    else:  # several Inputs: forward takes them in file order
        inputs_text = "Inputs, in this order: " + ", ".join(
            f"{args[i]} N×{fmt_shape(s)}" for i, s in zip(plan.inputs, shapes, strict=True)) + "."
    header = [
        '"""' + f"{title}: a network exported by NetCanvas.",
        "",
        inputs_text,
        f"Output{'s' if len(plan.outputs) > 1 else ''}: {outs}.",
        f"Parameters: {a.total_params:,} ({a.trainable_params:,} trainable"
        + (f", {frozen_params:,} frozen" if frozen_params else "") + ").",
        f"MACs per sample: {a.macs:,} ({2 * a.macs:,} FLOPs).",
        "",
        "Load trained weights with ``model.load_state_dict(torch.load(path))``; this file needs only torch.",
        '"""',
        "",
        "import torch",
    ]
    if any(re.search(r"\bF\.", src) for src in classes.sources.values()):
        header.append("import torch.nn.functional as F")
    header += ["from torch import nn", ""]
    body = []
    for src in [*classes.sources.values(), *block_sources]:
        body += ["", src.rstrip(), ""]
    returns = "torch.Tensor" if len(plan.outputs) == 1 else "tuple[torch.Tensor, ...]"
    inputs_short = f"input{'s' if len(shapes) > 1 else ''} " + ", ".join(f"N×{fmt_shape(s)}" for s in shapes)
    n_layers = len(plan.built_nodes)
    layers_text = f"{n_layers} layer{'s' if n_layers != 1 else ''}"
    body += [
        "",
        f"class {cls}(nn.Module):",
        f'    """{title} ({layers_text}; {inputs_short})."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *(f"        {line}" for line in init),
        "",
        f"    def forward(self, {', '.join(f'{args[i]}: torch.Tensor' for i in plan.inputs)}) -> {returns}:",
        *(f"        {line}" for line in forward),
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {cls}()",
        f"    print(model({', '.join(_zeros_source(s, i in tokens) for i, s in examples)}))",
        "",
    ]
    source = "\n".join(header + body)
    _check_builds(source, cls)
    return source


def token_inputs(plan: Plan) -> frozenset[str]:
    """The Inputs that feed a layer taking integer ids (Embedding): their example tensors are long, not float."""
    return frozenset(src for node in plan.nodes.values() if node.spec.int_inputs
                     for src, _ in node.inputs if src in plan.inputs)


def _zeros_source(shape: Sequence[int], ids: bool) -> str:
    """``torch.zeros(2, 3, 32, 32)``: a batch of two example samples (token ids: ``dtype=torch.long``)."""
    return f"torch.zeros(2, {', '.join(str(d) for d in shape)}{', dtype=torch.long' if ids else ''})"


def _check_builds(source: str, cls: str) -> None:
    """Run the file's definitions and build the model on the meta device (no memory): a file we
    write always builds. What fails here is named in one sentence, and nothing is written.

    The source is ours, made only of checked pieces (see the module docstring), so running it
    runs nothing from the project file.
    """
    try:
        code = compile(ast.parse(source), "<exported network>", "exec")
        namespace: dict[str, object] = {"__name__": "netcanvas_export_check"}
        exec(code, namespace)  # our own generated code: only definitions, the __main__ part does not run
        model_class = namespace[cls]
        assert callable(model_class)
        with torch.device("meta"):
            model_class()
    except Exception as exc:  # the file would be broken: say why instead of writing it
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ExportError(f"the exported file would not build ({type(exc).__name__}: {detail}), so it was "
                          f"not written") from None


def _forward_lines(plan: Plan, access: Mapping[str, str], reserved: frozenset[str]) -> list[str]:
    """The body of ``forward``, one statement per node in topological order.

    Variables follow torchvision's style: a node whose input nothing else reads reuses that
    input's variable when the name still fits (``x = self.conv1(x)`` on the trunk,
    ``layer1_0 = self.layer1[0].bn1(layer1_0)`` within a block), so a chain holds one tensor at
    a time; otherwise a new variable is named after the block the node sits in (``layer1_0``
    for ``layer1.0.conv1``), or after the node itself at the top level.
    """
    consumers: dict[str, int] = {}
    for node in plan.nodes.values():
        for src, _port in node.inputs:
            consumers[src] = consumers.get(src, 0) + 1
    names: dict[str, str] = dict(input_names(plan.inputs))  # the forward's arguments
    used = set(reserved) | set(names.values())

    def base(nid: str) -> str:
        """``layer1.0.conv1`` → ``layer1_0``; ``inception3a.branch2.1.conv`` → ``inception3a_branch2``."""
        segments = nid.split(".")[:-1] or [nid]
        while len(segments) > 2 and segments[-1].isdigit():
            segments.pop()  # a chain runs on through numbered siblings: name it after their list
        return safe_name(var_name(".".join(segments)))

    def fresh(nid: str) -> str:
        stem = base(nid)
        cand, i = stem, 2
        while cand in used:
            cand = f"{stem}_{i}"
            i += 1
        used.add(cand)
        return cand

    def ref(src: str, port: int) -> str:
        node = plan.nodes[src]
        if node.spec.outputs(node.params) > 1:
            return f"{names[src]}[{int(port)}]"
        return names[src]

    lines: list[str] = []
    results: dict[str, str] = {}
    for nid, node in plan.nodes.items():
        spec = node.spec
        if spec.type == "Input":
            continue
        ins = [ref(src, port) for src, port in node.inputs]
        if spec.type == "Output":
            results[nid] = ins[0]
            continue
        # Overwrite an input's variable only when this node is its only reader and the name
        # still fits: the trunk ``x``, or the block the node is in (layer1_0 = layer1_0 + x).
        # A chain written over several lines reads its inputs after the first: a new variable.
        reusable = [names[src] for src, _port in node.inputs
                    if consumers[src] == 1 and plan.nodes[src].spec.outputs(plan.nodes[src].params) == 1
                    and names[src] in ("x", base(nid))]
        split = not spec.is_module and is_split(node, ins)
        names[nid] = reusable[0] if reusable and spec.outputs(node.params) == 1 and not split else fresh(nid)
        if spec.is_module:
            lines.append(f"{names[nid]} = {access[nid]}({', '.join(ins)})")
        else:
            lines += op_statements(node, ins, names[nid])
    lines.append("return " + ", ".join(results[o] for o in plan.outputs))  # file order
    return lines


# -- ONNX ----------------------------------------------------------------------------------------

def export_onnx(graph: Graph, path: str | os.PathLike[str], *, model: nn.Module | None = None,
                plan: Plan | None = None) -> Path:
    """Write an ONNX model (eval mode, batch axis dynamic) for the graph's Input shapes; several
    Inputs are the ONNX inputs in file order, named as the forward's arguments.

    ``model`` is a compiled model of ``graph`` whose weights to write (e.g. after training);
    without it the graph is compiled with seed 0. The traced example is a batch of two samples.
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs both)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "onnx"
        raise ExportError(f"ONNX export needs the onnx and onnxscript packages ({missing} is not installed) "
                          f"— install them with: pip install 'netcanvas[onnx]'") from None
    plan = plan if plan is not None else plan_graph(graph)
    if model is None:
        model = compile_plan(plan, seed=0)
    was_training = model.training
    model.eval()
    args = input_names(plan.inputs)
    tokens = token_inputs(plan)
    examples = tuple(torch.zeros(2, *plan.nodes[i].out_shapes[0], dtype=torch.long if i in tokens else torch.float32)
                     for i in plan.inputs)
    target = Path(path)
    outputs = [safe_name(var_name(o)) for o in plan.outputs]
    remove_stale_temp_files(target, suffix=".onnx")  # what a killed export left beside the target
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        # A batch of 2: with a batch of 1 torch.export may specialise the batch axis to the
        # constant 1 (ConvNeXt's LayerNorm2d does), and the dynamic batch would be refused.
        with _torch_logs_quiet():
            batch = torch.export.Dim("batch")  # one batch axis, shared by every Input
            program = torch.onnx.export(model, examples, None, input_names=[args[i] for i in plan.inputs],
                                        output_names=outputs, dynamic_shapes=tuple({0: batch} for _ in examples),
                                        optimize=False, verbose=False)
            if program is None:  # torch returns None only for the TorchScript exporter, which is not used
                raise RuntimeError("torch's exporter returned no ONNX program")
            _keep_layers(program.model, set(model.state_dict()))
            program.save(tmp, external_data=False)
        replace_file(tmp, target)  # the umask's permissions, not mkstemp's 0600
    except Exception as exc:
        raise ExportError(f"torch could not export the network to ONNX: {_first_sentence(exc)}") from None
    finally:
        model.train(was_training)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _keep_layers(onnx_model: Any, parameters: set[str]) -> None:
    """Tidy torch's unoptimised ONNX graph without merging layers, so the file re-imports as the graph.

    torch's own optimiser folds each BatchNorm into the convolution before it; a NetCanvas graph
    exported and opened again would lose its BatchNorm layers. Instead only the shape arithmetic
    torch writes around each op is folded away, and the zero bias torch's lowering gives a Conv
    that has none (a constant, not one of the model's parameters) is dropped again.
    """
    import onnxscript.optimizer as onnx_optimizer

    onnx_optimizer.fold_constants(onnx_model)
    for node in onnx_model.graph:
        if node.op_type not in ("Conv", "ConvTranspose") or len(node.inputs) < 3 or node.inputs[2] is None:
            continue
        bias = node.inputs[2]
        value = bias.const_value
        if bias.name not in parameters and value is not None and not value.numpy().any():
            node.replace_input_with(2, None)
    onnx_optimizer.remove_unused_nodes(onnx_model)


@contextlib.contextmanager
def _torch_logs_quiet() -> Iterator[None]:
    """Silence torch's loggers while exporting: a failure is answered in one sentence, and
    torch's exporter would print its own tracebacks to stderr on the way (a size that overflows)."""
    loggers = [lg for name, lg in logging.root.manager.loggerDict.items()
               if isinstance(lg, logging.Logger) and (name == "torch" or name.startswith("torch."))]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = True
    try:
        yield
    finally:
        for lg, was in zip(loggers, before, strict=True):
            lg.disabled = was


def _first_sentence(exc: BaseException) -> str:
    """``Kind: first sentence`` of the innermost cause of ``exc`` (torch wraps the real one), colours removed."""
    inner = exc
    while inner.__cause__ is not None and inner.__cause__ is not inner:
        inner = inner.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(inner)).strip()
    first = text.splitlines()[0] if text else ""
    head = re.split(r"(?<=\.)\s", first, maxsplit=1)[0]
    return f"{type(inner).__name__}: {head[:200]}" if head else type(inner).__name__


# -- dispatch ------------------------------------------------------------------------------------

def export_project(project: Project, path: str | os.PathLike[str], *, model: nn.Module | None = None) -> Path:
    """Write ``project`` to ``path`` in the format its extension names (``.py``, ``.onnx``, ``.json``).

    ``model`` is a compiled model of the graph whose weights an ONNX file holds (a run's trained
    network); without it :func:`export_onnx` compiles the graph with seed 0."""
    target = Path(path)
    ext = target.suffix.lower()
    if ext not in EXTENSIONS:
        raise ExportError(f"{target.name}: unknown export format {ext or '(no extension)'!r} "
                          f"— use one of {', '.join(EXTENSIONS)}")
    if not target.parent.is_dir():
        raise ExportError(f"the folder {target.parent} does not exist")
    if ext == ".json":
        return save_project(project, target)
    if ext == ".onnx":
        return export_onnx(project.graph, target, model=model)
    atomic_write_text(target, python_source(project.graph, project.name))
    return target


__all__ = ["EXTENSIONS", "CtorArg", "ExportError", "class_name", "constructor", "constructor_args", "doc_text",
           "export_onnx", "export_project", "python_source", "safe_name"]
