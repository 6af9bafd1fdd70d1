"""Importer: the layer types added for issue 12 §1, each imported from a small module and checked
against torch.

Every model is imported with its weights, compiled, loaded with ``strict=True`` and run next to
the source in eval mode: outputs equal, parameter counts (all and trainable) equal, and the
state_dict keys the source's (a Parameter node's tensor lives at ``<path>.weight``). The exported
Python file of the imported graph is executed too and must compute the same.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.compiler import compile_graph
from core.export import python_source
from core.importer import ModelImportError, import_with_weights

Shape = tuple[int, ...]


def check(module: nn.Module, *shapes: Shape, keys: dict[str, str] | None = None) -> Any:
    """Import ``module`` for ``shapes`` (one per input); compare everything with the source.

    ``keys`` maps source state_dict keys to compiled ones where they differ. Returns the graph.
    """
    torch.manual_seed(0)
    module.eval()
    graph, state = import_with_weights(module, shapes[0] if len(shapes) == 1 else shapes)
    compiled = compile_graph(graph)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    renamed = {k: (keys or {}).get(k, k) for k in module.state_dict()}
    assert sorted(compiled.state_dict()) == sorted(renamed.values())
    assert sum(p.numel() for p in compiled.parameters()) == sum(p.numel() for p in module.parameters())
    assert (sum(p.numel() for p in compiled.parameters() if p.requires_grad)
            == sum(p.numel() for p in module.parameters() if p.requires_grad))
    xs = [torch.randn(2, *s) for s in shapes]
    with torch.no_grad():
        want, got = module(*xs), compiled(*xs)
    _same(want, got)
    namespace: dict[str, Any] = {}
    exec(compile(python_source(graph, "Imported"), "<exported>", "exec"), namespace)  # our own generated code
    exported = namespace["Imported"]()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    exported.eval()
    with torch.no_grad():
        _same(want, exported(*xs))
    return graph


def _same(want: Any, got: Any) -> None:
    wants = tuple(want.values()) if isinstance(want, dict) else want if isinstance(want, tuple) else (want,)
    gots = got if isinstance(got, tuple) else (got,)
    assert len(wants) == len(gots)
    for a, b in zip(wants, gots, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def types(graph: Any) -> list[str]:
    return [n.type for n in graph.nodes.values()]


class Fn(nn.Module):
    """A module whose forward is ``fn(self, *xs)``, holding ``layers`` as submodules."""

    def __init__(self, fn: Any, **layers: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> Any:
        return self.fn(self, x)


class Fn2(Fn):
    """:class:`Fn` with two tensor inputs (torch.fx traces a fixed signature)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> Any:  # type: ignore[override]
        return self.fn(self, x, y)


def seq(*layers: nn.Module) -> nn.Module:
    """``nn.Sequential`` under a named attribute (a top-level ``0`` is no valid node id)."""
    return Fn(lambda m, x: m.body(x), body=nn.Sequential(*layers))


# -- padding ------------------------------------------------------------------------------------

PAD_MODULES = [nn.ReflectionPad2d((1, 2, 0, 3)), nn.ReplicationPad2d(2), nn.ConstantPad2d((1, 0, 2, -1), 0.5),
               nn.ZeroPad2d(1)]


@pytest.mark.parametrize("pad", PAD_MODULES, ids=lambda m: type(m).__name__)
def test_padding_modules(pad: nn.Module) -> None:
    g = check(seq(nn.Conv2d(2, 3, 3), pad, nn.Conv2d(3, 2, 1)), (2, 6, 7))
    assert type(pad).__name__ in types(g)


@pytest.mark.parametrize(("call", "want"), [
    (lambda x: F.pad(x, (1, 2, 3, 0), mode="reflect"), "ReflectionPad2d"),
    (lambda x: F.pad(x, [2, 1, 1, 0], mode="replicate"), "ReplicationPad2d"),
    (lambda x: F.pad(x, (1, 1, 1, 1), value=-1.5), "ConstantPad2d"),
    (lambda x: F.pad(x, (0, 1)), "ZeroPad2d"),
])
def test_functional_pad(call: Any, want: str) -> None:
    g = check(Fn(lambda m, x: m.conv(call(x)), conv=nn.Conv2d(2, 2, 3)), (2, 5, 6))
    assert want in types(g)


