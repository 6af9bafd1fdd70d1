"""Importer on models written the way model zoos write them (issue 12 §1): each class of failure once.

Layer subclasses (a BatchNorm2d that applies its activation, a channels-first LayerNorm, a
GroupNorm, a Linear and a "same"-padding Conv2d with their own forward), forwards that branch or
pad on their input's shape, a bare ``nn.Sequential`` or a single layer as the whole model, frozen
layers, hooks, and the messages for what cannot be imported (token ids, extra forward
arguments, branches on tensor values). Every import is compared with the source: parameters,
trainable parameters, state_dict keys (strict load) and outputs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from core.compiler import compile_graph
from core.importer import ModelImportError, import_with_weights


def same_model(module: nn.Module, shape: tuple[int, ...]) -> Any:
    """Import with weights and check the compiled import is the source; return the graph."""
    torch.manual_seed(0)
    for m in module.modules():  # non-trivial statistics, so a wrong eps or a swapped buffer shows
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    module.eval()
    graph, state = import_with_weights(module, shape)
    compiled = compile_graph(graph)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    assert sorted(compiled.state_dict()) == sorted(state)

    def count(m: nn.Module, trainable: bool) -> int:
        return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable)

    assert count(compiled, False) == count(module, False)
    assert count(compiled, True) == count(module, True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(compiled(x), module(x))
    return graph


def types(graph: Any) -> dict[str, str]:
    return {nid: n.type for nid, n in graph.nodes.items()}


# -- subclasses of supported layers ---------------------------------------------------------------

class BatchNormAct2d(nn.BatchNorm2d):
    """A norm that applies its activation, written out with F.batch_norm and its own bookkeeping."""

    def __init__(self, c: int) -> None:
        super().__init__(c)
        self.drop = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, factor, self.eps)
        return self.act(self.drop(x))


class NormThenSiLU(nn.BatchNorm2d):
    """The parent's forward, then an activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(super().forward(x))


class ChannelsFirstLayerNorm(nn.LayerNorm):
    """A LayerNorm over the channels of each pixel: behaves as LayerNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GroupNormReLU(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps))


class TaggedBatchNorm(nn.BatchNorm2d):
    """A subclass that only adds an attribute: it keeps its parent's forward."""

    tag = "backbone"


class ScaledLinear(nn.Linear):
    """A Linear with its own forward, the layer call followed by a supported op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(x, self.weight, self.bias))


class Stem(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.norm = norm
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.conv(x)))


@pytest.mark.parametrize(("norm", "layer"), [
    (BatchNormAct2d(8), "BatchNorm2d"),
    (NormThenSiLU(8), "BatchNorm2d"),
    (ChannelsFirstLayerNorm(8, eps=1e-6), "LayerNorm2d"),
    (GroupNormReLU(2, 8), "GroupNorm"),
    (TaggedBatchNorm(8), "BatchNorm2d"),
])
def test_a_subclassed_norm_imports_as_its_layer_with_its_own_keys(norm: nn.Module, layer: str) -> None:
    graph = same_model(Stem(norm), (3, 10, 10))
    assert types(graph)["norm"] == layer
    assert not any("permute" in nid for nid in graph.nodes)  # the channels-first LayerNorm is one node


def test_what_a_subclass_adds_after_its_layer_stays_in_the_graph() -> None:
    graph = same_model(Stem(BatchNormAct2d(8)), (3, 10, 10))
    assert [t for t in types(graph).values() if t == "ReLU"] == ["ReLU"]
    graph = same_model(nn.Sequential(nn.Flatten(), ScaledLinear(12, 5)), (3, 2, 2))
    assert sorted(types(graph).values()) == ["Flatten", "Input", "Linear", "Output", "Sigmoid"]


def test_importing_a_subclass_leaves_the_source_untouched() -> None:
    model = Stem(BatchNormAct2d(8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    import_with_weights(model, (3, 10, 10))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training  # the import restores the mode it found


class OffsetNorm(nn.BatchNorm2d):
    """Not the layer: the call uses a weight of its own making."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight + 1, self.bias, self.training)


def test_a_subclass_that_computes_something_else_is_refused_by_name() -> None:
    with pytest.raises(ModelImportError, match=r"in module 'norm' \(OffsetNorm\)"):
        import_with_weights(Stem(OffsetNorm(8)), (3, 10, 10))


# -- shapes known while tracing -----------------------------------------------------------------

