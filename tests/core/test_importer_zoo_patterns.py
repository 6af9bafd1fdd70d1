"""Importer on the patterns third-party model zoos use (issue 12, the CNNs timm had refused).

Each pattern is rebuilt here as a small module written the way the zoo writes it (timm is no
dependency): drop path drawn with ``x.new_empty(...).bernoulli_()``, ``torch.stack`` (SKNet's
selective kernel), a fixed binomial blur through ``F.conv2d`` (TResNet's anti-aliasing), "SAME"
max pooling that pads with -inf, and NFNet's weight standardisation. Every import is compared with
the source: parameters, trainable parameters, state_dict keys under a strict load, outputs equal
(to the bit where the computation is the same), and the exported Python file. What cannot be
imported is refused in one sentence naming the call, the module and why.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.analysis import analyze
from core.compiler import compile_graph
from core.export import python_source
from core.importer import ModelImportError, import_module, import_with_weights

Shape = tuple[int, ...]


def check(module: nn.Module, shape: Shape, *, exact: bool = True) -> Any:
    """Import ``module`` with its weights and compare everything with the source; return the graph."""
    torch.manual_seed(0)
    module.eval()
    graph, state = import_with_weights(module, shape)
    compiled = compile_graph(graph)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    assert sorted(compiled.state_dict()) == sorted(module.state_dict())
    assert sum(p.numel() for p in compiled.parameters()) == sum(p.numel() for p in module.parameters())
    assert (sum(p.numel() for p in compiled.parameters() if p.requires_grad)
            == sum(p.numel() for p in module.parameters() if p.requires_grad))
    result = analyze(graph)
    assert result.ok, result.diagnostics
    assert result.total_params == sum(p.numel() for p in module.parameters())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        want, got = module(x), compiled(x)
    if exact:
        assert torch.equal(got, want)
    else:
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    namespace: dict[str, Any] = {}
    exec(compile(python_source(graph, "Imported"), "<exported>", "exec"), namespace)  # our own generated code
    exported = namespace["Imported"]()
    exported.load_state_dict(compiled.state_dict(), strict=True)
    exported.eval()
    with torch.no_grad():
        torch.testing.assert_close(exported(x), want, rtol=1e-5, atol=1e-6)
    return graph


def types(graph: Any) -> dict[str, str]:
    return {nid: n.type for nid, n in graph.nodes.items()}


# -- drop path ------------------------------------------------------------------------------------

def drop_path(x: torch.Tensor, drop_prob: float, training: bool, scale_by_keep: bool = True) -> torch.Tensor:
    """Stochastic depth as model zoos write it: one Bernoulli draw per sample, kept ones rescaled."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    def __init__(self, p: float, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.p = p
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training, self.scale_by_keep)


