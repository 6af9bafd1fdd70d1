"""Every registered layer type declares what the editor, the compiler and the training tools read.

One parametrized test per registered type (types added later are covered without editing this
file): it has an id stem, a role for the data-fit check (a head names the parameter that sets its
width), editor defaults that fit, and, for a stateless op, an fx emission the compiler can resolve.
The tests below them pin the behaviour those declarations replaced tables for: id stems, the
compiled merges, and the data-fit check walking back through every kind of pass-through layer.
"""

from __future__ import annotations

import operator
from typing import Any

import pytest
import torch

from core.analysis import analyze
from core.compiler import compile_graph
from core.fixes import FixError, apply_fix
from core.graph import Graph
from core.layers import Category, Emit, FitRole, Kind, LayerError, LayerSpec, all_specs, get_spec
from core.layers.spec import Fix, FixAction, Shape, is_identifier_segment
from core.training.data import check_fit, synthetic_source

SPECS = list(all_specs())
IDS = [s.type for s in SPECS]

# An input each type accepts with its editor defaults (the first that works is used).
SAMPLE_SHAPES: list[Shape] = [(24, 8, 8), (24, 10), (24,), (4, 6, 8, 8)]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_type_has_a_readable_id_stem(spec: LayerSpec) -> None:
    stem = spec.stem
    assert stem and stem == stem.lower() and is_identifier_segment(stem), f"{spec.type}: stem {stem!r}"
    assert Graph().fresh_id(stem).startswith(stem.rstrip("0123456789")), spec.type


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_type_declares_its_role_in_the_data_fit_check(spec: LayerSpec) -> None:
    assert isinstance(spec.fit_role, FitRole), f"{spec.type} declares no fit_role"
    if spec.fit_role is FitRole.HEAD:
        assert spec.width_param is not None, f"{spec.type} is a head but names no width_param"
        p = spec.param(spec.width_param)
        assert p.kind is Kind.INT and not p.inferred, f"{spec.type}.{p.name} cannot be set to a class count"
    else:
        assert spec.width_param is None, f"{spec.type} names a width_param but is not a head"
    if spec.category is Category.IO or spec.max_inputs != 1:
        assert spec.fit_role is FitRole.OTHER, f"{spec.type}: the walk back follows one input only"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_stateless_op_declares_how_it_is_emitted_in_fx(spec: LayerSpec) -> None:
    if spec.category is Category.MERGE:
        assert spec.fx is not None, f"merge {spec.type} declares no fx emission"
    if spec.fx is None:
        return
    assert spec.function is not None and spec.build is None, f"{spec.type}: fx is for function ops only"
    assert callable(spec.fx.resolve())
    if spec.fx.emit is Emit.CHAIN:
        assert spec.max_inputs is None and not spec.params, f"{spec.type}: a chained op takes inputs only"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_editor_defaults_give_a_working_layer(spec: LayerSpec) -> None:
    spec.resolve(spec.starting_params(None))  # dropped unconnected: valid parameters
    if spec.editor_defaults is None or spec.category is Category.IO:
        return
    errors = []
    for shape in SAMPLE_SHAPES:
        params = spec.resolve(spec.starting_params(shape))
        try:
            spec.infer(params, [shape] * max(spec.min_inputs, 1))
            break
        except LayerError as exc:  # not this shape; try the next one
            errors.append(f"{shape}: {exc}")
    else:
        pytest.fail(f"{spec.type} with its editor defaults accepts none of the sample inputs: {errors}")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_feature_maps_are_declared_only_on_layers_with_one_output(spec: LayerSpec) -> None:
    if spec.feature_maps:  # MaxPool2d's indices are a second output only when asked for (the maps show output 0)
        assert spec.category is not Category.IO and spec.outputs(spec.resolve({})) == 1, spec.type


@pytest.mark.parametrize("spec", [s for s in SPECS if s.own_class is not None], ids=lambda s: s.type)
def test_own_classes_are_the_modules_the_declaration_builds(spec: LayerSpec) -> None:
    import importlib

    module, _, name = (spec.own_class or "").rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert spec.build is not None and isinstance(spec.build(spec.resolve({}) | _inferred_args(spec)), cls)


def _inferred_args(spec: LayerSpec) -> dict[str, Any]:
    """Values for the inferred arguments (channels …) that a build needs, from a 4×6×6 input (a 6×16
    sequence for the layers that take T×C)."""
    n = max(spec.min_inputs, 1)
    try:
        return dict(spec.infer(spec.resolve({}), [(4, 6, 6)] * n).args)
    except LayerError:
        return dict(spec.infer(spec.resolve({}), [(6, 16)] * n).args)


# -- what the declarations replaced --------------------------------------------------------------

