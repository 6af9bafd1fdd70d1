"""Node ids that would clash with torch's own attribute names (issue 11): found by analysis, refused by export.

A node id is a module path: each segment becomes an attribute of the compiled model (an
``fx.GraphModule``), of a container (``nn.Module``) or of an exported class. A segment named like
an attribute torch already has there (``forward``, ``training``, ``cuda``; ``code``, ``graph``
and ``meta`` at the top, where the model is an ``fx.GraphModule``) cannot be added, and one
below a layer named like that layer's own tensors (``conv.weight`` under the Conv2d ``conv``)
would overwrite them. Analysis reports such ids with a rename fix
(:func:`clash_fix`) so that compile and export never meet them.

The names are written out here, not read from torch, so that analysis does not import torch;
``tests/core/test_hostile_export.py`` checks them against the installed torch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from core.diagnostics import Diagnostic, Severity
from core.graph import Graph
from core.layers.registry import get_spec
from core.layers.spec import Fix, FixAction

# dir(nn.Module()): attributes every container, block and layer has.
TORCH_MODULE_NAMES = frozenset({
    "T_destination", "__annotations__", "__call__", "__class__", "__delattr__", "__dict__", "__dir__",
    "__doc__", "__eq__", "__format__", "__ge__", "__getattr__", "__getattribute__", "__getstate__", "__gt__",
    "__hash__", "__init__", "__init_subclass__", "__le__", "__lt__", "__module__", "__ne__", "__new__",
    "__reduce__", "__reduce_ex__", "__repr__", "__setattr__", "__setstate__", "__sizeof__", "__str__",
    "__subclasshook__", "__weakref__", "_apply", "_backward_hooks", "_backward_pre_hooks", "_buffers",
    "_call_impl", "_compiled_call_impl", "_forward_hooks", "_forward_hooks_always_called",
    "_forward_hooks_with_kwargs", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_get_backward_hooks",
    "_get_backward_pre_hooks", "_get_name", "_is_full_backward_hook", "_load_from_state_dict",
    "_load_state_dict_post_hooks", "_load_state_dict_pre_hooks", "_maybe_warn_non_full_backward_hook",
    "_modules", "_named_members", "_non_persistent_buffers_set", "_parameters",
    "_register_load_state_dict_pre_hook", "_register_state_dict_hook", "_replicate_for_data_parallel",
    "_save_to_state_dict", "_slow_forward", "_state_dict_hooks", "_state_dict_pre_hooks", "_version",
    "_wrapped_call_impl", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
    "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state",
    "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad"
})
# What the compiled model (an fx.GraphModule) has besides: only its own children must avoid them.
GRAPH_MODULE_NAMES = frozenset({
    "__copy__", "__deepcopy__", "__jit_unused_properties__", "__reduce_package__", "_boxed_call", "_code",
    "_create_node_hooks", "_deepcopy_hooks", "_deepcopy_init", "_erase_node_hooks", "_graph", "_lineno_map",
    "_prologue_start", "_recompile_submodules", "_register_create_node_hook", "_register_deepcopy_hook",
    "_register_erase_node_hook", "_register_replace_node_hook", "_replace_hooks", "_set_replace_hook",
    "_tracer_cls", "_tracer_extras", "_unregister_create_node_hook", "_unregister_deepcopy_hook",
    "_unregister_erase_node_hook", "_unregister_replace_node_hook", "_wrapped_call", "add_submodule", "code",
    "delete_all_unused_submodules", "delete_submodule", "graph", "meta", "print_readable", "recompile",
    "shape_env", "to_folder"
})
# The tensors a layer holds under its own name (Conv2d.weight, BatchNorm2d.running_mean …).
LAYER_TENSOR_NAMES = frozenset({"weight", "bias", "running_mean", "running_var", "num_batches_tracked",
                                 "in_proj_weight", "in_proj_bias", "out_proj"})


def _clashing(seg: str, parent: str, layer_names: Mapping[str, Collection[str]]) -> bool:
    """Whether ``seg`` under ``parent`` (``""``: the model itself) names something torch already has there."""
    if seg.isdigit():
        return False  # numbered children live in nn.ModuleList/nn.Sequential, whose own names are words
    own = layer_names.get(parent)
    return (seg in TORCH_MODULE_NAMES or (not parent and seg in GRAPH_MODULE_NAMES)
            or (own is not None and (seg in LAYER_TENSOR_NAMES or seg in own)))


def id_clash(node_id: str, layer_names: Mapping[str, Collection[str]]) -> str | None:
    """Why ``node_id`` cannot be a module path in torch, or ``None``.

    ``layer_names`` maps the id of every layer node to the names of its parameters: a node
    inside a layer (``conv.weight`` with ``conv`` a Conv2d) must not take one of that layer's
    own names.
    """
    segments = node_id.split(".")
    for i, seg in enumerate(segments):
        parent = ".".join(segments[:i])
        if not _clashing(seg, parent, layer_names):
            continue
        if seg in TORCH_MODULE_NAMES or seg in GRAPH_MODULE_NAMES:
            where = ".".join(["model", *segments[:i], seg])
            return f"torch already uses the name {seg!r} on every module ({where}), so a layer cannot take it"
        return f"it sits inside the layer {parent} and its name {seg!r} is one of {parent}'s own"
    return None


def clash_fix(node_id: str, layer_names: Mapping[str, Collection[str]], taken: Collection[str]) -> Fix:
    """A fix renaming ``node_id``: each clashing segment gets an underscore (``training`` → ``training_``).

    A number is added when that id is taken too (``training_2``).
    """
    segments = node_id.split(".")
    for i, seg in enumerate(segments):
        if _clashing(seg, ".".join(segments[:i]), layer_names):
            segments[i] = seg + "_"
    base = ".".join(segments)
    new, n = base, 2
    while new in taken:
        new = f"{base}{n}"
        n += 1
    return Fix(f"rename {node_id} to {new}", FixAction.RENAME, node_id, value=new)


def layer_names(graph: Graph) -> dict[str, frozenset[str]]:
    """The id of every layer node (one torch builds as a module) and its parameters' names."""
    out: dict[str, frozenset[str]] = {}
    for node in graph.nodes.values():
        spec = get_spec(node.type)
        if spec is not None and spec.is_module:
            out[node.id] = frozenset(spec.param_names) | frozenset(node.params)
    return out


