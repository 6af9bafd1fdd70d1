"""Every diagnostic of issue 2: its message, node, severity and fix, and that applying the fix
through core.fixes.apply_fix (Graph API only) makes it go away, with undo restoring the analysis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.analysis import Analysis, Diagnostic, Severity, analyze
from core.fixes import FixError, apply_fix
from core.graph import Graph
from core.layers.spec import Fix
from core.project import loads_project

Layer = tuple[str, str, dict[str, Any]]


def chain(*layers: Layer, shape: list[int] | None = None, output: bool = True) -> Graph:
    """Input(shape) → layers in order → Output, built through the Graph API."""
    g = Graph()
    g.add_node("Input", "input", {"shape": shape or [3, 32, 32]})
    prev = "input"
    for nid, typ, params in layers:
        g.add_node(typ, nid, params)
        g.add_edge(prev, nid)
        prev = nid
    if output:
        g.add_node("Output", "output")
        g.add_edge(prev, "output")
    return g


def from_json(nodes: list[dict[str, Any]], edges: list[tuple[str, str]] | list[dict[str, Any]]) -> Graph:
    """A graph loaded from a project file (the loader keeps what the editor would refuse)."""
    eds = [e if isinstance(e, dict) else {"from": e[0], "to": e[1]} for e in edges]
    doc = {"format": "netcanvas-project", "version": 1, "graph": {"nodes": nodes, "edges": eds}}
    return loads_project(json.dumps(doc)).graph


def only(a: Analysis, node: str | None, severity: Severity = Severity.ERROR) -> Diagnostic:
    found = [d for d in a.diagnostics if d.node == node and d.severity is severity]
    assert len(found) == 1, [d.message for d in a.diagnostics]
    return found[0]


def fix_clears(g: Graph, diag: Diagnostic, *, ok: bool = True) -> Analysis:
    """Apply ``diag.fix``; the same diagnostic must be gone (and the graph ok when ``ok``); then
    undo must restore the analysis exactly and redo must give the fixed analysis again."""
    assert diag.fix is not None, diag.message
    before = analyze(g).to_dict()
    applied = apply_fix(g, diag.fix)
    after = analyze(g)
    assert diag.message not in [d.message for d in after.diagnostics]
    if ok:
        assert after.ok, [d.message for d in after.errors]
    applied.undo(g)
    assert analyze(g).to_dict() == before
    applied.redo(g)
    assert analyze(g).to_dict() == after.to_dict()
    return after


# -- structure ----------------------------------------------------------------------------------

def test_cycle_is_reported_once_with_a_fix_and_blocks_only_its_part() -> None:
    g = from_json(
        [{"id": "input", "type": "Input", "params": {"shape": [3, 8, 8]}}, {"id": "add", "type": "Add"},
         {"id": "relu", "type": "ReLU"}, {"id": "out", "type": "Output"}],
        [{"from": "input", "to": "add", "port": 0}, {"from": "relu", "to": "add", "port": 1},
         ("add", "relu"), ("relu", "out")])
    a = analyze(g)
    cyc = [d for d in a.diagnostics if "cycle" in d.message]
    assert len(cyc) == 1 and len(a.errors) == 1  # nodes on and after the cycle raise nothing else
    assert cyc[0].message.startswith("the graph has a cycle: ")
    assert "add → relu → add" in cyc[0].message or "relu → add → relu" in cyc[0].message
    assert "remove one of these connections" in cyc[0].message
    assert a.nodes["input"].output_shape == (3, 8, 8)
    assert all(not a.nodes[n].known for n in ("add", "relu", "out"))
    assert cyc[0].fix is not None and cyc[0].fix.action == "remove_edge"
    fixed = fix_clears(g, cyc[0], ok=False)
    assert not any("cycle" in d.message for d in fixed.diagnostics)


def test_self_loop_from_a_file_is_a_cycle() -> None:
    g = from_json([{"id": "input", "type": "Input"}, {"id": "add", "type": "Add"}, {"id": "out", "type": "Output"}],
                  [{"from": "input", "to": "add", "port": 0}, {"from": "add", "to": "add", "port": 1},
                   ("add", "out")])
    a = analyze(g)
    d = only(a, "add")
    assert "cycle: add → add" in d.message
    fix_clears(g, d, ok=False)


def test_single_input_layer_with_two_edges_from_a_file() -> None:
    g = from_json([{"id": "input", "type": "Input", "params": {"shape": [3, 8, 8]}},
                   {"id": "conv", "type": "Conv2d", "params": {"out_channels": 3, "padding": 1}},
                   {"id": "relu", "type": "ReLU"}, {"id": "out", "type": "Output"}],
                  [("input", "conv"), ("input", "relu"), ("conv", "relu"), ("relu", "out")])
    d = only(analyze(g), "relu")
    assert d.message == ("relu (ReLU) takes 1 input, but has 2 (input, conv) — merge them with Add or Concat "
                         "first, or disconnect conv")
    assert d.fix is not None and d.fix.label == "disconnect conv → relu"
    fix_clears(g, d, ok=False)  # conv now feeds nothing: a warning, no error
    assert analyze(g).ok


def test_input_with_an_incoming_edge_from_a_file() -> None:
    g = from_json([{"id": "a", "type": "Input", "params": {"shape": [4]}},
                   {"id": "input", "type": "Input", "params": {"shape": [4]}}, {"id": "out", "type": "Output"}],
                  [("a", "input"), ("input", "out")])
    # (any source of that edge is a second Input or has problems of its own: here, a second Input)
    d = next(d for d in analyze(g).diagnostics if d.node == "input" and "takes no inputs" in d.message)
    assert d.message == "input (Input) takes no inputs, but has 1 (a) — disconnect it"
    fix_clears(g, d, ok=False)


def test_missing_input_and_too_few_merge_inputs() -> None:
    g = chain(("relu", "ReLU", {}))
    g.add_node("Conv2d", "conv")
    g.add_node("Add", "add")
    g.add_edge("relu", "add")
    a = analyze(g)
    assert only(a, "conv").message == "conv has no input — connect a layer's output to it"
    assert only(a, "add").message == "add (Add) needs at least 2 inputs, has 1 (relu) — connect another branch to it"
    g.add_edge("input", "add")
    assert not analyze(g).diagnostics_for("add") or all(
        d.severity is not Severity.ERROR for d in analyze(g).diagnostics_for("add"))


def test_nodes_that_do_not_reach_an_output_are_warned_about() -> None:
    g = chain(("relu", "ReLU", {}))
    g.add_node("Sigmoid", "side")
    g.add_edge("input", "side")
    a = analyze(g)
    assert a.ok
    d = only(a, "side", Severity.WARNING)
    assert d.message == "side does not reach an Output — its result is unused; connect it onward or delete it"


def test_no_input_and_no_output_with_fixes() -> None:
    g = Graph()
    g.add_node("Conv2d", "conv", {"out_channels": 4}, pos=(0.0, 100.0))
    a = analyze(g)
    d_in = next(d for d in a.diagnostics if "no Input" in d.message)
    assert [d.message for d in a.errors] == [
        "conv has no input — connect a layer's output to it",
        "the network has no Input node — add one and set its shape",
        "the network has no Output node — connect the last layer to an Output"]
    assert d_in.fix is not None
    applied = apply_fix(g, d_in.fix)
    assert applied.created == ["input1"] and g.predecessors("conv") == ["input1"]
    assert g.nodes["input1"].pos == (0.0, 20.0)
    d_out = only(analyze(g), None)
    assert d_out.message.startswith("the network has no Output")
    fix_clears(g, d_out)
    assert g.successors("conv") == ["output1"]


def test_a_second_input_is_a_second_argument_and_unconnected_only_a_warning() -> None:
    g = chain(("relu", "ReLU", {}))
    g.add_node("Input", "input2", {"shape": [3, 32, 32]})
    a = analyze(g)
    assert a.ok and a.input_shapes == ((3, 32, 32), (3, 32, 32))  # several Inputs: a Siamese network's
    d = only(a, "input2", Severity.WARNING)
    assert d.message == "input2 does not reach an Output — its result is unused; connect it onward or delete it"


def test_output_port_that_does_not_exist() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 4}), output=False)
    g.add_node("Output", "out")
    from core.graph import Edge

    g.insert_edge(Edge("conv", "out", 0, 1))
    d = only(analyze(g), "out")
    assert d.message.startswith("out: its input from conv uses output 1, but conv has 1 output")
    fix_clears(g, d, ok=False)


# -- layer settings -----------------------------------------------------------------------------

def test_channel_mismatch_message_of_the_design() -> None:
    g = chain(("conv1", "Conv2d", {"out_channels": 128, "padding": 1}), ("pool2", "MaxPool2d", {}),
              ("conv3", "Conv2d", {"in_channels": 64, "out_channels": 64}))
    d = only(analyze(g), "conv3")
    assert d.message == ("conv3: expects 64 input channels (in_channels=64), gets 128 from pool2 — set in_channels "
                         "to 128 or insert a 1×1 Conv2d")
    assert d.param == "in_channels" and d.fix is not None and d.fix.label == "set in_channels to 128"
    fix_clears(g, d)


def test_batchnorm_features_mismatch() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 16}), ("bn", "BatchNorm2d", {"num_features": 32}))
    d = only(analyze(g), "bn")
    assert d.message == "bn: expects 32 features (num_features=32), gets 16 from conv — set num_features to 16"
    fix_clears(g, d)


def residual(odd: dict[str, Any], *, odd_first: bool = False, op: str = "Add") -> Graph:
    """input → conv_a (3×3, pad 1) and input → conv_b (``odd``) → merge → Output."""
    g = chain(("stem", "Conv2d", {"out_channels": 16, "padding": 1}), ("relu", "ReLU", {}), output=False)
    g.add_node("Conv2d", "conv_a", {"out_channels": 16, "padding": 1})
    g.add_node("Conv2d", "conv_b", {"out_channels": 16, **odd})
    g.add_node("ReLU", "relu_b")
    g.add_node(op, "merge")
    g.add_edge("relu", "conv_a")
    g.add_edge("relu", "conv_b")
    g.add_edge("conv_b", "relu_b")
    first, second = ("relu_b", "conv_a") if odd_first else ("conv_a", "relu_b")
    g.add_edge(first, "merge")
    g.add_edge(second, "merge")
    g.add_node("Output", "output")
    g.add_edge("merge", "output")
    return g


@pytest.mark.parametrize("odd_first", [False, True])
def test_add_shape_mismatch_proposes_padding_on_the_odd_branch(odd_first: bool) -> None:
    g = residual({}, odd_first=odd_first)
    d = only(analyze(g), "merge")
    assert d.fix is not None and d.fix.node == "conv_b" and d.fix.label == "padding=1 keeps 32×32"
    assert d.message.startswith("merge: Add needs inputs of identical shape, but input 1 is ")
    assert "16×30×30 from relu_b" in d.message and "16×32×32 from conv_a" in d.message
    assert d.message.endswith("— padding=1 keeps 32×32 on conv_b")
    fix_clears(g, d)


def test_concat_spatial_mismatch_with_a_dilated_odd_branch() -> None:
    g = residual({"dilation": 2, "padding": 1}, op="Concat")
    d = only(analyze(g), "merge")
    assert d.fix is not None and d.fix.label == "padding=2 keeps 32×32"
    fix_clears(g, d)
    assert analyze(g).nodes["merge"].output_shape == (32, 32, 32)


def test_add_channel_mismatch_inserts_a_1x1_conv() -> None:
    g = residual({"out_channels": 8, "padding": 1})
    d = only(analyze(g), "merge")
    assert d.fix is not None and d.fix.action == "insert_before"
    assert d.fix.label == "insert a 1×1 Conv2d to 16 channels after relu_b"
    after = fix_clears(g, d)
    new = next(n for n in g.nodes if n.startswith("conv2d"))
    assert g.predecessors(new) == ["relu_b"] and after.nodes[new].output_shape == (16, 32, 32)


def test_a_shared_layer_is_not_proposed_for_padding() -> None:
    # the odd input is the stem itself, which also feeds the other branch: no padding fix there
    g = chain(("stem", "Conv2d", {"out_channels": 4}), output=False)
    g.add_node("Conv2d", "c", {"out_channels": 4})
    g.add_node("Add", "add")
    g.add_edge("stem", "c")
    g.add_edge("stem", "add")
    g.add_edge("c", "add")
    d = only(analyze(g), "add")
    assert d.fix is not None and d.fix.node == "c" and d.fix.label == "padding=1 keeps 30×30"


def test_kernel_larger_than_the_padded_input() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 4, "kernel_size": 5}), shape=[3, 4, 4])
    d = only(analyze(g), "conv")
    assert d.message.startswith("conv: Conv2d: kernel 5×5 is larger than the padded input 4×4")
    assert "padding 1" in d.message and d.param == "kernel_size"
    fix_clears(g, d)


def test_spatial_size_collapsing_through_pools() -> None:
    layers = [(f"pool{i}", "MaxPool2d", {}) for i in range(6)]
    g = chain(*layers, shape=[3, 16, 16])
    a = analyze(g)
    d = only(a, "pool4")
    assert "larger than the padded input 1×1" in d.message
    assert not a.nodes["pool5"].known and not a.diagnostics_for("pool5")  # downstream: silent
    fixed = fix_clears(g, d, ok=False)  # pool4 now keeps 1×1; the next pool is the next problem
    assert not fixed.diagnostics_for("pool4") and fixed.diagnostics_for("pool5")


def test_transposed_conv_collapsing_output() -> None:
    g = chain(("up", "ConvTranspose2d", {"out_channels": 4, "kernel_size": 3, "padding": 2}), shape=[3, 2, 2])
    d = only(analyze(g), "up")
    assert "collapses" in d.message
    fix_clears(g, d)


def test_groups_must_divide_channels() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 6, "groups": 2}))
    d = only(analyze(g), "conv")
    assert d.message == ("conv: Conv2d: groups=2 must divide the 3 input channels — use groups=1 "
                         "(input 3×32×32 from input)")
    fix_clears(g, d)
    g2 = chain(("conv", "Conv2d", {"out_channels": 6, "groups": 4}), shape=[8, 8, 8])
    d2 = only(analyze(g2), "conv")
    assert "out_channels" in d2.message
    fix_clears(g2, d2)


def test_pool_padding_more_than_half_the_kernel() -> None:
    g = chain(("pool", "MaxPool2d", {"kernel_size": 3, "padding": 2}))
    d = only(analyze(g), "pool")
    assert "padding 2 is more than half the kernel size 3" in d.message
    fix_clears(g, d)


def test_unknown_type_with_did_you_mean_and_without() -> None:
    g = from_json([{"id": "input", "type": "Input", "params": {"shape": [3, 8, 8]}},
                   {"id": "conv", "type": "Conv2D", "params": {"out_channels": 4}}, {"id": "out", "type": "Output"}],
                  [("input", "conv"), ("conv", "out")])
    g.add_group("block", "Block", ["conv"])
    d = only(analyze(g), "conv")
    assert d.message == "conv: unknown layer type 'Conv2D' — did you mean Conv2d?"
    after = fix_clears(g, d)
    assert g.nodes["conv"].type == "Conv2d" and g.nodes["conv"].params == {"out_channels": 4}
    assert g.groups["block"].members == ["conv"] and after.nodes["out"].output_shape == (4, 6, 6)
    g.add_node("Zzyzx", "x")
    d2 = only(analyze(g), "x")
    assert d2.fix is None and "unknown layer type 'Zzyzx' — pick a type from the palette" in d2.message


@pytest.mark.parametrize(("params", "message", "label"), [
    ({"stride": -1}, "conv: stride must be a positive integer, got -1 — e.g. stride=1, the default",
     "set stride to its default (1)"),
    ({"kernel_size": [3, 3, 3]}, "conv: kernel_size must be one number or a list of 2, got a list of 3 — "
     "e.g. kernel_size=3, the default", "set kernel_size to its default (3)"),
    ({"in_channels": 0}, "conv: in_channels must be a positive integer, got 0 — remove it and in_channels is "
     "inferred from the input", "let in_channels be inferred"),
    ({"padding_mode": "mirror"}, "conv: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', "
     "got 'mirror' — e.g. padding_mode=zeros, the default", "set padding_mode to its default (zeros)"),
    ({"foo": 1}, None, "remove foo"),
])
def test_invalid_parameter_values(params: dict[str, Any], message: str | None, label: str) -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 4, **params}))
    d = only(analyze(g), "conv")
    if message is not None:
        assert d.message == message
    else:
        assert d.message.startswith("conv: Conv2d has no parameter 'foo' (known: in_channels, ")
        assert d.message.endswith("— remove it")
    assert d.fix is not None and d.fix.label == label
    fix_clears(g, d)


def test_in_features_disagreeing_after_flatten() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 16, "kernel_size": 5}), ("pool", "MaxPool2d", {"kernel_size": 5}),
              ("flatten", "Flatten", {}), ("fc1", "Linear", {"in_features": 256, "out_features": 10}))
    d = only(analyze(g), "fc1")
    assert d.message == ("fc1: expects 256 input features (in_features=256), gets 400 from flatten — "
                         "set in_features to 400")
    assert d.fix is not None and d.fix.label == "set in_features to 400"
    fix_clears(g, d)


def test_linear_on_a_feature_map_proposes_flatten() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 16, "kernel_size": 5}), ("pool", "MaxPool2d", {"kernel_size": 5}),
              ("fc1", "Linear", {"in_features": 400, "out_features": 10}))
    d = only(analyze(g), "fc1")
    assert "insert Flatten" in d.message and d.fix is not None and d.fix.layer_type == "Flatten"
    fix_clears(g, d)
    assert g.predecessors("fc1") == ["flatten1"] and g.predecessors("flatten1") == ["pool"]


def test_linear_with_other_in_features_on_a_feature_map_takes_two_fixes() -> None:
    g = chain(("pool", "MaxPool2d", {"kernel_size": 6}), ("fc1", "Linear", {"in_features": 300}), shape=[16, 30, 30])
    d = only(analyze(g), "fc1")
    assert d.message == ("fc1: expects 300 input features (in_features=300), gets a 16×5×5 input from pool — "
                         "insert Flatten (400 features) and set in_features to 400")
    apply_fix(g, d.fix)  # type: ignore[arg-type]
    d2 = only(analyze(g), "fc1")
    assert d2.fix is not None and d2.fix.label == "set in_features to 400"
    fix_clears(g, d2)


def test_receptive_field_smaller_than_the_input_at_the_head_is_info() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 8}), ("flatten", "Flatten", {}), ("fc", "Linear", {}))
    a = analyze(g)
    assert a.ok
    d = only(a, "flatten", Severity.INFO)
    assert d.message == ("flatten: the receptive field before this layer is 3×3, smaller than the 32×32 input — "
                         "each of the 30×30 positions sees only part of the image; more layers or strides would "
                         "let the head see all of it")
    g.set_param("input", "shape", [3, 3, 3])  # now the field covers the whole input: no note
    assert not analyze(g).diagnostics


def test_downstream_of_an_error_is_unknown_and_silent() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 4, "kernel_size": 50}), ("relu", "ReLU", {}),
              ("flatten", "Flatten", {}), ("fc", "Linear", {"in_features": 7}))
    a = analyze(g)
    assert [d.node for d in a.diagnostics] == ["conv"]
    assert [a.nodes[n].known for n in a.order] == [True, False, False, False, False, False]
    assert a.output_shapes == (None,)


def test_a_huge_linear_is_counted_not_allocated() -> None:
    g = chain(("fc", "Linear", {"out_features": 1_000_000}), shape=[1_000_000])
    a = analyze(g)
    assert a.ok and a.total_params == 1_000_000 * 1_000_000 + 1_000_000


def test_empty_graph_has_no_diagnostics() -> None:
    a = analyze(Graph())
    assert a.ok and not a.diagnostics and a.total_params == 0


def test_stale_fix_raises_a_graph_error_and_changes_nothing() -> None:
    g = chain(("relu", "ReLU", {}))
    for fix in (Fix("x", "set_param", "gone", "p", 1), Fix("x", "remove_edge", "relu", port=3),
                Fix("x", "frobnicate", "relu"), Fix("x", "replace_type", "relu", layer_type="Nope")):
        before = analyze(g).to_dict()
        with pytest.raises(FixError):
            apply_fix(g, fix)
        assert analyze(g).to_dict() == before


# -- one diagnostic per root cause (issue 9) ----------------------------------------------------

def test_a_gap_in_a_chain_is_one_error_that_connects_the_nearest_fitting_output() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 8, "padding": 1}), ("relu", "ReLU", {}),
              ("mid", "Conv2d", {"out_channels": 8, "padding": 1}), ("pool", "AdaptiveAvgPool2d", {}),
              ("flatten", "Flatten", {}), ("fc", "Linear", {}))
    g.remove_node("mid")
    a = analyze(g)
    assert len(a.diagnostics) == 1, [d.message for d in a.diagnostics]  # not + 3 "does not reach an Output"
    d = only(a, "pool")
    assert d.message == ("pool has no input, so the 3 layers from input to relu do not reach an Output — "
                         "connect relu (8×32×32), the nearest open output that fits, to it")
    assert d.fix is not None and d.fix.label == "connect relu → pool"
    assert a.partial
    fix_clears(g, d)
    assert g.predecessors("pool") == ["relu"]


def test_the_connect_fix_prefers_an_output_that_keeps_the_rest_valid() -> None:
    # two open outputs: "near" gives fc a 5-feature input where its in_features say 8
    g = chain(("conv", "Conv2d", {"out_channels": 8, "kernel_size": 1}), ("flat", "Flatten", {}),
              ("fc", "Linear", {"in_features": 8192, "out_features": 4}), shape=[3, 32, 32])
    g.add_node("Linear", "near", {"out_features": 5}, pos=(0.0, 0.0))
    g.add_edge("input", "near")
    g.nodes["flat"].pos = (0.0, 500.0)
    g.nodes["fc"].pos = (0.0, 10.0)
    g.remove_edge(g.in_edges("fc")[0])
    d = only(analyze(g), "fc")
    assert d.fix is not None and d.fix.source == "flat"
    fix_clears(g, d)


def test_a_deleted_block_with_two_entries_is_one_error_whose_fix_joins_both() -> None:
    g = chain(("stem", "Conv2d", {"out_channels": 8, "padding": 1}), output=False)
    g.add_node("Conv2d", "gone", {"out_channels": 8, "padding": 1})
    g.add_node("Conv2d", "a", {"out_channels": 8, "padding": 1})
    g.add_node("Conv2d", "b", {"out_channels": 8, "kernel_size": 1})
    g.add_node("Add", "add")
    g.add_node("Output", "output")
    for src, dst in (("stem", "gone"), ("gone", "a"), ("gone", "b"), ("a", "add"), ("b", "add"), ("add", "output")):
        g.add_edge(src, dst)
    g.remove_node("gone")
    a = analyze(g)
    assert len(a.diagnostics) == 1, [d.message for d in a.diagnostics]
    d = a.diagnostics[0]
    assert d.node == "a" and d.message.startswith("a and b have no input, so the 2 layers from input to stem do not")
    assert d.fix is not None and d.fix.label == "connect stem → a and b"
    fix_clears(g, d)
    assert g.predecessors("a") == ["stem"] and g.predecessors("b") == ["stem"]


def test_a_connect_fix_whose_port_is_taken_is_refused() -> None:
    g = chain(("relu", "ReLU", {}))
    with pytest.raises(FixError):
        apply_fix(g, Fix("connect input → relu", "connect", "relu", source="gone"))
    from core.graph import GraphError

    before = analyze(g).to_dict()
    with pytest.raises(GraphError):
        apply_fix(g, Fix("connect input → relu", "connect", "relu", source="input"))
    assert analyze(g).to_dict() == before


def test_a_dangling_chain_is_one_warning_on_its_open_end() -> None:
    g = chain(("relu", "ReLU", {}))
    g.add_node("Sigmoid", "s1")
    g.add_node("Tanh", "s2")
    g.add_edge("input", "s1")
    g.add_edge("s1", "s2")
    a = analyze(g)
    assert a.ok and not a.partial
    d = only(a, "s2", Severity.WARNING)
    assert d.message == ("s2 does not reach an Output, nor do the 1 layer before it (from s1) — their results are "
                         "unused; connect s2 onward or delete them")
    assert len(a.diagnostics) == 1


def test_a_missing_flatten_is_one_warning_with_one_fix() -> None:
    g = chain(("pool", "MaxPool2d", {"kernel_size": 2}), ("fc1", "Linear", {"out_features": 120}),
              ("relu", "ReLU", {}), ("fc2", "Linear", {"out_features": 84}), ("fc3", "Linear", {}),
              shape=[16, 10, 10])
    a = analyze(g)
    warned = [d for d in a.diagnostics if d.severity is Severity.WARNING]
    assert [d.node for d in warned] == ["fc1"] and [d.fix is not None for d in a.diagnostics] == [True]
    assert warned[0].message.endswith("— fc2 and fc3 after it do the same, and this fix clears them too")
    fix_clears(g, warned[0])
    assert not [d for d in analyze(g).diagnostics if d.severity is not Severity.INFO]


def bottleneck(shortcut_stride: int | None, main_stride: int) -> Graph:
    """stem → (conv s=main_stride → bn → relu → 1×1 conv) + (projection 1×1 s=shortcut_stride → bn, or
    identity) → Add: the main path is the longer branch, as in a ResNet block."""
    g = chain(("stem", "Conv2d", {"out_channels": 8, "padding": 1}), output=False)
    g.add_node("Conv2d", "c1", {"out_channels": 8, "padding": 1, "stride": main_stride})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("ReLU", "relu")
    g.add_node("Conv2d", "c2", {"out_channels": 8, "kernel_size": 1})
    g.add_node("Add", "add")
    for src, dst in (("stem", "c1"), ("c1", "bn"), ("bn", "relu"), ("relu", "c2"), ("c2", "add")):
        g.add_edge(src, dst)
    if shortcut_stride is None:
        g.add_edge("stem", "add")
    else:
        g.add_node("Conv2d", "down", {"out_channels": 8, "kernel_size": 1, "stride": shortcut_stride})
        g.add_node("BatchNorm2d", "down_bn")
        g.add_edge("stem", "down")
        g.add_edge("down", "down_bn")
        g.add_edge("down_bn", "add")
    g.add_node("Output", "output")
    g.add_edge("add", "output")
    return g


@pytest.mark.parametrize(("shortcut", "main", "label"),
                         [(2, 1, "stride=1 gives 32×32"), (1, 2, "stride=2 gives 16×16")])
def test_a_stride_change_on_the_main_path_gets_the_shortcut_to_follow(shortcut: int, main: int, label: str) -> None:
    g = bottleneck(shortcut, main)
    d = only(analyze(g), "add")
    assert d.fix is not None and d.fix.node == "down" and d.fix.label == label
    assert d.message.endswith(f"— {label} on down")
    fix_clears(g, d)


def test_an_identity_shortcut_gets_a_strided_1x1_conv() -> None:
    g = bottleneck(None, 2)
    d = only(analyze(g), "add")
    assert d.fix is not None and d.fix.label == "insert a 1×1 Conv2d with stride 2 after stem"
    after = fix_clears(g, d)
    new = next(n for n in g.predecessors("add") if n != "c2")
    assert g.nodes[new].params == {"out_channels": 8, "kernel_size": 1, "stride": 2, "bias": False}
    assert after.nodes["add"].output_shape == (8, 16, 16)


def test_totals_are_partial_while_errors_exist() -> None:
    g = chain(("conv", "Conv2d", {"out_channels": 4}), ("fc", "Linear", {"in_features": 7}))
    a = analyze(g)
    assert not a.ok and a.partial and a.total_params == 3 * 4 * 9 + 4  # fc is not counted: unknown
    assert "partial" not in a.to_dict()  # summary --json keeps its DESIGN.md §7 keys; "ok" says it


def test_a_pool_stride_declares_the_kernel_size_as_its_default() -> None:
    from core.layers import get_spec

    spec = get_spec("MaxPool2d")
    assert spec is not None and spec.param("stride").default_from == "kernel_size"
    assert spec.in_effect(spec.resolve({"kernel_size": 3}))["stride"] == 3
    assert spec.in_effect(spec.resolve({"kernel_size": 3, "stride": 1}))["stride"] == 1


def test_a_fix_whose_params_hold_lists_goes_through_folding() -> None:
    # an identity shortcut that needs a 1×1 conv with stride [2, 1] (found by hypothesis: lists are unhashable)
    g = chain(("stem", "Conv2d", {"out_channels": 4, "padding": 1}), output=False)
    prev = "stem"
    for i in (1, 2):
        g.add_node("Conv2d", f"c{i}", {"out_channels": 4, "padding": 1, "stride": [2, 1]})
        g.add_node("ReLU", f"r{i}")
        g.add_node("Add", f"add{i}")
        for src, dst in ((prev, f"c{i}"), (f"c{i}", f"r{i}"), (f"r{i}", f"add{i}"), (prev, f"add{i}")):
            g.add_edge(src, dst)
        prev = f"add{i}"
    d = only(analyze(g), "add1")
    assert d.fix is not None and d.fix.layer_params["stride"] == [2, 1]


@pytest.mark.parametrize(("template", "block", "needy", "end"), [
    ("resnet50", "layer4", "avgpool", "layer3.5.relu_2"),  # was 1 error + 141 warnings, no fix
    ("vgg16", "features.stage5", "avgpool", "features.23"),  # was 1 error + 25 warnings
])
def test_deleting_a_stage_of_a_template_is_one_error_and_its_fix_restores_a_valid_network(
        template: str, block: str, needy: str, end: str) -> None:
    templates = pytest.importorskip("templates")
    g = templates.build_template(template).graph
    for nid in g.group_nodes(block):
        g.remove_node(nid)
    a = analyze(g)
    shown = [(d.severity, d.node) for d in a.diagnostics]
    assert shown == [(Severity.ERROR, needy)], [d.message for d in a.diagnostics]
    assert a.diagnostics[0].fix is not None and a.diagnostics[0].fix.label == f"connect {end} → {needy}"
    fix_clears(g, a.diagnostics[0])
