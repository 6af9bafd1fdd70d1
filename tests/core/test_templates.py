"""Template library: every template builds a consistent graph; totals agree with torchvision.

These checks need no torch forward pass: analysis is static, and torchvision models are
built on the ``meta`` device (no memory, no init) just to count their parameters and read
the ``_ops`` figure (GMACs) from their weights' metadata. Forward equality and ``strict``
weight loading are in ``test_templates_torchvision.py``.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torchvision
from torchvision.models import get_model_weights

from core.analysis import Severity, analyze
from core.project import dumps_project, loads_project
from core.sources import SourceError, load_source
from templates import build_template, list_templates
from templates.builder import ROW_HEIGHT

EXPECTED_NAMES = {
    "lenet5", "mlp", "alexnet", "nin", "googlenet", "densenet121", "mobilenet_v2", "resnext50_32x4d",
    "resnet18_cifar", "vgg11_cifar",
    *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
}
SEQUENCE_NAMES = {"rnn-lm", "lstm-classifier"}  # T×V / token outputs: tests/core/test_templates_sequence.py
TRANSFORMER_NAMES = {"vit-tiny", "transformer-classifier"}  # tests/core/test_templates_transformer.py
GAN_NAMES = {"dcgan", "dcgan-mnist"}  # two networks, no classes: tests/core/test_gan_templates.py
SEGMENTATION_NAMES = {"fcn-resnet18", "unet"}  # class maps: tests/core/test_templates_segmentation.py
INFOS = {info.name: info for info in list_templates()}
MIRRORED = sorted(name for name, info in INFOS.items() if info.torchvision)
# googlenet() without weights has the auxiliary heads; torchvision's published figures are for
# the model without them (the pretrained weights drop them), so those compare with aux_logits=False.
FIGURE_OPTIONS = {"googlenet": {"aux_logits": False}}


def tv_meta_model(name: str, **kwargs: object) -> torch.nn.Module:
    """The torchvision model on the meta device: shapes only, built in milliseconds."""
    if name == "googlenet":
        kwargs.setdefault("init_weights", False)  # silences its FutureWarning; no weights on meta anyway
    with torch.device("meta"):
        return torchvision.models.get_model(name, **kwargs)


def imagenet_meta(name: str) -> dict:
    return get_model_weights(name).IMAGENET1K_V1.meta


def test_the_library_has_every_template_the_issue_names() -> None:
    assert set(INFOS) == EXPECTED_NAMES | SEQUENCE_NAMES | TRANSFORMER_NAMES | GAN_NAMES | SEGMENTATION_NAMES
    for name, info in INFOS.items():
        assert info.name == name and info.title and len(info.description) > 40
        assert info.torchvision in (None, name)  # torchvision's name wherever torchvision has the model
        assert "num_classes" in info.options or name in GAN_NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_template_is_consistent(name: str) -> None:
    info = INFOS[name]
    project = build_template(name)
    graph = project.graph
    a = analyze(graph)
    errors = [d.message for d in a.diagnostics if d.severity is Severity.ERROR]
    assert errors == []
    assert a.ok
    assert project.name and project.name != "Untitled"
    assert project.training.get("dataset") and project.training.get("epochs", 0) > 0
    assert a.input_shape == info.input_shape
    assert a.output_shapes[0] == (info.num_classes,)
    # Positions: every node placed, every edge pointing down (rows grow along the data flow).
    for node in graph.nodes.values():
        assert node.pos is not None, node.id
    for e in graph.edges:
        assert graph.nodes[e.src].pos[1] + ROW_HEIGHT <= graph.nodes[e.dst].pos[1], e
    rows: dict[float, list[float]] = {}
    for node in graph.nodes.values():
        rows.setdefault(node.pos[1], []).append(node.pos[0])
    for y, xs in rows.items():  # cards in one row never overlap (the editor's cards are 196 wide)
        xs.sort()
        assert all(b - a >= 200 for a, b in itertools.pairwise(xs)), (y, xs)
    # Groups: members exist, nothing belongs to two groups, every layer node is inside some block.
    owners: dict[str, str] = {}
    for g in graph.groups.values():
        assert g.label and g.members, g.id
        for m in g.members:
            assert m in graph.nodes or m in graph.groups, (g.id, m)
            assert m not in owners, f"{m} is in {owners.get(m)} and {g.id}"
            owners[m] = g.id
    ungrouped = [n.id for n in graph.nodes.values() if n.id not in owners and n.type not in ("Input", "Output")]
    assert len(ungrouped) <= 6, ungrouped  # at most a few pooling/flatten/dropout glue nodes between stages
    # Collapsed one level, the top-level blocks (and loose nodes) follow each other without sharing a row.
    spans = sorted((min(ys), max(ys)) for ys in (
        [graph.nodes[n].pos[1] for n in (graph.group_nodes(item) if item in graph.groups else [item])]
        for item in [*(gid for gid in graph.groups if gid not in owners),
                     *(nid for nid in graph.nodes if nid not in owners)]))
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), spans
    # The project file round-trips (ids, groups and params are valid file content).
    again = loads_project(dumps_project(project))
    assert [(n.id, n.type, n.params) for n in again.graph.nodes.values()] == \
           [(n.id, n.type, n.params) for n in graph.nodes.values()]
    assert again.graph.edges == graph.edges
    assert {g.id: g.members for g in again.graph.groups.values()} == {g.id: g.members for g in graph.groups.values()}


@pytest.mark.parametrize("name", MIRRORED)
def test_totals_match_torchvision(name: str) -> None:
    """Parameter count equal to torchvision's constructor; MACs within 1 % of its ``_ops`` GMACs."""
    a = analyze(build_template(name).graph)
    assert a.total_params == sum(p.numel() for p in tv_meta_model(name).parameters())
    options = FIGURE_OPTIONS.get(name, {})
    figures = analyze(build_template(name, **options).graph) if options else a
    meta = imagenet_meta(name)
    assert figures.total_params == meta["num_params"]
    assert figures.macs == pytest.approx(meta["_ops"] * 1e9, rel=0.01)


