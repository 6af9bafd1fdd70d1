"""timm's vision transformers through the importer (issue 14 §4): DeiT/ViT attention and PoolFormer.

timm is no dependency of NetCanvas: the timm tests skip when it is not installed. They build small
configurations of timm's own classes (pretrained=False, random weights) and check that the compiled
import is the model (``same_model`` of tests/core/test_import_vit.py): the source's parameter and
buffer counts, its ``state_dict`` keys under a strict load, and eval outputs equal to the bit.
timm's ``Attention`` is imported both ways it runs:
fused (``F.scaled_dot_product_attention``, one ScaledDotProductAttention node) and as explicit
``q @ kᵀ · scale``, softmax, ``@ v`` (MatMul, Softmax …). The split of q, k and v off the batch-moving
``permute(2, 0, 3, 1, 4)`` becomes Selects and Permutes. The declaration of ScaledDotProductAttention
is checked against torch here too (its defaults also run in tests/core/test_layers_conformance.py).

The whole-zoo numbers (one model per timm module, full size) are in ``bench/import_coverage.py
--family timm [--verify]``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from core.export import python_source
from core.importer import ModelImportError, import_module, import_with_weights
from core.layers import LayerError, get_spec
from tests.core.test_import_vit import randomize, same_model  # random weights; the import checked to the bit


def through_identity(graph: Any, node_id: str) -> str:
    """The first node at or above ``node_id`` that is no Identity (timm's q_norm and k_norm when unused)."""
    while graph.nodes[node_id].type == "Identity":
        (edge,) = graph.in_edges(node_id)
        node_id = edge.src
    return node_id


def types(graph: Any) -> list[str]:
    return [n.type for n in graph.nodes.values()]


# -- the ScaledDotProductAttention declaration ------------------------------------------------------

@pytest.mark.parametrize(("params", "shapes"), [
    ({}, [(2, 5, 8), (2, 7, 8), (2, 7, 6)]),
    ({"is_causal": True}, [(3, 6, 4), (3, 6, 4), (3, 6, 4)]),
    ({"scale": 0.5}, [(4, 8), (9, 8), (9, 3)]),
])
def test_sdpa_declaration_matches_torch(params: dict[str, Any], shapes: list[tuple[int, ...]]) -> None:
    spec = get_spec("ScaledDotProductAttention")
    assert spec is not None and spec.function is not None
    p = spec.resolve(params)
    inferred = spec.infer(p, shapes)
    q, k, v = (torch.randn(2, *s) for s in shapes)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = spec.function(q, k, v, **p)
    assert tuple(out.shape[1:]) == inferred.out_shapes[0]
    assert inferred.macs == counter.get_total_flops() // 2 // 2  # FLOPs / 2, per sample of a batch of 2
    want = F.scaled_dot_product_attention(q, k, v, is_causal=p["is_causal"], scale=p["scale"])
    assert torch.allclose(out, want, atol=1e-6)  # math kernel against the fused one: rounding only


def test_sdpa_declaration_refuses_mismatched_inputs_by_name() -> None:
    spec = get_spec("ScaledDotProductAttention")
    assert spec is not None
    with pytest.raises(LayerError, match=r"query's features \(8\) must equal the key's \(6\)"):
        spec.infer(spec.resolve({}), [(2, 5, 8), (2, 5, 6), (2, 5, 6)])
    with pytest.raises(LayerError, match="same leading \\(head\\) axes"):
        spec.infer(spec.resolve({}), [(2, 5, 8), (3, 5, 8), (3, 5, 8)])


# -- timm's classes -------------------------------------------------------------------------------

def small_vit(fused: bool, **kwargs: Any) -> nn.Module:
    timm = pytest.importorskip("timm")  # no dependency of NetCanvas: these tests skip without it
    from timm.layers import set_fused_attn

    set_fused_attn(fused)
    try:
        return randomize(timm.create_model(
            "deit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=24, depth=2,
            num_heads=3, num_classes=10, **kwargs))
    finally:
        set_fused_attn(True)


def test_a_small_deit_with_fused_attention_imports_faithfully() -> None:
    graph = same_model(small_vit(fused=True), (3, 32, 32))
    attn = "blocks.0.attn"
    sdpa = [i for i, node in graph.nodes.items() if node.type == "ScaledDotProductAttention"]
    assert len(sdpa) == 2 and sdpa[0].startswith(f"{attn}.")
    # q, k and v: a Select of the qkv Linear's reshaped output each, then heads before tokens
    sources = [through_identity(graph, e.src) for e in graph.in_edges(sdpa[0])]  # q_norm, k_norm: Identity
    assert [graph.nodes[s].type for s in sources] == ["Permute"] * 3
    selects = [graph.nodes[e.src] for s in sources for e in graph.in_edges(s)]
    assert [(s.type, s.params.get("index", 0)) for s in selects] == [("Select", 0), ("Select", 1), ("Select", 2)]
    assert graph.nodes[f"{attn}.qkv"].type == "Linear" and graph.groups[attn].label == "Attention"


def test_a_small_vit_with_explicit_attention_and_qk_norm_imports_faithfully() -> None:
    graph = same_model(small_vit(fused=False, qk_norm=True), (3, 32, 32))
    assert "ScaledDotProductAttention" not in types(graph)
    assert types(graph).count("Softmax") == 2 and types(graph).count("MatMul") == 4


def test_exported_python_of_a_timm_import_runs_the_same_attention() -> None:
    model = small_vit(fused=True)
    graph, state = import_with_weights(model, (3, 32, 32))
    source = python_source(graph, "Net")
    assert not [line for line in source.splitlines() if line.startswith(("import ", "from ")) and "timm" in line]
    namespace: dict[str, Any] = {}
    exec(compile(source, "net.py", "exec"), namespace)
    exported = namespace["Net"]()
    exported.load_state_dict(state, strict=True)
    exported.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(exported(x), model(x))


def test_a_small_poolformer_imports_faithfully() -> None:
    pytest.importorskip("timm")
    from timm.models.metaformer import GroupNorm1, MetaFormer

    # poolformer_s12's own settings (timm.models.metaformer), one block per stage and narrow
    model = randomize(MetaFormer(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), downsample_norm=None, mlp_act=nn.GELU,
                                 mlp_bias=True, norm_layers=GroupNorm1, layer_scale_init_values=1e-5,
                                 res_scale_init_values=None, use_mlp_head=False, num_classes=10))
    graph = same_model(model, (3, 64, 64))
    # the per-channel Scale's parameter, viewed as C×1×1, is a Parameter node reshaped to broadcast
    scale = "stages.0.blocks.0.layer_scale1.scale"
    assert graph.nodes[scale].type == "Parameter"