class SamePadConv(nn.Conv2d):
    """TensorFlow's "same" padding, computed from the input size in forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        pad_h = max((-(-h // self.stride[0]) - 1) * self.stride[0] + kh - h, 0)
        pad_w = max((-(-w // self.stride[1]) - 1) * self.stride[1] + kw - w, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class EvenOut(nn.Module):
    """Pads an odd input to even before a stride-2 conv: branches on the width, reads len()."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert len(x) > 0
        if x.shape[-1] % 2:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


@pytest.mark.parametrize("size", [11, 12])
def test_same_padding_computed_from_the_input_size_becomes_constant(size: int) -> None:
    graph = same_model(nn.Sequential(SamePadConv(3, 4, 3, stride=2), nn.ReLU()), (3, size, size))
    assert types(graph)["_0"] == "Conv2d"


def test_a_branch_on_the_input_shape_takes_the_traced_shape() -> None:
    assert sorted(types(same_model(EvenOut(), (3, 8, 8))).values()) == ["Conv2d", "Input", "Output"]
    odd = types(same_model(EvenOut(), (3, 7, 7)))
    assert sorted(odd.values()) == ["Conv2d", "Input", "Output", "ZeroPad2d"]


class OnValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if x.sum() > 0 else x


def test_only_a_branch_on_tensor_values_says_so() -> None:
    with pytest.raises(ModelImportError, match=r"depends on tensor values"):
        import_with_weights(OnValues(), (4,))


# -- whole models that were crashes -----------------------------------------------------------

def test_a_bare_sequential_imports_with_its_keys_renamed_for_strict_load() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 5)))
    graph = same_model(model, (3, 8, 8))
    assert {"_0", "_1", "_2", "_3.0", "_3.1"} <= set(graph.nodes)


@pytest.mark.parametrize(("model", "shape", "node", "layer"), [
    (nn.Linear(12, 5), (12,), "linear", "Linear"),
    (nn.Conv2d(3, 4, 3, padding=1), (3, 6, 6), "conv2d", "Conv2d"),
    (BatchNormAct2d(3), (3, 6, 6), "batchnorm2d", "BatchNorm2d"),
])
def test_a_single_layer_as_the_whole_model_is_input_layer_output(model: nn.Module, shape: tuple[int, ...],
                                                                  node: str, layer: str) -> None:
    graph = same_model(model, shape)
    assert graph.nodes[node].type == layer
    assert [e.src for e in graph.in_edges(node)] == ["input"]


# -- frozen layers and hooks ------------------------------------------------------------------

def test_frozen_layers_become_frozen_nodes() -> None:
    model = Stem(nn.BatchNorm2d(8))
    model.conv.requires_grad_(False)
    model.norm.requires_grad_(False)
    graph = same_model(model, (3, 6, 6))
    assert {nid for nid, n in graph.nodes.items() if n.frozen} == {"conv", "norm"}


def test_a_layer_half_frozen_is_refused_by_name() -> None:
    model = Stem(nn.BatchNorm2d(8))
    model.head.bias.requires_grad_(False)
    with pytest.raises(ModelImportError, match=r"^head: bias has requires_grad=False .* freeze all of them or none"):
        import_with_weights(model, (3, 6, 6))


def test_pruning_is_refused_naming_the_module_and_how_to_make_it_permanent() -> None:
    model = Stem(nn.BatchNorm2d(8))
    prune.l1_unstructured(model.head, "weight", amount=0.5)
    with pytest.raises(ModelImportError) as info:
        import_with_weights(model, (3, 6, 6))
    assert str(info.value).startswith("module 'head' (Conv2d) is pruned (L1Unstructured on 'weight'")
    assert "torch.nn.utils.prune.remove(module, 'weight')" in str(info.value)
    prune.remove(model.head, "weight")
    same_model(model, (3, 6, 6))


def _scale(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
    return out * 2


def _shift(module: nn.Module, args: Any) -> Any:
    return (args[0] + 1,)


@pytest.mark.parametrize(("register", "kind"), [
    (lambda m: m.norm.register_forward_hook(_scale), "forward hook (_scale)"),
    (lambda m: m.conv.register_forward_pre_hook(_shift), "forward pre-hook (_shift)"),
])
def test_hooks_are_refused_naming_the_module_and_the_hook(register: Any, kind: str) -> None:
    model = Stem(nn.BatchNorm2d(8))
    handle = register(model)
    pattern = rf"^module '(norm|conv)' \((BatchNorm2d|Conv2d)\) has a {re.escape(kind)}"
    with pytest.raises(ModelImportError, match=pattern):
        import_with_weights(model, (3, 6, 6))
    handle.remove()
    same_model(model, (3, 6, 6))


def test_a_global_hook_is_refused() -> None:
    handle = nn.modules.module.register_module_forward_hook(_scale)
    try:
        with pytest.raises(ModelImportError, match=r"global forward hook is registered \(_scale\)"):
            import_with_weights(Stem(nn.BatchNorm2d(8)), (3, 6, 6))
    finally:
        handle.remove()


# -- messages in the user's terms -------------------------------------------------------------

class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(x)).mean(1)


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.fc(x) * mask * scale


