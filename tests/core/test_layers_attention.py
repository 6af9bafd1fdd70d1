"""MultiheadAttention (and the Transformer layers built on it): declarations checked against torch.

Every setting below goes through the shared conformance machinery (:mod:`tests.core.test_layers_conformance`:
output shapes, parameter and buffer counts, MACs against ``FlopCounterMode``); the tests here add
the attention formula itself, outputs equal to torch's own module holding the same weights, the
attention weights kept for the probes, the refusals in the users' words, export and import.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from core import export
from core.analysis import analyze
from core.compiler import compile_graph
from core.graph import Graph
from core.layers import LayerError, get_spec
from core.layers.attention import attention_counts, nearest_heads
from core.layers.attention_modules import (
    PositionalEncoding,
    SequenceMultiheadAttention,
    SequenceTransformerDecoderLayer,
    SequenceTransformerEncoderLayer,
)
from core.layers.spec import Shape
from tests.core import test_layers_conformance as conformance

CASES: list[tuple[str, dict[str, Any], list[Shape]]] = [
    ("MultiheadAttention", {"num_heads": 4}, [(7, 16)]),
    ("MultiheadAttention", {"num_heads": 2, "causal": True, "bias": False}, [(5, 8)]),
    ("MultiheadAttention", {"num_heads": 3, "dropout": 0.1}, [(4, 12), (9, 5)]),  # to a memory: key = value
    ("MultiheadAttention", {"num_heads": 1, "causal": True}, [(6, 4), (6, 3), (6, 7)]),  # kdim ≠ vdim ≠ E
    ("MultiheadAttention", {"num_heads": 2, "bias": False}, [(3, 6), (5, 6), (5, 6)]),  # packed, T ≠ S
    ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 12}, [(5, 8)]),
    ("TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 16, "norm_first": True, "activation": "gelu",
                                 "causal": True, "dropout": 0.0}, [(6, 8)]),
    ("TransformerEncoderLayer", {"nhead": 1, "dim_feedforward": 5, "bias": False, "layer_norm_eps": 1e-6}, [(3, 4)]),
    ("TransformerDecoderLayer", {"nhead": 2, "dim_feedforward": 12}, [(5, 8), (7, 8)]),
    ("TransformerDecoderLayer", {"nhead": 4, "dim_feedforward": 6, "norm_first": True, "bias": False,
                                 "causal": False, "activation": "gelu"}, [(3, 8), (2, 8)]),
    ("PositionalEncoding", {}, [(5, 8)]),
    ("PositionalEncoding", {"max_len": 5, "dropout": 0.0}, [(5, 7)]),  # odd features: one sine more
    ("PositionalEncoding", {"mode": "learned", "max_len": 6}, [(5, 7)]),
]


@pytest.mark.parametrize(("type_name", "params", "shapes"), CASES,
                         ids=[f"{t}-{i}" for i, (t, *_) in enumerate(CASES)])
def test_conformance_with_torch(type_name: str, params: dict[str, Any], shapes: list[Shape]) -> None:
    conformance.test_conformance(type_name, params, shapes)


def counted_macs(module: nn.Module, *xs: torch.Tensor) -> int:
    """MACs per sample as FlopCounterMode sees them (math kernel: the fused CPU one has no formula)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(*xs)
    return counter.get_total_flops() // 2 // xs[0].shape[0]


@pytest.mark.parametrize(("t", "s", "e", "kdim", "vdim", "heads"),
                         [(10, 10, 32, 32, 32, 4), (6, 11, 24, 8, 5, 3), (1, 9, 8, 8, 8, 8)])