class Residual(nn.Module):
    """conv → bn → drop path, added to the input: a residual block with stochastic depth."""

    def __init__(self, c: int, p: float, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.drop_path = DropPath(p, scale_by_keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.bn(self.conv(x)))


class InlineDrop(nn.Module):
    """The drop path called as a function in the block's own forward (no DropPath module)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + drop_path(self.fc(x), 0.25, self.training)


def test_drop_path_imports_as_stochastic_depth() -> None:
    model = nn.Sequential()
    model.add_module("stem", nn.Conv2d(3, 4, 3, padding=1))
    model.add_module("block1", Residual(4, 0.2))
    model.add_module("block2", Residual(4, 0.1))
    graph = check(model, (3, 8, 8))
    assert types(graph)["block1.drop_path"] == "StochasticDepth"
    assert graph.nodes["block1.drop_path"].params == {"p": 0.2, "mode": "row"}
    assert graph.nodes["block2.drop_path"].params == {"p": 0.1, "mode": "row"}
    # The graph keeps the training behaviour: each sample's branch is dropped or scaled by 1/(1 - p).
    compiled = compile_graph(graph)
    compiled.train()
    branch = compiled.get_submodule("block1.drop_path")
    torch.manual_seed(1)
    x = torch.ones(400, 3, 1, 1)
    kept = {round(float(v), 4) for v in branch(x).flatten()}
    assert kept == {0.0, round(1 / 0.8, 4)}


def test_drop_path_written_in_a_block_forward() -> None:
    graph = check(InlineDrop(), (6,))
    assert sorted(types(graph).values()) == ["Add", "Input", "Linear", "Output", "StochasticDepth"]
    (node,) = [n for n in graph.nodes.values() if n.type == "StochasticDepth"]
    assert node.params == {"p": 0.25, "mode": "row"}


def test_drop_path_without_rescaling_is_refused() -> None:
    with pytest.raises(ModelImportError) as info:
        import_module(Residual(4, 0.2, scale_by_keep=False), (4, 5, 5))
    message = str(info.value)
    assert "\n" not in message
    assert "does not rescale" in message and "'drop_path' (DropPath)" in message and "StochasticDepth" in message


def drop_connect(inputs: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth as EfficientNet ports write it: floor(keep + uniform) is 1 with probability keep."""
    if not training:
        return inputs
    keep_prob = 1 - p
    random_tensor = keep_prob
    random_tensor += torch.rand([inputs.shape[0], 1, 1, 1], dtype=inputs.dtype, device=inputs.device)
    binary_tensor = torch.floor(random_tensor)
    return inputs / keep_prob * binary_tensor


class MBBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + drop_connect(self.bn(self.conv(x)), 0.3, self.training)


def test_drop_connect_with_torch_rand_imports_as_stochastic_depth() -> None:
    graph = check(MBBlock(4), (4, 6, 6))
    assert sorted(types(graph).values()) == ["Add", "BatchNorm2d", "Conv2d", "Input", "Output", "StochasticDepth"]
    (node,) = [n for n in graph.nodes.values() if n.type == "StochasticDepth"]
    assert node.params == {"p": 0.3, "mode": "row"}


class Noisy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rand([x.shape[0], 1, 1])


def test_random_values_that_are_no_drop_path_are_refused() -> None:
    with pytest.raises(ModelImportError, match=r"operator.mul by an undrawn tensor"):
        import_module(Noisy(), (3, 4))


class RandomBuffer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x.new_empty(x.shape).normal_()


def test_new_empty_of_another_shape_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"Tensor.new_empty of shape \[2, 3, 4\].*drop-path mask"):
        import_module(RandomBuffer(), (3, 4))


# -- torch.stack (SKNet's selective kernel) -------------------------------------------------------

class SelectiveKernel(nn.Module):
    """Two conv paths stacked on a new axis, weighted by a softmax over the paths, then summed."""

    def __init__(self, c: int, paths: int = 2) -> None:
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1 + i, dilation=1 + i) for i in range(paths)])
        self.reduce = nn.Conv2d(c, 4, 1)
        self.act = nn.ReLU()
        self.select = nn.Conv2d(4, c * paths, 1)
        self.num_paths = paths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.stack([op(x) for op in self.paths], dim=1)
        b, _, c = x.shape[:3]
        attn = self.select(self.act(self.reduce(x.sum(1).mean((2, 3), keepdim=True))))
        attn = torch.softmax(attn.view(b, self.num_paths, c, 1, 1), dim=1)
        return torch.sum(x * attn, dim=1)


def test_torch_stack_becomes_a_stack_node() -> None:
    graph = check(SelectiveKernel(4), (4, 6, 6), exact=False)
    stack = [n for n in graph.nodes.values() if n.type == "Stack"]
    assert len(stack) == 1 and stack[0].params.get("dim", 1) == 1
    assert "Softmax" in types(graph).values()
    assert analyze(graph).nodes[stack[0].id].output_shape == (2, 4, 6, 6)


class StackLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x, x * 2.0, -x], dim=-1)


class StackBatch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x, x], dim=0)


def test_stack_on_the_last_axis_and_refused_on_the_batch_axis() -> None:
    graph = check(StackLast(), (3, 5))
    assert analyze(graph).output_shapes == ((3, 5, 3),)
    with pytest.raises(ModelImportError, match=r"torch.stack along dim 0 in StackBatch.forward: it would stack "
                                                r"samples of the batch"):
        import_module(StackBatch(), (3,))


# -- a fixed blur kernel (TResNet's anti-aliasing) ------------------------------------------------

def binomial(k: int) -> torch.Tensor:
    row = torch.tensor([math.comb(k - 1, i) for i in range(k)], dtype=torch.float32) / 2 ** (k - 1)
    return row[:, None] * row[None, :]