def test_an_embedding_model_imports_with_a_token_id_input() -> None:
    """An Input read by an Embedding is traced with integer ids (tests/core/test_import_sequence.py has more)."""
    graph, state = import_with_weights(Tokens(), (100,))
    assert [n.type for n in graph.nodes.values()][:2] == ["Input", "Embedding"]
    assert set(state) == set(Tokens().state_dict())


def test_extra_forward_arguments_are_named() -> None:
    with pytest.raises(ModelImportError, match=r"^Masked.forward takes 2 tensor inputs \(x, mask\), but one input "
                                               r"shape was given: give one shape per input.* supplies mask itself$"):
        import_with_weights(Masked(), (4,))


def test_a_wrong_input_size_names_the_module_that_fails() -> None:
    with pytest.raises(ModelImportError, match=r"does not run on a 5×6×6 input: module 'conv' \(Conv2d\) fails"):
        import_with_weights(Stem(nn.BatchNorm2d(8)), (5, 6, 6))


class OptionalMask(nn.Module):
    """An optional forward argument: the import is of the call without it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
        if mask is not None:
            x = x * mask
        return self.fc(x) if scale == 1.0 else self.fc(x) * scale


def test_optional_forward_arguments_take_their_defaults() -> None:
    assert sorted(types(same_model(OptionalMask(), (4,))).values()) == ["Input", "Linear", "Output"]


class WritesInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        y[:, 0] = 0
        return y


def test_an_assignment_into_a_tensor_is_refused_in_the_users_words() -> None:
    with pytest.raises(ModelImportError) as info:
        import_with_weights(WritesInPlace(), (4,))
    assert "x[...] = … changes a tensor in place" in str(info.value)
    assert "Proxy" not in str(info.value)


# -- torchvision segmentation: F.interpolate back to the input size, dict outputs -----------------

@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"])
def test_segmentation_models_import_with_their_dict_outputs(name: str) -> None:
    """torchvision's segmentation heads resize to ``x.shape[-2:]``; the outputs keep the keys 'out' and 'aux'."""
    from torchvision.models import segmentation

    torch.manual_seed(0)
    kwargs: dict[str, Any] = {"aux_loss": True} if name.startswith("deeplab") else {}
    module = getattr(segmentation, name)(weights=None, weights_backbone=None, num_classes=5, **kwargs).eval()
    graph, state = import_with_weights(module, (3, 64, 48))
    compiled = compile_graph(graph)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    assert sum(p.numel() for p in compiled.parameters()) == sum(p.numel() for p in module.parameters())
    assert (sum(p.numel() for p in compiled.parameters() if p.requires_grad)
            == sum(p.numel() for p in module.parameters() if p.requires_grad))
    assert sorted(compiled.state_dict()) == sorted(module.state_dict())  # torchvision's own keys
    outputs = [nid for nid, n in graph.nodes.items() if n.type == "Output"]
    assert outputs == (["out", "aux"] if kwargs else ["out"])
    assert "Upsample" in types(graph).values()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        want, got = module(x), compiled(x)
    got = got if isinstance(got, tuple) else (got,)
    assert len(got) == len(want)
    for key, value in zip(outputs, got, strict=True):
        assert value.shape == want[key].shape == (2, 5, 64, 48)
        torch.testing.assert_close(value, want[key], rtol=1e-4, atol=1e-5)


# -- torchvision's FrozenBatchNorm2d (detection backbones) ----------------------------------------

def test_frozen_batchnorm_imports_as_its_own_layer_with_its_buffers() -> None:
    """Every key (weight, bias, running_mean, running_var: all buffers) loads strictly; eps is kept."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(0)
    norm = FrozenBatchNorm2d(8, eps=1e-3)
    for name in ("weight", "bias", "running_mean"):
        getattr(norm, name).uniform_(-1.0, 1.0)
    norm.running_var.uniform_(0.5, 2.0)
    module = Stem(norm)
    graph = same_model(module, (3, 6, 6))
    assert types(graph)["norm"] == "FrozenBatchNorm2d"
    assert graph.nodes["norm"].params["eps"] == 1e-3
    compiled = compile_graph(graph)
    compiled.load_state_dict(import_with_weights(module, (3, 6, 6))[1], strict=True)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():  # its statistics are fixed: training mode computes the same as the source
        torch.testing.assert_close(compiled.train()(x), module.train()(x))