def test_macs_are_projections_plus_scores_plus_weighted_sum(t: int, s: int, e: int, kdim: int, vdim: int,
                                                            heads: int) -> None:
    """q, k, v projections T·E² + S·kdim·E + S·vdim·E, QKᵀ T·S·E, A·V T·S·E, output projection T·E²:
    what FlopCounterMode counts (torchinfo leaves out the two matmuls between the projections)."""
    params, macs = attention_counts(t, s, e, kdim, vdim, bias=True)
    assert macs == t * e * e + s * kdim * e + s * vdim * e + 2 * t * s * e + t * e * e
    module = SequenceMultiheadAttention(e, heads, kdim=kdim, vdim=vdim)
    assert params == sum(p.numel() for p in module.parameters())
    q, k, v = torch.randn(2, t, e), torch.randn(2, s, kdim), torch.randn(2, s, vdim)
    assert counted_macs(module, q, k, v) == macs
    spec = get_spec("MultiheadAttention")
    assert spec is not None
    inf = spec.infer(spec.resolve({"num_heads": heads}), [(t, e), (s, kdim), (s, vdim)])
    assert (inf.params, inf.macs) == (params, macs)
    assert inf.saved == heads * t * s  # the attention weights kept for backward


def _same_weights(ours: nn.Module, theirs: nn.Module) -> None:
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize("causal", [False, True])
def test_outputs_equal_torch_own_module(causal: bool) -> None:
    torch.manual_seed(0)
    ours = SequenceMultiheadAttention(16, 4, causal=causal).eval()
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    _same_weights(ours, ref)
    x = torch.randn(3, 6, 16)
    mask = torch.ones(6, 6, dtype=torch.bool).triu(1) if causal else None
    want = ref(x, x, x, attn_mask=mask, need_weights=False)[0]
    assert torch.allclose(ours(x), want, atol=1e-6)
    # kept weights: per head, not averaged; the causal ones are zero above the diagonal
    ours.keep_attention = True
    assert torch.allclose(ours(x), want, atol=1e-6)
    weights = ours.last_attention
    assert weights is not None and weights.shape == (3, 4, 6, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 6))
    _, ref_weights = ref(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    assert torch.allclose(weights, ref_weights, atol=1e-6)
    if causal:
        assert torch.count_nonzero(weights.triu(1)) == 0


def test_cross_attention_key_is_the_value() -> None:
    torch.manual_seed(1)
    ours = SequenceMultiheadAttention(12, 3, kdim=5, vdim=5).eval()
    ref = nn.MultiheadAttention(12, 3, kdim=5, vdim=5, batch_first=True).eval()
    _same_weights(ours, ref)
    q, memory = torch.randn(2, 4, 12), torch.randn(2, 9, 5)
    assert torch.allclose(ours(q, memory), ref(q, memory, memory, need_weights=False)[0], atol=1e-6)


def _attention_graph(input_shape: list[int], **params: Any) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": input_shape})
    g.add_node("MultiheadAttention", "attn", params)
    g.add_node("Output", "out")
    g.add_edge("input", "attn")
    g.add_edge("attn", "out")
    return g


def test_heads_that_do_not_divide_the_embedding_are_refused_with_the_nearest_that_do() -> None:
    a = analyze(_attention_graph([10, 100], num_heads=8))
    (diag,) = a.errors
    assert diag.message.startswith("attn: embed_dim 100 is not divisible by num_heads 8")
    assert diag.fix is not None and (diag.fix.param, diag.fix.value) == ("num_heads", 10)
    assert nearest_heads(100, 8) == 10 and nearest_heads(64, 6) == 8 and nearest_heads(7, 3) == 1  # a tie: more heads


def test_an_image_is_refused_with_what_to_insert() -> None:
    (diag,) = analyze(_attention_graph([3, 32, 32])).errors
    assert ("MultiheadAttention expects 2-D input per sample (T×C), got C×H×W (3×32×32): insert Flatten(2) and "
            "a Transpose") in diag.message


REFUSED: list[tuple[dict[str, Any], list[Shape], str | None, str]] = [
    # torch refuses it too, but with a bare AssertionError, which the shared check does not expect
    ({"num_heads": 8}, [(10, 100)], "torch: AssertionError", "embed_dim 100 is not divisible by num_heads 8"),
    ({}, [(3, 8, 8)], "torch reads 3-D as batched", "MultiheadAttention expects 2-D input per sample (T×C)"),
    ({"num_heads": 2}, [(4, 6), (5, 6), (7, 6)], "torch: AssertionError",
     "MultiheadAttention's key has 5 steps but its value 7"),
    ({"num_heads": 2}, [(4, 6), (16,)], "torch reads a vector batch as unbatched",
     "MultiheadAttention expects 2-D key input per sample (T×C), got a vector of 16 features"),
]


@pytest.mark.parametrize(("params", "shapes", "ours_only", "message"), REFUSED,
                         ids=[str(i) for i in range(len(REFUSED))])
def test_refusals_in_the_users_words(params: dict[str, Any], shapes: list[Shape], ours_only: str | None,
                                     message: str) -> None:
    conformance.test_refusal("MultiheadAttention", params, shapes, ours_only)
    spec = get_spec("MultiheadAttention")
    assert spec is not None
    with pytest.raises(LayerError) as info:
        spec.infer(spec.resolve(params), shapes)
    assert info.value.message.startswith(message)


def _exports_the_same(g: Graph, model: nn.Module, capsys: pytest.CaptureFixture[str]) -> str:
    """The exported file's class (its own example call run too) loads the model's weights strictly and
    computes the same on a 2×7×16 batch; returns the file's source."""
    source = export.python_source(g, "Exported")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, "exported.py", "exec"), namespace)
    capsys.readouterr()
    exported = namespace["Exported"]().eval()
    exported.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 7, 16)
    assert torch.equal(exported(x), model(x))
    return source


