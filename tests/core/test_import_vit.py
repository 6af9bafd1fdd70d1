"""torchvision's vision transformers through the importer (issue 14 §4): ViT, Swin (V1 and V2) and MaxViT.

Two kinds of checks, so that the file stays short on a small machine:

- faithfulness on small configurations of torchvision's own classes (``VisionTransformer``,
  ``SwinTransformer`` with its V1 and V2 blocks, ``MaxVit``), with random weights: the compiled
  import has the source's parameter and buffer counts, its ``state_dict`` keys (strict load) and,
  in eval mode, outputs equal to the bit. The Swin maps are sized so that windows are padded and
  shifted windows masked; and ViT-B/16 itself once, at full size;
- the named models (``torchvision:vit_b_16`` … ``maxvit_t``), built on the meta device: parameters
  equal to torchvision's published ``num_params``, buffers and keys (and shapes) equal to the
  source's, MACs within 1 % of torchvision's published GFLOPS (``_ops``). For ViT this holds only
  because attention's QKᵀ and A·V products are counted, which torchinfo leaves out.

The conformance of the new layer types with torch (shapes, parameters, MACs against
FlopCounterMode) is in tests/core/test_layers_conformance.py; Swin V2's position-bias MLP, which
runs once per batch, is checked here.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import maxvit, swin_transformer, vision_transformer

from core.analysis import analyze
from core.compiler import compile_graph
from core.export import python_source
from core.importer import (
    ModelImportError,
    import_torchvision,
    import_with_weights,
    torchvision_input_shape,
    torchvision_model,
)
from core.layers import get_spec
from core.layers.vision import CPB_HIDDEN
from core.training.weights import load_weights

pytestmark = pytest.mark.slow


def randomize(model: nn.Module) -> nn.Module:
    """Random weights everywhere (torchvision zeroes ViT's head, which would make any import look equal)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.eval()


def same_model(model: nn.Module, shape: tuple[int, ...]) -> Any:
    """Import ``model`` with its weights and check the compiled import is the model; return the graph."""
    graph, state = import_with_weights(model, shape)
    result = analyze(graph)
    assert result.ok, [d.message for d in result.errors]
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert result.buffers == sum(b.numel() for b in model.buffers())
    with torch.device("meta"):  # no initialisation: every tensor is loaded next
        compiled = compile_graph(graph, analysis=result)
    compiled.to_empty(device="cpu")
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    assert set(compiled.state_dict()) == set(state)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(compiled(x), model(x))
    return graph


def types(graph: Any) -> list[str]:
    return [n.type for n in graph.nodes.values()]


# -- small configurations of torchvision's classes, checked to the bit ----------------------------

def small_vit(representation: int | None = None) -> nn.Module:
    return randomize(vision_transformer.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10,
        representation_size=representation))


@pytest.mark.parametrize("representation", [None, 12])
def test_a_small_vision_transformer_imports_faithfully(representation: int | None) -> None:
    graph = same_model(small_vit(representation), (3, 32, 32))
    block = "encoder.layers.encoder_layer_0"
    attention = graph.nodes[f"{block}.self_attention"]
    assert attention.type == "MultiheadAttention" and attention.params["num_heads"] == 2
    # self-attention: one input, the block's first LayerNorm (query, key and value alike)
    assert [e.src for e in graph.in_edges(f"{block}.self_attention")] == [f"{block}.ln_1"]
    # the class token and the position embedding are Parameter nodes (their state is <id>.weight)
    assert graph.nodes["class_token"].type == "Parameter" and graph.nodes["encoder.pos_embedding"].type == "Parameter"
    assert graph.groups["encoder.layers.encoder_layer_1"].label == "EncoderBlock"


def small_swin(v2: bool) -> nn.Module:
    block = swin_transformer.SwinTransformerBlockV2 if v2 else swin_transformer.SwinTransformerBlock
    merge = swin_transformer.PatchMergingV2 if v2 else swin_transformer.PatchMerging
    return randomize(swin_transformer.SwinTransformer(
        patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4], num_classes=10,
        stochastic_depth_prob=0.2, block=block, downsample_layer=merge))