@pytest.mark.parametrize(("name", "kwargs", "size"), [
    ("cait_xxs24_224", {"img_size": 32, "patch_size": 8, "depth": 2, "depth_token_only": 1}, 32),
    ("pit_ti_224", {"img_size": 64}, 64),
])
def test_class_token_attention_imports_faithfully(name: str, kwargs: dict[str, Any], size: int) -> None:
    """CaiT's class attention and PiT's class-token pooling: Linears on the class token alone (1×C per sample)."""
    timm = pytest.importorskip("timm")
    same_model(randomize(timm.create_model(name, pretrained=False, **kwargs)), (3, size, size))


class _MaskedAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).reshape(x.shape[0], 4, 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)
        mask = torch.ones(4, 4, dtype=torch.bool).tril()
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class _Outer(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.attn = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


def test_attention_mask_given_to_fused_attention_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"F.scaled_dot_product_attention with an attention mask in module "
                                               r"'attn' \(_MaskedAttention\)"):
        import_module(_Outer(_MaskedAttention()), (4, 8))


class _BatchMoved(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(1, 0, 2).sum(1)  # a permute that moves the batch axis, then no piece taken


def test_batch_moving_permute_used_otherwise_is_still_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"Tensor.permute \[1, 0, 2\] that moves the batch axis in module "
                                               r"'attn' \(_BatchMoved\)"):
        import_module(_Outer(_BatchMoved()), (4, 8))