def test_graph_compiles_exports_and_imports_back(capsys: pytest.CaptureFixture[str]) -> None:
    from core.importer import import_module

    g = _attention_graph([7, 16], num_heads=4, causal=True)
    model = compile_graph(g).eval()
    source = _exports_the_same(g, model, capsys)
    assert "self.attn = SequenceMultiheadAttention(16, 4, causal=True)" in source
    x = torch.randn(2, 7, 16)
    again = import_module(model, input_shape=(7, 16))
    node = again.node("attn")
    assert node.type == "MultiheadAttention" and node.params == {"num_heads": 4, "causal": True}
    rebuilt = compile_graph(again).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(rebuilt(x), model(x))


def test_sequence_first_attention_is_refused_by_the_importer() -> None:
    spec = get_spec("MultiheadAttention")
    assert spec is not None and spec.from_module is not None
    with pytest.raises(ValueError, match="batch_first=False"):
        spec.from_module(nn.MultiheadAttention(8, 2))
    assert spec.from_module(nn.MultiheadAttention(8, 2, batch_first=True, bias=False))["bias"] is False


# -- Transformer layers and positional encoding ---------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_equals_torch_own_with_the_same_weights(norm_first: bool, activation: str) -> None:
    torch.manual_seed(2)
    kwargs = {"dim_feedforward": 24, "activation": activation, "norm_first": norm_first}
    ours = SequenceTransformerEncoderLayer(16, 4, **kwargs).eval()  # type: ignore[arg-type]
    ref = nn.TransformerEncoderLayer(16, 4, batch_first=True, **kwargs).eval()  # type: ignore[arg-type]
    _same_weights(ours, ref)
    x = torch.randn(3, 9, 16)
    with torch.no_grad():  # torch takes its fused inference kernel here, ours the watched path
        want = ref(x)
        assert torch.allclose(ours(x), want, atol=1e-5)
    # training mode (dropout off in both): the same again, and the probes can see the attention
    for m in (ours.train(), ref.train()):
        for sub in m.modules():
            if isinstance(sub, nn.Dropout):
                sub.p = 0.0
        m.self_attn.dropout = 0.0
    ours.self_attn.keep_attention = True
    assert torch.allclose(ours(x), ref(x), atol=1e-5)
    assert ours.self_attn.last_attention is not None and ours.self_attn.last_attention.shape == (3, 4, 9, 9)


