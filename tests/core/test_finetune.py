"""Fine-tuning edits on the graph (core/finetune.py) and the node's learning-rate multiplier in the
graph and the project file: head replacement and its undo, freezing nodes and blocks, "everything up
to here", multipliers, and the one-line messages for unknown ids and bad values."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from core.analysis import analyze
from core.finetune import (
    FineTuneError,
    UnknownIdError,
    freeze,
    head_node,
    head_of,
    nodes_of,
    nodes_up_to,
    parse_ids,
    parse_lr_mults,
    replace_head,
    set_lr_mults,
)
from core.graph import Graph, GraphError
from core.project import ProjectError, dumps_project, loads_project, project_from_dict, project_to_dict
from templates import build_template


def classifier() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 4, "kernel_size": 3})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("ReLU", "relu")
    g.add_node("AdaptiveAvgPool2d", "pool", {"output_size": 1})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": 10})
    g.add_node("Dropout", "drop")
    g.add_node("Output", "output")
    names = list(g.nodes)
    for src, dst in itertools.pairwise(names):
        g.add_edge(src, dst)
    g.add_group("features", "Features", ["conv", "bn", "relu"])
    g.add_group("body", "Body", ["features", "pool"])
    return g


def test_head_is_found_through_pass_through_layers_and_replaced_with_undo() -> None:
    g = classifier()
    assert head_of(g) == ("fc", "out_features")
    seen: list[str] = []
    g.node_changed.sub(seen.append)
    edit = replace_head(g, 4)
    assert (edit.node_id, edit.old_out, edit.new_out) == ("fc", 10, 4)
    assert g.nodes["fc"].params["out_features"] == 4 and seen == ["fc"]
    assert analyze(g).output_shapes == ((4,),)
    edit.undo(g)
    assert g.nodes["fc"].params["out_features"] == 10
    assert analyze(g).output_shapes == ((10,),)


def test_a_1x1_conv_head_and_a_graph_without_a_head() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "classifier", {"out_channels": 1000, "kernel_size": 1})
    g.add_node("Output", "output")
    g.add_edge("input", "classifier")
    g.add_edge("classifier", "output")
    edit = replace_head(g, 7)
    assert (edit.node_id, edit.param, edit.old_out) == ("classifier", "out_channels", 1000)
    assert g.nodes["classifier"].params["out_channels"] == 7

    bare = Graph()
    bare.add_node("Input", "input", {"shape": [4]})
    bare.add_node("Output", "output")
    bare.add_edge("input", "output")
    assert head_node(bare) is None
    with pytest.raises(FineTuneError, match="no head to replace"):
        replace_head(bare, 3)
    with pytest.raises(FineTuneError, match="positive integer"):
        replace_head(classifier(), 0)


def test_resnet18_template_head_and_blocks() -> None:
    g = build_template("resnet18").graph
    assert head_node(g) == "fc"
    edit = replace_head(g, 4)
    assert edit.old_out == 1000 and analyze(g).output_shapes == ((4,),)
    layer1 = nodes_of(g, "layer1")
    assert layer1[0] == "layer1.0.conv1" and "layer1.1.bn2" in layer1 and len(layer1) == 14
    assert all(n.startswith("layer1.") for n in layer1)
    # a block with a nested shortcut block holds its nodes too
    assert "layer2.0.downsample.0" in nodes_of(g, "layer2")


def test_unknown_ids_name_close_matches() -> None:
    g = build_template("resnet18").graph
    with pytest.raises(UnknownIdError) as err:
        nodes_of(g, "layr1")
    assert str(err.value).startswith("no node or block 'layr1'; did you mean layer1, ")
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownIdError, match=r"^no node or block 'zzz'$"):
        nodes_of(g, "zzz")
    with pytest.raises(UnknownIdError, match="no node 'fcc'; did you mean fc"):
        nodes_up_to(g, "fcc")


def test_nodes_up_to_is_the_upstream_in_topological_order() -> None:
    g = classifier()
    assert nodes_up_to(g, "relu") == ["input", "conv", "bn", "relu"]
    skip = build_template("resnet18").graph
    up = nodes_up_to(skip, "layer1.1.add")
    assert up[0] == "input" and up[-1] == "layer1.1.add"
    assert "layer1.0.conv1" in up and "layer2.0.conv1" not in up
    order = skip.topo_order()
    assert up == sorted(up, key=order.index)


def test_freeze_nodes_and_blocks_checks_every_id_first() -> None:
    g = classifier()
    assert freeze(g, ["body"]) == ["conv", "bn"]  # a ReLU and a pool hold nothing to freeze
    assert all(g.nodes[n].frozen for n in ("conv", "bn")) and not g.nodes["relu"].frozen
    assert freeze(g, ["conv", "fc"]) == ["fc"]  # conv was frozen already
    assert freeze(g, ["fc"], frozen=False) == ["fc"]
    before = {n: node.frozen for n, node in g.nodes.items()}
    with pytest.raises(UnknownIdError):
        freeze(g, ["flat", "nope"])
    assert {n: node.frozen for n, node in g.nodes.items()} == before


def test_lr_mult_edits_events_copy_and_validation() -> None:
    g = classifier()
    seen: list[str] = []
    g.node_changed.sub(seen.append)
    rev = g.nodes["fc"].rev
    g.set_lr_mult("fc", 10)
    assert g.nodes["fc"].lr_mult == 10.0 and seen == ["fc"] and g.nodes["fc"].rev == rev + 1
    g.set_lr_mult("fc", 10.0)  # unchanged: no event
    assert seen == ["fc"]
    assert g.copy().nodes["fc"].lr_mult == 10.0
    for bad in (0, -1, float("inf"), float("nan"), True, "2"):
        with pytest.raises(GraphError, match="learning-rate multiplier must be a positive"):
            g.set_lr_mult("fc", bad)  # type: ignore[arg-type]
    assert g.nodes["fc"].lr_mult == 10.0
    old = set_lr_mults(g, {"features": 0.5, "bn": 2})
    assert old == {"conv": 1.0, "bn": 1.0, "relu": 1.0}
    assert [g.nodes[n].lr_mult for n in ("conv", "bn", "relu")] == [0.5, 2.0, 0.5]
    with pytest.raises(FineTuneError, match="of fc: must be a positive finite number"):
        set_lr_mults(g, {"conv": 3, "fc": -1})
    assert g.nodes["conv"].lr_mult == 0.5  # nothing changed


def test_parse_ids_and_lr_mults() -> None:
    assert parse_ids(" layer1, layer2 ,,") == ["layer1", "layer2"]
    assert parse_lr_mults("fc=10, layer4=2.5") == {"fc": 10.0, "layer4": 2.5}
    for bad, message in [("fc", "'fc' is not ID=NUMBER"), ("fc=x", "'x' is not a number"),
                         ("fc=0", "positive finite"), ("fc=inf", "positive finite"), ("=3", "not ID=NUMBER"),
                         (",", "expected ID=NUMBER pairs")]:
        with pytest.raises(FineTuneError, match=message):
            parse_lr_mults(bad)


def test_project_file_stores_lr_mult_only_when_not_1() -> None:
    g = classifier()
    g.set_lr_mult("fc", 10)
    g.set_lr_mult("conv", 0.1)
    project = project_from_dict(project_to_dict_of(g))
    doc = json.loads(dumps_project(project))
    nodes = {n["id"]: n for n in doc["graph"]["nodes"]}
    assert nodes["fc"]["lr_mult"] == 10 and isinstance(nodes["fc"]["lr_mult"], int)
    assert nodes["conv"]["lr_mult"] == 0.1 and "lr_mult" not in nodes["bn"]
    again = loads_project(dumps_project(project))
    assert again.graph.nodes["fc"].lr_mult == 10.0 and again.graph.nodes["bn"].lr_mult == 1.0


@pytest.mark.parametrize("value", [0, -2, "10", None, True, [1]])
def test_bad_lr_mult_in_a_file_is_one_line_naming_the_place(value: Any) -> None:
    g = classifier()
    doc = project_to_dict_of(g)
    doc["graph"]["nodes"][6]["lr_mult"] = value
    with pytest.raises(ProjectError) as err:
        project_from_dict(doc)
    message = str(err.value)
    assert message.startswith("graph.nodes[6].lr_mult: must be a positive") and "\n" not in message


def test_infinite_lr_mult_is_refused() -> None:
    doc = project_to_dict_of(classifier())
    doc["graph"]["nodes"][6]["lr_mult"] = float("inf")
    with pytest.raises(ProjectError, match=r"graph.nodes\[6\].lr_mult: must be a positive finite number, got inf"):
        project_from_dict(doc)


def project_to_dict_of(g: Graph) -> dict[str, Any]:
    from core.project import Project

    return project_to_dict(Project(graph=g, name="t"))


def test_a_misspelt_type_fix_keeps_the_nodes_fine_tuning_settings():
    """The replace-type fix rebuilds the node: its frozen flag and learning-rate multiplier stay."""
    from core.fixes import apply_fix
    from core.layers.spec import Fix, FixAction

    g = Graph()
    g.add_node("Input", "input", {"shape": [8]})
    g.add_node("Linaer", "fc", {"out_features": 4}, frozen=True)
    g.set_lr_mult("fc", 10.0)
    g.add_node("Output", "output")
    g.add_edge("input", "fc")
    g.add_edge("fc", "output")
    applied = apply_fix(g, Fix("change the type to Linear", FixAction.REPLACE_TYPE, "fc", layer_type="Linear"))
    fc = g.nodes["fc"]
    assert (fc.type, fc.frozen, fc.lr_mult, fc.params) == ("Linear", True, 10.0, {"out_features": 4})
    applied.undo(g)
    assert (g.nodes["fc"].type, g.nodes["fc"].lr_mult) == ("Linaer", 10.0)
