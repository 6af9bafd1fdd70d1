"""torchvision's classification models through the importer (issue 3, "How we will know it works").

For each model: import → analyze → compile gives the source's parameter and buffer counts, its
``state_dict`` keys (torchvision's weights load with ``strict=True``), the same outputs in eval
mode with the same weights, and an analysis whose output shape for *every* node agrees with
what torch computes (recorded while the compiled model runs, and by hooks on the source).
Inputs are 3×64×64 where the model allows it, to keep the run short; Inception v3 needs 299
because its auxiliary head (imported as a second Output) needs a 17×17 map.

Every torchvision classification model imports (the vision transformers, Swin and MaxViT are checked
in tests/core/test_import_vit.py); what cannot be imported, such as Swin's patch merging of a map of
odd size, is refused with a message naming the operation and the module.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import fx, nn

from core.analysis import analyze
from core.compiler import compile_graph, var_name
from core.importer import ModelImportError, id_paths, import_torchvision, import_with_weights, torchvision_model
from core.sources import SourceError, load_source

SMALL = (3, 64, 64)
MODELS: dict[str, tuple[int, int, int]] = {
    "alexnet": SMALL,
    "vgg11": SMALL,
    "resnet18": SMALL,
    "resnext50_32x4d": SMALL,
    "wide_resnet50_2": SMALL,
    "googlenet": SMALL,
    "inception_v3": (3, 299, 299),
    "densenet121": SMALL,
    "mobilenet_v2": SMALL,
    "mobilenet_v3_small": SMALL,
    "mobilenet_v3_large": SMALL,
    "shufflenet_v2_x0_5": SMALL,
    "squeezenet1_1": SMALL,
    "mnasnet0_5": SMALL,
    "efficientnet_b0": SMALL,
    "regnet_y_400mf": SMALL,
    "convnext_tiny": SMALL,
}

# Auxiliary heads run only in training mode in torchvision; imported, they are extra Outputs.
OUTPUTS = {"googlenet": 3, "inception_v3": 2}


class Recorder(fx.Interpreter):
    """Runs a compiled model and keeps the per-sample shape(s) of every node, by node id."""

    def __init__(self, gm: fx.GraphModule, ids: list[str]) -> None:
        super().__init__(gm)
        self.by_name = {var_name(i): i for i in ids}
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        nid = str(n.target) if n.op == "call_module" else self.by_name.get(n.name)
        if nid is not None and n.op in ("call_module", "call_function"):
            values = value if isinstance(value, (tuple, list)) else (value,)
            self.shapes[nid] = tuple(tuple(v.shape[1:]) for v in values)
        return value


def source_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Output shape of each leaf module of the source at its first call, by module path."""
    seen: dict[str, tuple[int, ...]] = {}

    def hook(path: str) -> Any:
        def record(m: nn.Module, i: Any, o: torch.Tensor) -> None:  # returns None: the output stays as is
            seen.setdefault(path, tuple(o.shape[1:]))

        return record

    handles = [m.register_forward_hook(hook(p)) for p, m in model.named_modules() if p and not list(m.children())]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_imported_torchvision_model_is_the_same_model(name: str) -> None:
    shape = MODELS[name]
    torch.manual_seed(0)
    source = torchvision_model(name).eval()
    graph, state = import_with_weights(source, shape)
    result = analyze(graph)
    assert result.ok, [d.message for d in result.errors]
    assert result.total_params == sum(p.numel() for p in source.parameters())
    assert result.buffers == sum(b.numel() for b in source.buffers())
    assert len(result.output_shapes) == OUTPUTS.get(name, 1)
    if not name.startswith("regnet"):  # RegNet's `block1-0` names are renamed to valid ids
        assert set(state) == set(source.state_dict())
    compiled = compile_graph(graph, analysis=result)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()

    x = torch.randn(2, *shape)
    with torch.no_grad():
        want = source(x)
        recorder = Recorder(compiled, list(graph.nodes))
        got = recorder.run(x)
    first = got[0] if isinstance(got, tuple) else got
    torch.testing.assert_close(first, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))

    # every node's analysed shape is what torch computed, functional nodes included
    computed = {nid for nid, n in graph.nodes.items() if n.type not in ("Input", "Output")}
    assert set(recorder.shapes) == computed
    for nid, shapes in recorder.shapes.items():
        assert result.nodes[nid].out_shapes == shapes, nid
    # and, independently of the compiler, what hooks on the source report
    ids = id_paths(source)
    for path, out in source_shapes(source, x).items():
        assert result.nodes[ids[path]].out_shapes == (out,), path


@pytest.mark.slow
def test_what_cannot_be_imported_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError) as info:  # 200 px: Swin's third patch merging gets a 25×25 map
        import_torchvision("swin_t", (3, 200, 200))
    message = str(info.value)
    assert message.startswith("cannot import Swin's patch merging of a 25×25×192 map")
    assert "in module 'features.4' (PatchMerging)" in message


def test_unknown_torchvision_name_suggests_close_ones() -> None:
    with pytest.raises(SourceError,
                       match=r"no classification or segmentation model 'resnet81' — did you mean resnet18"):
        load_source("torchvision:resnet81")


@pytest.mark.slow
def test_torchvision_source_is_an_editable_project() -> None:
    project = load_source("torchvision:resnet18")
    graph = project.graph
    assert project.name == "resnet18"
    assert graph.nodes["input"].params == {"shape": [3, 224, 224]}
    assert graph.nodes["conv1"].params == {"out_channels": 64, "kernel_size": 7, "stride": 2, "padding": 3,
                                           "bias": False}
    assert graph.nodes["layer1.0.add"].type == "Add"
    assert graph.groups["layer1"].label == "Sequential" and graph.groups["layer1.0"].label == "BasicBlock"
    assert "layer1.0" in graph.groups["layer1"].members
    assert all(n.pos is not None for n in graph.nodes.values())
    result = analyze(graph)
    # torchvision's published figures for ResNet-18: 11,689,512 parameters, 1.81 GFLOPS (MACs)
    assert result.ok and result.total_params == 11_689_512
    assert abs(result.macs - 1.814e9) / 1.814e9 < 0.01


@pytest.mark.slow
def test_inception_input_shape_comes_from_its_weights() -> None:
    project = import_torchvision("inception_v3")
    assert project.graph.nodes["input"].params == {"shape": [3, 299, 299]}
    outputs = [nid for nid, n in project.graph.nodes.items() if n.type == "Output"]
    assert outputs == ["output", "output_aux_logits"]