def test_causal_encoder_layer_is_torch_with_the_square_subsequent_mask() -> None:
    torch.manual_seed(3)
    ours = SequenceTransformerEncoderLayer(8, 2, dim_feedforward=16, causal=True).eval()
    ref = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True).eval()
    _same_weights(ours, ref)
    x = torch.randn(2, 6, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(6)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x, src_mask=mask, is_causal=True), atol=1e-5)
        # a later step never changes an earlier one's output
        y = x.clone()
        y[:, 4:] = torch.randn(2, 2, 8)
        assert torch.allclose(ours(x)[:, :4], ours(y)[:, :4], atol=1e-6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_equals_torch_own_with_the_same_weights(norm_first: bool) -> None:
    torch.manual_seed(4)
    ours = SequenceTransformerDecoderLayer(12, 3, dim_feedforward=20, norm_first=norm_first).eval()
    ref = nn.TransformerDecoderLayer(12, 3, dim_feedforward=20, norm_first=norm_first, batch_first=True).eval()
    _same_weights(ours, ref)
    tgt, memory = torch.randn(2, 5, 12), torch.randn(2, 8, 12)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad():
        assert torch.allclose(ours(tgt, memory), ref(tgt, memory, tgt_mask=mask, tgt_is_causal=True), atol=1e-5)
    ours.multihead_attn.keep_attention = True
    with torch.no_grad():
        ours(tgt, memory)
    assert ours.multihead_attn.last_attention is not None
    assert ours.multihead_attn.last_attention.shape == (2, 3, 5, 8)  # target steps × memory steps


@pytest.mark.parametrize(("type_name", "shapes", "heads"), [("TransformerEncoderLayer", [(7, 16)], 4),
                                                            ("TransformerDecoderLayer", [(7, 16), (11, 16)], 2)])
def test_transformer_layer_counts_are_the_sum_of_theirs(type_name: str, shapes: list[Shape], heads: int) -> None:
    """Attention(s) + feed-forward 2·T·E·F MACs, and every parameter torch holds; FlopCounterMode agrees."""
    t, e = shapes[0]
    f = 40
    spec = get_spec(type_name)
    assert spec is not None
    inf = spec.infer(spec.resolve({"nhead": heads, "dim_feedforward": f}), shapes)
    macs = attention_counts(t, t, e, e, e, True)[1] + 2 * t * e * f
    if type_name == "TransformerDecoderLayer":
        macs += attention_counts(t, shapes[1][0], e, e, e, True)[1]
    assert inf.macs == macs
    module = spec.build(spec.resolve({"nhead": heads, "dim_feedforward": f}) | dict(inf.args))  # type: ignore[misc]
    assert inf.params == sum(p.numel() for p in module.parameters())
    assert counted_macs(module, *(torch.randn(2, *s) for s in shapes)) == macs


def test_sinusoidal_code_is_vaswani_and_learned_is_a_parameter() -> None:
    pe = PositionalEncoding(6, max_len=10, dropout=0.0)
    table = pe.get_buffer("table")
    t, i = 3, 1  # P[t, 2i] = sin(t / 10000^(2i/C)), P[t, 2i+1] = cos(...)
    assert torch.isclose(table[t, 2 * i], torch.sin(torch.tensor(t / 10000 ** (2 * i / 6))))
    assert torch.isclose(table[t, 2 * i + 1], torch.cos(torch.tensor(t / 10000 ** (2 * i / 6))))
    assert "table" not in pe.state_dict()  # recomputed from the sizes, not saved with the weights
    x = torch.randn(2, 4, 6)
    assert torch.equal(pe(x), x + table[:4])
    learned = PositionalEncoding(6, mode="learned", max_len=10, dropout=0.0)
    assert list(learned.state_dict()) == ["weight"] and learned.weight.shape == (10, 6)
    assert torch.equal(learned(x), x + learned.weight[:4])


def test_a_sequence_longer_than_max_len_is_refused_with_the_fix() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [40, 8]})
    g.add_node("PositionalEncoding", "pos", {"max_len": 32})
    g.add_node("Output", "out")
    g.add_edge("input", "pos")
    g.add_edge("pos", "out")
    (diag,) = analyze(g).errors
    assert diag.message.startswith("pos: PositionalEncoding has codes for 32 positions (max_len) but the sequence "
                                   "has 40 steps — set max_len to 40")
    assert diag.fix is not None and (diag.fix.param, diag.fix.value) == ("max_len", 40)