class Blur(nn.Module):
    """Reflect-pad, then a depthwise binomial blur with stride 2, the filter a non-persistent buffer."""

    def __init__(self, channels: int | None, k: int = 3, persistent: bool = False, filt: torch.Tensor | None = None):
        super().__init__()
        self.channels = channels
        self.k = k
        kernel = binomial(k) if filt is None else filt
        self.register_buffer("filt", kernel[None, None].repeat(channels or 1, 1, 1, 1), persistent=persistent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, [self.k // 2] * 4, mode="reflect")
        if self.channels is None:
            c = x.shape[1]
            return F.conv2d(x, self.filt.expand(c, 1, self.k, self.k), stride=2, groups=c)
        return F.conv2d(x, self.filt, stride=2, groups=self.channels)


class AntiAliased(nn.Module):
    def __init__(self, blur: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.aa = blur
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.aa(self.conv(x)))


@pytest.mark.parametrize(("channels", "k"), [(4, 3), (None, 3), (4, 5), (None, 2)])
def test_fixed_binomial_conv_is_a_blurpool(channels: int | None, k: int) -> None:
    graph = check(AntiAliased(Blur(channels, k)), (3, 9, 10))
    blur = [n for n in graph.nodes.values() if n.type == "BlurPool2d"]
    assert len(blur) == 1 and blur[0].id.startswith("aa.")
    assert blur[0].params == ({"filt_size": k} if k != 3 else {})
    assert "ReflectionPad2d" in types(graph).values()
    row = analyze(graph).nodes[blur[0].id]
    assert row.output_shape == (4, (9 + 2 * (k // 2) - k) // 2 + 1, (10 + 2 * (k // 2) - k) // 2 + 1)
    assert row.params == 0


def test_fixed_kernels_that_are_no_blur_or_are_saved_are_refused() -> None:
    with pytest.raises(ModelImportError, match=r"buffer 'aa.filt' as its kernel in module 'aa' \(Blur\): its "
                                                r"values are not the binomial blur"):
        import_module(AntiAliased(Blur(4, 3, filt=torch.ones(3, 3) / 9)), (3, 8, 8))
    with pytest.raises(ModelImportError, match=r"saved in state_dict.*would not load"):
        import_module(AntiAliased(Blur(4, 3, persistent=True)), (3, 8, 8))


class ParamKernel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel)


def test_conv_with_a_parameter_kernel_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"F.conv2d with a parameter as its weight in ParamKernel.forward"):
        import_module(ParamKernel(), (3, 6, 6))


# -- "SAME" max pooling: -inf padding -------------------------------------------------------------

class MaxPoolSame(nn.MaxPool2d):
    """TensorFlow's "SAME" max pooling: pad with -inf so the pool's windows cover the input evenly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        assert isinstance(k, int) and isinstance(s, int)
        pads = []
        for n in reversed(x.shape[-2:]):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        x = F.pad(x, pads, value=-float("inf"))
        return F.max_pool2d(x, k, s, 0, 1, False)


class PoolNet(nn.Module):
    def __init__(self, k: int, s: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.pool = MaxPoolSame(k, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bn(x))


@pytest.mark.parametrize(("k", "s", "size"), [(3, 1, 8), (3, 2, 9), (5, 1, 7)])
def test_minus_inf_padding_before_max_pool_is_the_pool_s_padding(k: int, s: int, size: int) -> None:
    graph = check(PoolNet(k, s), (3, size, size))
    assert sorted(types(graph).values()) == ["BatchNorm2d", "Input", "MaxPool2d", "Output"]
    (pool,) = [n for n in graph.nodes.values() if n.type == "MaxPool2d"]
    assert pool.params["padding"] in ([k // 2, k // 2], k // 2)


@pytest.mark.parametrize(("k", "s", "size"), [(3, 2, 8), (2, 2, 7), (4, 1, 6)])
def test_uneven_minus_inf_padding_repeats_the_edge(k: int, s: int, size: int) -> None:
    # "SAME" pads unevenly here (0 before and 1 after on an even size with k=3, s=2): every window
    # that holds padding holds the edge value too, so repeating the edge gives the same maxima.
    model = PoolNet(k, s)
    graph = check(model, (3, size, size))
    assert sorted(types(graph).values()) == ["BatchNorm2d", "Input", "MaxPool2d", "Output", "ReplicationPad2d"]
    x = torch.full((1, 3, size, size), -math.inf)
    x[..., 0, 0] = 1.0  # -inf inputs too: the edge repeated is the edge's own value
    compiled = compile_graph(graph).eval()
    compiled.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(compiled(x), model.eval()(x))


class PadThenAvg(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, [1, 1, 1, 1], value=-math.inf), 3, 1)


class PadTooWide(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, [3, 0, 0, 0], value=-math.inf), 3, 1)


class PadNothing(nn.Module):
    """Window attention pads H and W up to a multiple of the window: by 0 on every axis when they fit."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.pad(x, (0, 0, 0, 0, 0, 0)))


def test_padding_by_nothing_is_no_node() -> None:
    graph = check(PadNothing(), (3, 5, 4))
    assert sorted(types(graph).values()) == ["Input", "Linear", "Output"]


def test_other_infinite_padding_is_refused_with_the_reason() -> None:
    with pytest.raises(ModelImportError) as info:
        import_module(PadThenAvg(), (3, 5, 5))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot import F.pad with value=-inf (padding [1, 1, 1, 1]) before F.avg_pool2d in "
                              "PadThenAvg.forward")
    assert "JSON" in message and "only right before a max pool" in message
    with pytest.raises(ModelImportError, match=r"padding \[3, 0, 0, 0\]\) before a max pool.*less padding than "
                                                r"its kernel"):
        import_module(PadTooWide(), (3, 5, 5))


# -- weight standardisation (NFNet) -----------------------------------------------------------------

class ScaledStdConv(nn.Conv2d):
    """A conv whose weight is standardised per output channel in every forward, times a learned gain."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=1)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))
        self.scale = self.weight[0].numel() ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                              weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0, eps=1e-6)
        return F.conv2d(x, weight.reshape_as(self.weight), self.bias, self.stride, self.padding)


def test_weight_standardisation_is_refused_in_one_sentence() -> None:
    model = nn.Sequential()
    model.add_module("stem", ScaledStdConv(3, 4))
    with pytest.raises(ModelImportError) as info:
        import_module(model, (3, 6, 6))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot import F.conv2d whose weight is computed in forward from 'stem.gain', "
                              "'stem.weight' (weight standardisation")
    assert "in module 'stem' (ScaledStdConv)" in message and "train a different model" in message


# -- reshapes that fold the batch axis --------------------------------------------------------------

class RowLSTM(nn.Module):
    """Sequencer's mixing: every row of a B×H×W×C map is one sequence for an LSTM (batch folded with H)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(c, c, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        y, _ = self.rnn(x.reshape(b * h, w, c))
        return y.reshape(b, h, w, c)


class Mixer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = RowLSTM(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x)


def test_a_reshape_that_folds_the_batch_axis_is_refused_in_one_line() -> None:
    # Decided per model (botnet's attention, bat_resnext's torch.eye blocks, sequencer's LSTM): what
    # runs between the fold and the unfold maps to no layer, so the fold is refused where it happens.
    with pytest.raises(ModelImportError) as info:
        import_module(Mixer(), (3, 5, 4))
    message = str(info.value)
    assert "\n" not in message
    assert message == ("reshape in module 'mix' gives (6, 5, 4), which is not a batch of samples (the batch axis "
                       "must stay first)")


class MadeInForward(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rand(x.shape[0], 1, 1)


def test_a_tensor_made_in_forward_is_named_so_not_by_an_internal_name() -> None:
    with pytest.raises(ModelImportError) as info:
        import_module(MadeInForward(), (3, 4))
    message = str(info.value)
    assert "_tensor_constant" not in message and "\n" not in message
    assert message.startswith("cannot import operator.mul of a tensor created in forward (torch.tensor, torch.rand, "
                              "torch.zeros …) in MadeInForward.forward: its values are made by the forward")


class TiedDecoder(nn.Module):
    """An output layer that reuses the input layer's weight, transposed."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Linear(6, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.relu(self.encode(x)), self.encode.weight.t())


def test_another_computed_weight_is_refused_without_the_nfnet_hint() -> None:
    with pytest.raises(ModelImportError) as info:
        import_module(TiedDecoder(), (6,))
    message = str(info.value)
    assert message.startswith("cannot import F.linear whose weight is computed in forward from 'encode.weight' in "
                              "TiedDecoder.forward: a layer node holds its weight as it is")
    assert "standardisation" not in message