@pytest.mark.parametrize("v2", [False, True])
def test_a_small_swin_imports_faithfully_with_padded_and_shifted_windows(v2: bool) -> None:
    # 40×40 gives 10×10 and 5×5 maps: windows of 4 pad both, and every second block shifts by 2
    graph = same_model(small_swin(v2), (3, 40, 40))
    shifted = graph.nodes["features.1.1.attn"]
    assert shifted.type == "ShiftedWindowAttention"
    assert shifted.params["shift_size"] == 2 and shifted.params.get("cosine", False) is v2
    # patch merging is a space-to-depth rearrangement: Reshape → Permute → Reshape, no node of its own
    merge = [n for nid, n in graph.nodes.items() if nid.startswith("features.2.") and n.type in ("Reshape", "Permute")]
    assert [n.type for n in merge] == ["Reshape", "Permute", "Reshape"]


def test_swin_patch_merging_of_an_odd_map_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"patch merging of a 9×9×16 map in module 'features.2' "
                                               r"\(PatchMerging\).*odd height or width"):
        import_with_weights(small_swin(False), (3, 36, 36))


def small_maxvit() -> nn.Module:
    return randomize(maxvit.MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[8, 16],
                                   block_layers=[1, 1], head_dim=4, stochastic_depth_prob=0.2, num_classes=10))


def test_a_small_maxvit_imports_faithfully() -> None:
    graph = same_model(small_maxvit(), (3, 32, 32))
    attention = graph.nodes["blocks.0.layers.0.layers.grid_attention.attn_layer.1"]
    assert attention.type == "RelativePositionAttention" and attention.params == {"head_dim": 4}


@pytest.mark.parametrize("make", [partial(small_swin, True), small_maxvit], ids=["swin_v2", "maxvit"])
def test_exported_python_of_an_import_is_the_same_model(make: Any) -> None:
    """The new layers' classes are copied into the exported file, which needs nothing but torch."""
    model, shape = make(), ((3, 40, 40) if make is not small_maxvit else (3, 32, 32))
    graph, state = import_with_weights(model, shape)
    source = python_source(graph, "Net")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if "torchvision" in line or "core" in line], imports
    namespace: dict[str, Any] = {}
    exec(compile(source, "net.py", "exec"), namespace)
    net = namespace["Net"]().eval()
    net.load_state_dict(state, strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))


def test_vit_b_16_at_full_size_is_the_same_model() -> None:
    model = torchvision_model("vit_b_16", meta=True).to_empty(device="cpu")  # randomize() fills every weight
    same_model(randomize(model), (3, 224, 224))


# -- the named models: counts against torchvision's published figures ---------------------------

NAMES = ["vit_b_16", "vit_b_32", "vit_l_16", "swin_t", "swin_s", "swin_v2_t", "maxvit_t"]


@pytest.mark.parametrize("name", NAMES)
def test_named_model_has_torchvision_counts_keys_and_published_macs(name: str) -> None:
    source = torchvision_model(name, meta=True)
    graph, state = import_with_weights(source, torchvision_input_shape(name, source))
    result = analyze(graph)
    meta = next(iter(torchvision.models.get_model_weights(name))).meta
    assert result.ok and result.total_params == meta["num_params"] == sum(p.numel() for p in source.parameters())
    assert result.buffers == sum(b.numel() for b in source.buffers())
    assert abs(result.macs / 1e9 - meta["_ops"]) / meta["_ops"] < 0.01, (result.macs / 1e9, meta["_ops"])
    with torch.device("meta"):  # the compiled model's keys and shapes, without allocating its weights
        compiled = compile_graph(graph, analysis=result)
    shapes = {k: tuple(v.shape) for k, v in compiled.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in state.items()}
    # every key is torchvision's, but for the Parameter nodes' tensors, which are <node id>.weight
    renamed = {k for k in source.state_dict() if k not in state}
    assert {f"{k}.weight" for k in renamed} == set(state) - set(source.state_dict())
    assert renamed == ({"class_token", "encoder.pos_embedding"} if name.startswith("vit") else set())