@pytest.mark.parametrize("name", MIRRORED)
def test_node_ids_are_torchvision_module_paths(name: str) -> None:
    """Every parameter/buffer-holding node is a torchvision module with the same shapes."""
    graph = build_template(name).graph
    a = analyze(graph)
    tv_modules = dict(tv_meta_model(name).named_modules())
    for node_id, r in a.nodes.items():
        if r.params or r.buffers:
            module = tv_modules.get(node_id)
            assert module is not None, f"{node_id} is not a module of torchvision's {name}"
            assert type(module).__name__ == graph.nodes[node_id].type
            assert sum(p.numel() for p in module.parameters()) == r.params
    holders = {n for n, m in tv_modules.items() if any(True for _ in m.parameters(recurse=False))}
    assert holders <= set(graph.nodes)


def test_googlenet_default_mirrors_torchvision_constructor() -> None:
    with_aux = build_template("googlenet")
    outputs = [n.id for n in with_aux.graph.nodes.values() if n.type == "Output"]
    assert outputs == ["output", "output_aux2", "output_aux1"]  # GoogLeNetOutputs order
    assert "aux1.fc2" in with_aux.graph.nodes and "aux2.conv.conv" in with_aux.graph.nodes
    assert with_aux.graph.parent_group("output_aux1") == "aux1"  # a collapsed stage holds its head whole
    assert with_aux.graph.parent_group("aux1") == "stage4"
    without = build_template("googlenet", aux_logits=False)
    assert [n.id for n in without.graph.nodes.values() if n.type == "Output"] == ["output"]
    assert not any(n.startswith("aux") for n in without.graph.nodes)
    assert analyze(without.graph).total_params == sum(
        p.numel() for p in tv_meta_model("googlenet", aux_logits=False).parameters())
    inception = with_aux.graph.groups["inception3a"]
    assert inception.members == [f"inception3a.branch{i}" for i in range(1, 5)] + ["inception3a.cat"]
    assert with_aux.graph.parent_group("inception3a") == "stage3"


def test_groups_nest_like_torchvision_modules() -> None:
    g = build_template("resnet18").graph
    assert g.parent_group("layer1.0") == "layer1"
    assert g.parent_group("layer2.0.downsample") == "layer2.0"
    assert g.parent_group("layer2.0.downsample.0") == "layer2.0.downsample"
    assert g.group_nodes("layer1") == [
        f"layer1.{i}.{m}" for i in (0, 1) for m in ("conv1", "bn1", "relu", "conv2", "bn2", "add", "relu_1")]
    top = [gid for gid in g.groups if g.parent_group(gid) is None]
    assert top == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    # collapsed one level, the blocks read top to bottom: stem → stages → head
    tops = [min(g.nodes[n].pos[1] for n in g.group_nodes(gid)) for gid in top]
    assert tops == sorted(tops)
    d = build_template("densenet121").graph
    assert d.parent_group("features.denseblock2.denselayer3") == "features.denseblock2"
    assert d.parent_group("features.denseblock2.denselayer3.conv2") == "features.denseblock2.denselayer3"


def test_lenet5_is_d2l_lenet() -> None:
    a = analyze(build_template("lenet5").graph)
    shapes = {nid: r.output_shape for nid, r in a.nodes.items()}
    assert shapes["conv1"] == (6, 28, 28)
    assert shapes["pool1"] == (6, 14, 14)
    assert shapes["conv2"] == (16, 10, 10)
    assert shapes["pool2"] == (16, 5, 5)
    assert shapes["flatten"] == (400,)
    assert [shapes[f"fc{i}"] for i in (1, 2, 3)] == [(120,), (84,), (10,)]
    assert a.total_params == 61_706
    types = [a.nodes[n].type for n in a.order]
    assert types.count("Sigmoid") == 4 and types.count("AvgPool2d") == 2 and "ReLU" not in types