@pytest.mark.parametrize(("type_name", "stem"), [
    ("Conv2d", "conv"), ("ConvTranspose2d", "deconv"), ("BatchNorm1d", "bn"), ("BatchNorm2d", "bn"),
    ("Linear", "fc"), ("AdaptiveAvgPool2d", "avgpool"), ("AdaptiveMaxPool2d", "maxpool"),
    ("MaxPool2d", "maxpool"), ("Dropout", "drop"), ("Dropout2d", "drop"), ("Concat", "cat"),
    ("Multiply", "mul"), ("Add", "add"), ("LayerNorm", "ln"), ("LayerNorm2d", "ln"), ("GroupNorm", "gn"),
    ("ReLU6", "relu6"), ("Input", "input"), ("StochasticDepth", "stochasticdepth"),
])
def test_id_stems_are_the_familiar_ones(type_name: str, stem: str) -> None:
    spec = get_spec(type_name)
    assert spec is not None and spec.stem == stem


def _merge_graph(merge: str, params: dict[str, Any] | None = None) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [2, 5, 5]})
    for i in range(3):
        g.add_node("Conv2d", f"c{i}", {"out_channels": 2, "kernel_size": 1})
        g.add_edge("input", f"c{i}")
    g.add_node(merge, "m", params or {})
    for i in range(3):
        g.add_edge(f"c{i}", "m", port=i)
    g.add_node("Output", "output")
    g.add_edge("m", "output")
    return g


@pytest.mark.parametrize(("merge", "targets", "code"), [
    ("Add", [operator.add, operator.add], " + "),
    ("Multiply", [operator.mul, operator.mul], " * "),
    ("Concat", [torch.cat], "torch.cat([c0, c1, c2], dim = 1)"),
])
def test_merges_compile_as_their_declaration_says(merge: str, targets: list[Any], code: str) -> None:
    gm = compile_graph(_merge_graph(merge), seed=0)
    assert [n.target for n in gm.graph.nodes if n.op == "call_function"] == targets
    assert code in gm.code
    x = torch.randn(2, 2, 5, 5)
    a, b, c = (gm.get_submodule(f"c{i}")(x) for i in range(3))
    expected = {"Add": a + b + c, "Multiply": a * b * c, "Concat": torch.cat([a, b, c], dim=1)}[merge]
    torch.testing.assert_close(gm(x), expected)


@pytest.mark.parametrize("between", ["LayerNorm", "GroupNorm", "Hardswish", "ELU", "Hardsigmoid", "PReLU",
                                     "StochasticDepth", "Identity"])
def test_data_fit_check_walks_back_through_every_pass_through_layer(between: str) -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Flatten", "flatten")
    g.add_node("Linear", "fc", {"out_features": 10})
    g.add_node(between, "after", {"num_groups": 2} if between == "GroupNorm" else {})
    g.add_node("Output", "output")
    for a, b in [("input", "flatten"), ("flatten", "fc"), ("fc", "after"), ("after", "output")]:
        g.add_edge(a, b)
    analysis = analyze(g)
    assert analysis.ok, [d.message for d in analysis.diagnostics]
    problem = check_fit(synthetic_source((3, 8, 8), 4, train=8, val=2), analysis, g)
    assert problem is not None and "set fc.out_features to 4" in problem.message
    assert [(f.node, f.param, f.value) for f in problem.fixes] == [("fc", "out_features", 4)]


def test_data_fit_check_stops_where_no_one_parameter_sets_the_width() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 2, 2]})
    g.add_node("Flatten", "flatten")
    g.add_node("Linear", "fc", {"out_features": 12})
    g.add_node("Reshape", "reshape", {"shape": [3, 4]})
    g.add_node("Output", "output")
    for a, b in [("input", "flatten"), ("flatten", "fc"), ("fc", "reshape"), ("reshape", "output")]:
        g.add_edge(a, b)
    problem = check_fit(synthetic_source((3, 2, 2), 5, train=8, val=2), analyze(g), g)
    assert problem is not None and "the last layer's output width" in problem.message and not problem.fixes


@pytest.mark.parametrize("action", list(FixAction), ids=lambda a: a.value)
def test_apply_fix_knows_every_fix_action(action: FixAction) -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4]})
    g.add_node("ReLU", "relu")
    try:
        applied = apply_fix(g, Fix(f"do {action.value}", action, "gone"))
    except FixError as exc:  # most fixes name a node that is not there: refused, but not as unknown
        message = str(exc)
    else:
        message = ""
        assert applied.steps
    assert "unknown fix action" not in message


def test_analysis_proposes_fixes_as_actions_with_the_names_the_json_shows() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Linear", "fc", {"in_features": 5})
    g.add_edge("input", "fc")
    fixes = [d.fix for d in analyze(g).diagnostics if d.fix is not None]
    assert fixes and all(isinstance(f.action, FixAction) for f in fixes)
    assert {f.action.value for f in fixes} <= {a.value for a in FixAction}
    assert FixAction.SET_PARAM == "set_param" and str(FixAction.INSERT_BEFORE) == "insert_before"