def test_functional_pad_refusals_name_the_call() -> None:
    with pytest.raises(ModelImportError, match=r"F\.pad with mode='circular'"):
        import_with_weights(Fn(lambda m, x: F.pad(x, (1, 1, 1, 1), mode="circular")), (2, 5, 5))
    with pytest.raises(ModelImportError, match=r"F\.pad with pad="):
        import_with_weights(Fn(lambda m, x: F.pad(x, (1, 1, 1, 1, 1, 1))), (2, 5, 5, 5))
    with pytest.raises(ModelImportError, match=r"F\.pad of a 2-axis sample in Fn\.forward: the padding layers pad"):
        import_with_weights(Fn(lambda m, x: F.pad(x, (1, 1))), (2, 5))


# -- activations --------------------------------------------------------------------------------

def test_softplus_and_mish() -> None:
    g = check(seq(nn.Linear(4, 6), nn.Softplus(beta=2.0, threshold=5.0), nn.Mish()), (4,))
    assert types(g).count("Softplus") == types(g).count("Mish") == 1
    g = check(Fn(lambda m, x: F.mish(F.softplus(x, beta=0.5)) + F.softplus(x)), (3, 4))
    assert types(g).count("Softplus") == 2 and "Mish" in types(g)


# -- pooling over one and three axes, the Conv3d family -------------------------------------------

def test_pooling_over_sequences() -> None:
    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool1d(F.max_pool1d(m.pool(m.conv(x)), 3, 1, 1), 2, count_include_pad=False)
        return m.gap(y).flatten(1) + F.adaptive_max_pool1d(y, 1).flatten(1) + F.adaptive_avg_pool1d(y, 2).sum(-1)

    g = check(Fn(forward, conv=nn.Conv1d(2, 4, 3), pool=nn.MaxPool1d(2, ceil_mode=True), gap=nn.AdaptiveAvgPool1d(1)),
              (2, 15))
    assert types(g).count("MaxPool1d") == 2 and "AvgPool1d" in types(g)
    assert types(g).count("AdaptiveAvgPool1d") == 2 and "AdaptiveMaxPool1d" in types(g)