# node id -> (whether a segment clashes wherever it sits, the ids of the prefixes whose segment after
# them clashes only when that prefix is a layer, those (prefix, segment) pairs). Ids are few and
# long-lived; the memo is cleared when it grows large.
_IdShape = tuple[bool, tuple[str, ...], tuple[tuple[str, str], ...]]
_shape_memo: dict[str, _IdShape] = {}
_SHAPE_MEMO_LIMIT = 200_000


def _id_shape(node_id: str) -> _IdShape:
    hit = _shape_memo.get(node_id)
    if hit is None:
        segments = node_id.split(".")
        always = any(seg in TORCH_MODULE_NAMES for seg in segments) or segments[0] in GRAPH_MODULE_NAMES
        pairs = tuple((".".join(segments[:i]), seg) for i, seg in enumerate(segments) if i and not seg.isdigit())
        if len(_shape_memo) >= _SHAPE_MEMO_LIMIT:
            _shape_memo.clear()
        hit = _shape_memo[node_id] = (always, tuple(p for p, _ in pairs), pairs)
    return hit


def may_clash(node_id: str, graph: Graph) -> bool:
    """Whether :func:`id_clash` finds a problem with ``node_id`` in ``graph``, without building
    :func:`layer_names` for the whole graph: only the nodes that are prefixes of the id are looked at,
    and most ids (``blocks.3.conv1``, ``fc``) have none."""
    always, parents, pairs = _id_shape(node_id)
    if always:
        return True
    nodes = graph.nodes
    if not parents or nodes.keys().isdisjoint(parents):
        return False
    for parent, seg in pairs:
        node = nodes.get(parent)
        if node is None:
            continue
        spec = get_spec(node.type)
        if spec is not None and spec.is_module and (
                seg in LAYER_TENSOR_NAMES or seg in spec.param_names or seg in node.params):
            return True
    return False


def id_prefixes(ids: Iterable[str]) -> set[str]:
    """Every proper prefix of the ids (``blocks`` and ``blocks.3`` of ``blocks.3.conv1``): a node added
    with one of these ids is a parent of existing ids, whose clashes it may change."""
    out: set[str] = set()
    for nid in ids:
        end = nid.rfind(".")
        while end > 0:
            out.add(nid[:end])
            end = nid.rfind(".", 0, end)
    return out


def clashes_after(graph: Graph, clashes: list[Diagnostic], prefixes: set[str], added: Collection[str],
                  edited: Collection[str]) -> list[Diagnostic]:
    """:func:`id_clashes` after structural edits, from ``clashes`` (before them), ``prefixes`` (the
    :func:`id_prefixes` of the ids before, brought up to date here), the ids ``added`` and those
    whose params were ``edited``. Only an added id can clash, unless it is the parent of other ids,
    an edit changed a parent layer's names, or clashes exist (their fixes' new names avoid every id
    of the graph): then every id is checked again, as it is when an added id clashes (file order)."""
    added = [nid for nid in added if nid in graph.nodes]
    prefixes.update(id_prefixes(added))
    if clashes or any(nid in prefixes for nid in added) or any(nid in prefixes for nid in edited):
        return id_clashes(graph)
    return id_clashes(graph) if added and id_clashes(graph, among=added) else []


def id_clashes(graph: Graph, among: Iterable[str] | None = None) -> list[Diagnostic]:
    """An error, with a rename fix, for every node whose id clashes with a torch attribute.

    ``among``: only these ids are looked at (analysis after an edit passes the ids it touched); the
    fixes' new names still avoid every id of the graph. Each id is screened by :func:`may_clash`;
    the few that clash get their message and fix from :func:`id_clash` and :func:`clash_fix`.
    """
    nodes = graph.nodes
    keys = nodes.keys()
    memo = _shape_memo
    suspects = []
    for nid in nodes if among is None else among:
        # may_clash inlined for the common answer (no clash, no prefix of the id is a node): this runs
        # for every node on every full pass
        hit = memo.get(nid) or _id_shape(nid)
        if (hit[0] or (hit[1] and not keys.isdisjoint(hit[1]))) and nid in keys and may_clash(nid, graph):
            suspects.append(nid)
    if not suspects:
        return []
    layers = layer_names(graph)
    taken = set(graph.nodes) | set(graph.groups)
    diags = []
    for nid in suspects:
        problem = id_clash(nid, layers)
        if problem is None:
            continue
        fix = clash_fix(nid, layers, taken)
        taken.add(fix.value)
        diags.append(Diagnostic(Severity.ERROR, nid, f"{nid}: {problem} — rename it, e.g. to {fix.value}", fix))
    return diags


__all__ = ["GRAPH_MODULE_NAMES", "LAYER_TENSOR_NAMES", "TORCH_MODULE_NAMES", "clash_fix", "clashes_after", "id_clash",
           "id_clashes", "id_prefixes", "layer_names", "may_clash"]