def test_torchvision_vit_weights_load_by_name_into_the_import() -> None:
    """Pretrained weights (Load Pretrained Weights, train --weights) fill the class token and position
    embedding too, though their Parameter nodes hold them as class_token.weight and so on."""
    source = small_vit()
    graph, _ = import_with_weights(source, (3, 32, 32))
    compiled = compile_graph(graph)
    report = load_weights(compiled, source.state_dict(), "vit.pth")
    assert not report.missing and not report.unexpected and not report.reinitialized
    assert torch.equal(compiled.get_parameter("class_token.weight"), source.class_token)


def test_vit_macs_hold_because_attention_products_are_counted() -> None:
    """ViT-B/16's published 17.56 GFLOPS: the projections and MLPs alone (what torchinfo counts) are 4 % short."""
    source = torchvision_model("vit_b_16", meta=True)
    graph, _ = import_with_weights(source, (3, 224, 224))
    result = analyze(graph)
    published = 17.564e9
    products = 0  # QKᵀ and A·V: T²·E each, per attention layer
    for nid, node in graph.nodes.items():
        if node.type == "MultiheadAttention":
            t, e = result.nodes[nid].out_shapes[0]
            products += 2 * t * t * e
    assert products == 12 * 2 * 197 * 197 * 768
    assert abs(result.macs - published) / published < 0.0001
    assert (published - (result.macs - products)) / published > 0.04


# -- Swin V2's position-bias MLP, which runs once per forward ----------------------------------------

def test_cosine_window_attention_counts_its_bias_mlp_once_per_sample() -> None:
    spec = get_spec("ShiftedWindowAttention")
    assert spec is not None and spec.build is not None
    params = spec.resolve({"window_size": 4, "shift_size": 2, "num_heads": 2, "cosine": True})
    shape = (6, 7, 8)
    inferred = spec.infer(params, [shape])
    module = spec.build({**params, **inferred.args})
    assert inferred.params == sum(p.numel() for p in module.parameters())
    assert inferred.buffers == sum(b.numel() for b in module.buffers())

    def flops(batch: int) -> int:
        with FlopCounterMode(display=False) as counter:
            module(torch.randn(batch, *shape))
        return int(counter.get_total_flops())

    mlp = 7 * 7 * (2 * CPB_HIDDEN + CPB_HIDDEN * 2)  # over the (2·4 − 1)² offsets, once per forward
    assert flops(1) == 2 * inferred.macs  # batch 1: as torchvision's published figures count
    assert flops(2) - flops(1) == 2 * (inferred.macs - mlp)  # each further sample: the attention only


# -- refusals ------------------------------------------------------------------------------------

def test_vit_at_another_image_size_is_refused_with_the_sizes() -> None:
    """torchvision's ViT asserts its image size with a message that prints the traced height: written out."""
    with pytest.raises(ModelImportError, match=r"does not run on a 3×384×384 input: .*Expected 224 but got 384!"):
        import_torchvision("vit_b_32", (3, 384, 384))


class UsesWeights(nn.Module):
    def __init__(self, need_weights: bool = True, mask: bool = False) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask:
            return self.attn(x, x, x, attn_mask=torch.zeros(x.shape[1], x.shape[1]))[0]
        out, weights = self.attn(x, x, x)
        return out + weights.mean()


def test_attention_weights_used_in_forward_are_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"Tensor.mean of the attention weights that module 'attn' returns.*"
                                               r"need_weights=False"):
        import_with_weights(UsesWeights(), (5, 8))


def test_attention_mask_given_in_forward_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"module 'attn' \(MultiheadAttention\) called with attn_mask"):
        import_with_weights(UsesWeights(mask=True), (5, 8))


def test_sequence_first_attention_is_refused() -> None:
    model = nn.Sequential(nn.Linear(8, 8))
    model.add_module("attn", nn.MultiheadAttention(8, 2))
    wrapper = SelfAttend(model)
    with pytest.raises(ModelImportError, match=r"batch_first=False"):
        import_with_weights(wrapper, (5, 8))


class SelfAttend(nn.Module):
    def __init__(self, inner: nn.Sequential) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner[0](x)
        return self.inner.attn(y, y, y, need_weights=False)[0]