class Video(nn.Module):
    """A small 3-D network: Conv3d, BatchNorm3d, pooling over volumes, global average pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
                                  nn.BatchNorm3d(8), nn.ReLU(inplace=True), nn.MaxPool3d((1, 2, 2)))
        self.conv = nn.Conv3d(8, 8, 3, padding=1, groups=2)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = F.avg_pool3d(self.conv(x), 2, stride=1) + F.max_pool3d(x, 2, stride=1)
        x = F.adaptive_avg_pool3d(x, (1, 2, 2)).flatten(2).mean(-1) + self.pool(x).flatten(1)
        return self.fc(x)


def test_conv3d_family_and_its_analysis() -> None:
    from core.analysis import analyze

    g = check(Video(), (3, 4, 12, 12))
    for name in ("Conv3d", "BatchNorm3d", "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d"):
        assert name in types(g), name
    result = analyze(g)
    assert not result.errors
    conv = result.nodes["conv"]
    assert conv.out_shapes == ((8, 4, 3, 3),)
    # One receptive-field entry per axis of the volume: stem 1×3×3 s1×2×2 (3), pool 1×2×2 (5, jump 4), 3×3×3 (13).
    assert conv.rf is not None and conv.rf.size == (3, 13, 13) and conv.rf.stride == (1, 4, 4)
    assert result.nodes["pool"].rf is not None and result.nodes["pool"].rf.is_global


# -- subtraction and division ---------------------------------------------------------------------

def test_subtract_and_divide() -> None:
    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        a, b = m.a(x), m.b(x)
        centred = a - x.mean((2, 3), keepdim=True)
        scaled = torch.div(centred, torch.sigmoid(b) + a.tanh())
        return torch.sub(scaled, b) / a.sigmoid()

    g = check(Fn(forward, a=nn.Conv2d(3, 3, 1), b=nn.Conv2d(3, 3, 1)), (3, 4, 4))
    assert types(g).count("Subtract") == 2 and types(g).count("Divide") == 2


def test_arithmetic_with_constants_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"operator\.truediv of a constant by a tensor in Fn\.forward: a "
                                               r"reciprocal maps to no layer type"):
        import_with_weights(Fn(lambda m, x: 1.0 / x), (3, 4, 4))
    with pytest.raises(ModelImportError, match=r"torch\.div with rounding_mode='floor'"):
        import_with_weights(Fn(lambda m, x: torch.div(x, x.sigmoid(), rounding_mode="floor")), (3, 4, 4))


# -- slicing, indexing, reductions, expand --------------------------------------------------------

class Ghost(nn.Module):
    """GhostNet's module: a primary conv, cheap depthwise features, concatenated and cut to ``oup``."""

    def __init__(self, inp: int, oup: int) -> None:
        super().__init__()
        self.oup = oup
        init = -(-oup // 2)
        self.primary = nn.Conv2d(inp, init, 1, bias=False)
        self.cheap = nn.Conv2d(init, init, 3, padding=1, groups=init, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary(x)
        out = torch.cat([x1, self.cheap(x1)], dim=1)
        return out[:, :self.oup, :, :]


def test_slicing_by_constants() -> None:
    g = check(Fn(lambda m, x: m.ghost(x), ghost=Ghost(4, 5)), (4, 6, 6))
    assert types(g).count("Slice") == 1
    g = check(Fn(lambda m, x: m.fc(x[..., 1:] + x[:, :, :-1]), fc=nn.Linear(5, 3)), (4, 6))
    assert types(g).count("Slice") == 2
    # several axes at once: one node per axis, each checked against torch's shape of the whole index
    g = check(Fn(lambda m, x: x[:, 1:3, ::2, -3:] * x.narrow(1, 0, 2)[:, :, ::2, -3:]), (4, 5, 6))
    assert types(g).count("Slice") == 6


def test_selecting_one_position() -> None:
    g = check(Fn(lambda m, x: m.fc(x[:, 0] + x.select(1, -1)) + m.fc2(x[:, 2, 1:]),
                 fc=nn.Linear(6, 3), fc2=nn.Linear(5, 3)), (4, 6))
    assert types(g).count("Select") == 3 and "Slice" in types(g)


def test_new_and_dropped_axes_of_size_one() -> None:
    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        w = m.fc(x.mean((2, 3)))  # SE written with unsqueeze: N×C → N×C×1×1
        return x * w.unsqueeze(-1).unsqueeze(3) + x[:, None].squeeze(1) * torch.unsqueeze(w, 2)[..., None]

    g = check(Fn(forward, fc=nn.Linear(4, 4)), (4, 3, 3))
    assert types(g).count("Reshape") == 6
    with pytest.raises(ModelImportError, match=r"Tensor\.squeeze without a dim in Fn\.forward: it would drop"):
        import_with_weights(Fn(lambda m, x: x.squeeze()), (1, 4))


def test_sum_and_amax_over_constant_axes() -> None:
    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        avg, top = x.mean((2, 3), keepdim=True), torch.amax(x, dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(m.fc(avg) + m.fc2(top))  # CBAM's channel attention
        return (x * gate).sum(dim=-1) + x.amax(-1)

    g = check(Fn(forward, fc=nn.Conv2d(4, 4, 1), fc2=nn.Conv2d(4, 4, 1)), (4, 5, 6))
    assert types(g).count("Amax") == 2 and types(g).count("Sum") == 1


def test_expand_and_expand_as() -> None:
    g = check(Fn(lambda m, x: x + m.pool(x).expand(-1, -1, 5, 6) + m.pool(x).expand_as(x),
                 pool=nn.AdaptiveAvgPool2d(1)), (4, 5, 6))
    assert types(g).count("Expand") == 2


# -- Parameter nodes ------------------------------------------------------------------------------

class TinyViT(nn.Module):
    """ViT's use of learned tensors: a class token expanded to the batch and a positional embedding."""

    def __init__(self, d: int = 8, n: int = 4) -> None:
        super().__init__()
        self.patch = nn.Linear(6, d)
        self.class_token = nn.Parameter(torch.randn(1, 1, d))
        self.encoder = nn.Module()
        self.encoder.pos_embedding = nn.Parameter(torch.randn(1, n + 1, d))
        self.encoder.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x)
        batch_class_token = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([batch_class_token, x], dim=1)
        x = self.encoder.ln(x + self.encoder.pos_embedding)
        return self.head(x[:, 0])


def test_parameters_used_in_forward_become_parameter_nodes() -> None:
    keys = {"class_token": "class_token.weight", "encoder.pos_embedding": "encoder.pos_embedding.weight"}
    g = check(TinyViT(), (4, 6), keys=keys)
    assert g.nodes["class_token"].type == g.nodes["encoder.pos_embedding"].type == "Parameter"
    assert g.nodes["encoder.pos_embedding"].params["shape"] == [5, 8]
    assert "Expand" in types(g) and "Select" in types(g)


class Gamma(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.gamma = nn.Parameter(torch.randn(3, 1, 1))  # no leading batch axis: stored as it is
        self.offset = nn.Parameter(torch.randn(1, 3, 4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x) * self.gamma - self.offset
        return (y + self.offset) / self.gamma


def test_a_parameter_used_twice_is_one_node() -> None:
    source = Gamma()
    source.offset.requires_grad_(False)  # a frozen tensor stays frozen (check compares trainable counts)
    g = check(source, (3, 4, 4), keys={"gamma": "gamma.weight", "offset": "offset.weight"})
    assert types(g).count("Parameter") == 2
    assert g.nodes["gamma"].params == {"shape": [3, 1, 1], "batch_axis": False}
    assert g.nodes["offset"].frozen and not g.nodes["gamma"].frozen


class TokenMixer(nn.Module):
    """timm-style tensors with fewer axes than a sample: a per-feature gamma and bias on N×D tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.gamma = nn.Parameter(torch.randn(6))
        self.bias = nn.Parameter(torch.randn(6))
        self.shift = nn.Parameter(torch.randn(1, 1, 6))  # one row for every token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma * self.fc(x) + self.bias - (x + self.shift)


def test_parameters_broadcast_like_torch() -> None:
    g = check(TokenMixer(), (5, 6), keys={k: f"{k}.weight" for k in ("gamma", "bias", "shift")})
    assert types(g).count("Parameter") == 3 and types(g).count("Reshape") == 2
    assert types(g).count("Expand") == 2  # Add takes equal shapes: bias and shift widened to 5×6


def test_buffers_and_scalars_used_in_forward_are_refused_by_name() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(2.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    with pytest.raises(ModelImportError, match="scalar parameter 'scale'"):
        import_with_weights(Scaled(), (3,))
    m = Fn(lambda m, x: x + m.mean_buf)
    m.register_buffer("mean_buf", torch.zeros(1, 3))
    with pytest.raises(ModelImportError, match="buffer 'mean_buf'"):
        import_with_weights(m, (3,))


class Projection(nn.Module):
    """Learned matrices used directly: ``x @ W`` on tokens, attention scores, ``torch.mm`` on vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 4))
        self.v = nn.Parameter(torch.randn(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x @ self.w
        scores = torch.matmul(q, q.transpose(1, 2)).softmax(-1)
        return torch.mm((scores @ q).mean(1), self.v)


def test_matrix_products_with_parameters() -> None:
    g = check(Projection(), (5, 6), keys={"w": "w.weight", "v": "v.weight"})
    assert types(g).count("MatMul") == 4 and types(g).count("Parameter") == 2


# -- several inputs, dict and tuple outputs --------------------------------------------------------

def test_dict_outputs_become_outputs_named_by_their_keys() -> None:
    g = check(Fn(lambda m, x: {"logits": m.fc(x), "features": x.sigmoid()}, fc=nn.Linear(4, 2)), (4,))
    outputs = [nid for nid, node in g.nodes.items() if node.type == "Output"]
    assert outputs == ["logits", "features"]


class Siamese(nn.Module):
    """Two inputs through one tower each, compared by their difference; two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.left_tower = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.right_tower = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(4, 2)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.left_tower(left).flatten(1), self.right_tower(right).flatten(1)
        return self.head(a - b), a * b


def test_several_tensor_inputs_become_one_input_each() -> None:
    g = check(Siamese(), (3, 6, 6), (3, 5, 5))  # one shape per forward argument, in its order
    inputs = {nid: node.params["shape"] for nid, node in g.nodes.items() if node.type == "Input"}
    assert inputs == {"left": [3, 6, 6], "right": [3, 5, 5]}
    assert [nid for nid, node in g.nodes.items() if node.type == "Output"] == ["output", "output_1"]


def test_the_number_of_input_shapes_must_match_the_forward() -> None:
    with pytest.raises(ModelImportError, match=r"^Siamese\.forward takes 2 tensor inputs \(left, right\), but one "
                                               r"input shape was given: give one shape per input"):
        import_with_weights(Siamese(), (3, 6, 6))
    with pytest.raises(ModelImportError, match=r"^Fn\.forward takes 1 tensor input \(x\), but 2 input shapes"):
        import_with_weights(Fn(lambda m, x: x.relu()), [(3,), (4,)])
    with pytest.raises(ModelImportError, match=r"Siamese does not run on 3×6×6 and 4×5×5 inputs: module "
                                               r"'right_tower\.0' \(Conv2d\) fails"):
        import_with_weights(Siamese(), [(3, 6, 6), (4, 5, 5)])
    with pytest.raises(ModelImportError, match=r"input shape must be positive sizes .* got \[3, 0\] \(in"):
        import_with_weights(Siamese(), [(3, 6, 6), (3, 0)])


# -- MaxPool2d's indices and MaxUnpool2d ----------------------------------------------------------

class SegNetStage(nn.Module):
    """SegNet's encoder/decoder pair: pooling remembers where each maximum was, unpooling puts it back."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.dec = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, idx = self.pool(self.enc(x))
        z, idx2 = F.max_pool2d(y, 3, stride=1, padding=1, return_indices=True)
        y = F.max_unpool2d(z, idx2, 3, stride=1, padding=1) + y
        return self.dec(self.unpool(y, idx))


def test_max_pool_indices_feed_max_unpool() -> None:
    g = check(SegNetStage(), (3, 8, 6))
    assert types(g).count("MaxUnpool2d") == 2
    assert g.nodes["pool"].params["return_indices"] is True
    assert [(e.src, e.from_port, e.port) for e in g.in_edges("unpool")] == [("add", 0, 0), ("pool", 1, 1)]


class Repeated(nn.Module):
    """Blocks used more than once: the exported file writes one class per block (Slice and indices inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.g1, self.g2 = Ghost(4, 5), Ghost(5, 5)
        self.c, self.c2 = nn.Conv2d(5, 3, 1), nn.Conv2d(2, 3, 1)
        self.s1, self.s2 = SegNetStage(), SegNetStage()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s2(self.c2(self.s1(self.c(self.g2(self.g1(x))))))


def test_repeated_blocks_export_as_classes() -> None:
    g = check(Repeated(), (4, 8, 6))
    source = python_source(g, "Repeated")
    assert "class Ghost(nn.Module):" in source and "class SegNetStage(nn.Module):" in source
    assert "out[:, :5]" in source and "nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)" in source
    assert "max_pool2d_with_indices" not in source


# -- GELU's default, resizing with F.interpolate -------------------------------------------------

def test_gelu_without_approximate_takes_torchs_default() -> None:
    g = check(Fn(lambda m, x: F.gelu(m.fc(x)) + F.gelu(x, approximate="tanh"), fc=nn.Linear(4, 4)), (4,))
    gelus = [n.params.get("approximate", "none") for n in g.nodes.values() if n.type == "GELU"]
    assert sorted(gelus) == ["none", "tanh"]


@pytest.mark.parametrize(("call", "shape", "want"), [
    (lambda x: F.interpolate(x, scale_factor=2), (2, 3, 5), {"scale_factor": 2.0}),
    (lambda x: F.interpolate(x[:, :, ::2, ::2], size=x.shape[-2:], mode="bilinear", align_corners=False), (2, 7, 6),
     {"size": [7, 6], "align_corners": False}),
    (lambda x: F.interpolate(x, size=(4, 9), mode="bicubic", align_corners=True), (2, 3, 5), {"size": [4, 9]}),
    (lambda x: F.interpolate(x, scale_factor=(1.5, 2.0), mode="bilinear"), (2, 4, 4), {"scale_factor": [1.5, 2.0]}),
    (lambda x: F.upsample_bilinear(x, scale_factor=2), (2, 3, 3), {"align_corners": True, "mode": "bilinear"}),
    (lambda x: F.upsample(x, 7, mode="nearest"), (2, 3, 3), {"size": 7}),
    (lambda x: F.interpolate(x, scale_factor=3, mode="linear"), (2, 5), {"scale_factor": 3.0}),
], ids=["factor", "size-of-input", "bicubic", "two-factors", "upsample_bilinear", "upsample", "linear-1d"])
@pytest.mark.filterwarnings("ignore:.*upsample.* is deprecated")  # F.upsample*: still found in model zoos
def test_interpolate_becomes_upsample(call: Any, shape: Shape, want: dict[str, Any]) -> None:
    channels = shape[0]
    conv: nn.Module = nn.Conv2d(channels, 2, 1) if len(shape) == 3 else nn.Conv1d(channels, 2, 1)
    g = check(Fn(lambda m, x: m.conv(call(x)), conv=conv), shape)
    (up,) = [n for n in g.nodes.values() if n.type == "Upsample"]
    assert {k: up.params[k] for k in want} == want


def test_interpolate_refusals_name_the_call() -> None:
    with pytest.raises(ModelImportError, match=r"F\.interpolate with mode='area' in Fn\.forward: Upsample resizes"):
        import_with_weights(Fn(lambda m, x: F.interpolate(x, size=(3, 3), mode="area")), (2, 6, 6))
    with pytest.raises(ModelImportError, match=r"F\.interpolate with antialias=True"):
        import_with_weights(Fn(lambda m, x: F.interpolate(x, size=(3, 3), mode="bilinear", antialias=True)),
                            (2, 6, 6))


# -- a parameter reshaped to broadcast, F.normalize: SSD's L2 norm --------------------------------

class L2NormScale(nn.Module):
    """SSD300's conv4_3 rescaling: F.normalize over channels, times a learned per-channel scale."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.scale_weight = nn.Parameter(torch.rand(4) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.scale_weight.view(1, -1, 1, 1) * F.normalize(y) + F.normalize(y, p=1.0, dim=-1, eps=1e-6)


def test_normalize_and_a_parameter_viewed_to_broadcast() -> None:
    g = check(L2NormScale(), (3, 5, 6), keys={"scale_weight": "scale_weight.weight"})
    assert types(g).count("Normalize") == 2
    assert [n.type for nid, n in g.nodes.items() if nid.startswith("scale_weight")] == ["Parameter"]


def test_a_parameter_viewed_to_a_batch_is_refused_by_name() -> None:
    class Viewed(nn.Module):
        def __init__(self, reshape: Any) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(2, 3))
            self.reshape = reshape

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.reshape(self.w)

    with pytest.raises(ModelImportError, match=r"Tensor\.view of the parameter 'w' to shape \[6\] in Viewed\.forward: "
                                               r"a parameter reshaped for use in forward needs a leading axis"):
        import_with_weights(Viewed(lambda w: w.view(6)), (6,))
    with pytest.raises(ModelImportError, match=r"Tensor\.flatten of the parameter 'w' used directly in forward"):
        import_with_weights(Viewed(lambda w: w.flatten()), (6,))  # no internal class named (it said "on a _Param")


# -- arithmetic with constant numbers: Scale -----------------------------------------------------

def test_arithmetic_with_constant_numbers_becomes_scale() -> None:
    def forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        y = m.conv(x / 255.0 - 0.5)
        return torch.mul(y, 2) + (1 - y.sigmoid()) * 0.5 + (y + 0) * 1

    g = check(Fn(forward, conv=nn.Conv2d(3, 2, 1)), (3, 4, 4))
    scales = sorted((n.params.get("factor", 1.0), n.params.get("offset", 0.0))
                    for n in g.nodes.values() if n.type == "Scale")
    assert scales == [(-1.0, 1.0), (1.0 / 255.0, 0.0), (0.5, 0.0), (1.0, -0.5), (2.0, 0.0)]  # + 0 and × 1: none


class Clamps(nn.Module):
    """clamp / clip with constant bounds, as methods and functions (YOLO-style box clipping, ReLU written by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).clamp(min=0)  # ReLU
        y = torch.clamp(y * 4.0, 0, 6)  # ReLU6
        return torch.clip(y - 3.0, -1.5, 2).clamp_(-0.25, 0.25)  # Hardtanh ×2


def test_clamp_with_constant_bounds_is_relu_relu6_or_hardtanh() -> None:
    graph = check(Clamps(), (3, 8, 8))
    assert [t for t in types(graph) if t in ("ReLU", "ReLU6", "Hardtanh")] == ["ReLU", "ReLU6", "Hardtanh", "Hardtanh"]


class OneBound(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(max=1.0)


def test_clamp_with_only_an_upper_bound_is_refused_in_one_sentence() -> None:
    with pytest.raises(ModelImportError) as err:
        import_with_weights(OneBound(), (3, 4, 4))
    assert "clamp" in str(err.value) and "Hardtanh" in str(err.value) and "\n" not in str(err.value)