def test_nin_is_d2l_nin() -> None:
    """d2l's NiN printout for a 1×224×224 input, block by block."""
    a = analyze(build_template("nin").graph)
    shapes = {nid: r.output_shape for nid, r in a.nodes.items()}
    assert [shapes[n] for n in ("nin1.relu3", "pool1", "nin2.relu3", "pool2", "nin3.relu3", "pool3",
                                "dropout", "nin4.relu3", "gap", "flatten")] == [
        (96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12), (384, 5, 5),
        (384, 5, 5), (10, 5, 5), (10, 1, 1), (10,)]
    assert not any(r.type == "Linear" for r in a.nodes.values())  # global average pooling is the head


@pytest.mark.parametrize("name", ["resnet18_cifar", "vgg11_cifar"])
def test_cifar_variants_take_32px_images_and_give_10_classes(name: str) -> None:
    from core.compiler import compile_graph

    project = build_template(name)
    a = analyze(project.graph)
    assert a.input_shape == (3, 32, 32) and list(a.output_shapes) == [(10,)]
    assert project.training["dataset"] == "cifar10"
    with torch.no_grad():
        out = compile_graph(project.graph, seed=0).eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_options() -> None:
    a = analyze(build_template("resnet50", num_classes=10).graph)
    assert list(a.output_shapes) == [(10,)]
    m = build_template("mlp", hidden=(512, 128), dropout=0.2)
    assert analyze(m.graph).total_params == 784 * 512 + 512 + 512 * 128 + 128 + 128 * 10 + 10
    assert [n.type for n in m.graph.nodes.values()].count("Dropout") == 2
    assert m.name == "MLP 784 → 512 → 128 → 10"


def test_bad_names_and_options_say_what_exists() -> None:
    with pytest.raises(SourceError, match=r"no template named 'resnet19'; did you mean 'resnet18'\?.*vgg16"):
        build_template("resnet19")
    with pytest.raises(SourceError, match=r"no option depth; its options: num_classes"):
        build_template("vgg16", depth=3)
    with pytest.raises(SourceError, match="num_classes must be a positive integer, got 0"):
        build_template("lenet5", num_classes=0)
    with pytest.raises(SourceError, match="did you mean 'lenet5'"):
        load_source("template:lenet")


def test_template_source_builds_a_fresh_project_each_time() -> None:
    a, b = load_source("template:resnet18"), load_source("template:resnet18")
    assert a.graph is not b.graph
    a.graph.set_param("fc", "out_features", 3)
    assert b.graph.nodes["fc"].params == {"out_features": 1000}


def test_cli_lists_every_template(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from core.cli import main

    assert main(["templates"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["Name", "Title", "Input", "Params", "MACs", "torchvision"]
    rows = {line.split()[0]: line for line in lines[2:2 + len(INFOS)]}
    assert list(rows) == list(INFOS)
    assert "3×224×224" in rows["resnet18"] and "11.69 M" in rows["resnet18"] and "1.81 G" in rows["resnet18"]
    assert "61.71 k" in rows["lenet5"] and rows["lenet5"].rstrip().endswith("—")
    assert main(["templates", "--json"]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {o["name"]: o for o in objs}
    assert list(by_name) == list(INFOS)
    assert by_name["vgg16"]["total_params"] == 138_357_544 and by_name["vgg16"]["torchvision"] == "vgg16"
    assert by_name["googlenet"]["options"] == ["num_classes", "aux_logits"]
    assert all(o["ok"] for o in objs)


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_training_section_is_valid_and_generated_data_fits(name: str) -> None:
    """The ``training`` defaults load as a TrainConfig; generated datasets fit the graph exactly."""
    from core.training import TrainConfig, check_fit, open_dataset
    from core.training.data import parse_spec

    for options in ({}, {"num_classes": 7}):
        project = build_template(name, **options)
        config = TrainConfig.from_dict(project.training)
        assert config.extra == {}  # no key the engine would ignore
        spec = parse_spec(config.dataset)
        if spec.kind == "synthetic":
            info = INFOS[name]
            classes = options.get("num_classes", info.num_classes)
            assert spec.arg == ",".join(str(v) for v in (*info.input_shape, classes))
            if classes < 100:  # generating 1000 class templates of 3×224×224 takes seconds: check_fit on 7
                data = open_dataset(spec, train_size=2, val_size=2)
                assert check_fit(data, analyze(project.graph), project.graph) is None
        else:
            assert spec.kind == ("cifar10" if name.endswith("_cifar") else "fashion-mnist")