LAYER_REFUSED: list[tuple[str, dict[str, Any], list[Shape], str | None, str]] = [
    ("TransformerEncoderLayer", {"nhead": 3}, [(5, 8)], "torch: AssertionError",
     "d_model 8 is not divisible by nhead 3"),
    ("TransformerEncoderLayer", {}, [(3, 8, 8)], "torch reads 3-D as a batch",
     "TransformerEncoderLayer expects 2-D input per sample (T×C), got C×H×W"),
    ("TransformerDecoderLayer", {"nhead": 2}, [(5, 8), (6, 4)], "torch: AssertionError",
     "TransformerDecoderLayer's memory has 4 features per step but its target 8"),
    ("PositionalEncoding", {"max_len": 4}, [(5, 8)], None, "PositionalEncoding has codes for 4 positions"),
]


@pytest.mark.parametrize(("type_name", "params", "shapes", "ours_only", "message"), LAYER_REFUSED,
                         ids=[f"{t}-{i}" for i, (t, *_) in enumerate(LAYER_REFUSED)])
def test_layer_refusals(type_name: str, params: dict[str, Any], shapes: list[Shape], ours_only: str | None,
                        message: str) -> None:
    conformance.test_refusal(type_name, params, shapes, ours_only)
    spec = get_spec(type_name)
    assert spec is not None
    with pytest.raises(LayerError) as info:
        spec.infer(spec.resolve(params), shapes)
    assert message in info.value.message


def _encoder_graph() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [7, 16]})
    g.add_node("PositionalEncoding", "pos", {"mode": "learned", "max_len": 16})
    g.add_node("TransformerEncoderLayer", "enc", {"nhead": 4, "dim_feedforward": 32, "norm_first": True})
    g.add_node("TransformerDecoderLayer", "dec", {"nhead": 2, "dim_feedforward": 24})
    g.add_node("Output", "out")
    g.add_edge("input", "pos")
    g.add_edge("pos", "enc")
    g.add_edge("input", "dec")
    g.add_edge("enc", "dec", port=1)
    g.add_edge("dec", "out")
    return g


def test_transformer_graph_exports_with_its_attention_class_and_imports_back(
        capsys: pytest.CaptureFixture[str]) -> None:
    from core.importer import import_module

    g = _encoder_graph()
    model = compile_graph(g).eval()
    source = _exports_the_same(g, model, capsys)
    # the layers' class needs the attention class: the file defines it first
    assert source.index("class SequenceMultiheadAttention(") < source.index("class SequenceTransformerEncoderLayer(")
    x = torch.randn(2, 7, 16)
    again = import_module(model, input_shape=(7, 16))
    assert [again.node(n).type for n in ("pos", "enc", "dec")] == ["PositionalEncoding", "TransformerEncoderLayer",
                                                                   "TransformerDecoderLayer"]
    assert again.node("dec").params == {"nhead": 2, "dim_feedforward": 24}
    rebuilt = compile_graph(again).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(rebuilt(x), model(x))


def test_torch_encoder_layer_imports_with_its_weights() -> None:
    from core.importer import import_module

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, activation="gelu", batch_first=True,
                                                    norm_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.layer(x)
            return out

    torch.manual_seed(5)
    source = Encoder().eval()
    g = import_module(source, input_shape=(6, 16))
    assert g.node("layer").params == {"nhead": 4, "dim_feedforward": 32, "activation": "gelu", "norm_first": True}
    model = compile_graph(g).eval()
    model.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(2, 6, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), source(x), atol=1e-5)
