"""The segmentation templates (templates/segmentation.py) against hand-built torch modules of the same design.

``fcn-resnet18`` is d2l's FCN (§14.11): torchvision's resnet18 minus its last two children, a 1×1 conv and a
bilinear-initialised ConvTranspose2d(k=64, s=32, p=16); ``unet`` a small U-Net. Both must analyse cleanly,
compile, give classes×64×64, count the parameters and MACs torch counts, compute what the hand-built module
computes with the same weights, and survive export → import.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.analysis import analyze
from core.compiler import compile_graph
from core.diagnostics import Severity
from core.export import python_source
from core.importer.python_file import import_python, python_model
from core.layers import get_spec
from core.layers.conv_modules import BilinearConvTranspose2d
from core.project import dumps_project, loads_project
from core.sources import SourceError
from core.training import TrainConfig
from core.training.data.segmentation import SHAPES_SEG_CLASSES
from templates import build_template, list_templates
from templates.segmentation import SHAPES_SEG_NUM_CLASSES

NAMES = ("fcn-resnet18", "unet")
K = len(SHAPES_SEG_CLASSES)


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> torch.Tensor:
    """d2l's ``bilinear_kernel`` (§14.10/§14.11), as the book writes it: the reference the layer must equal."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = (torch.arange(kernel_size).reshape(-1, 1), torch.arange(kernel_size).reshape(1, -1))
    filt = (1 - torch.abs(og[0] - center) / factor) * (1 - torch.abs(og[1] - center) / factor)
    weight = torch.zeros((in_channels, out_channels, kernel_size, kernel_size))
    weight[range(in_channels), range(out_channels), :, :] = filt
    return weight


def d2l_fcn(num_classes: int) -> nn.Sequential:
    """d2l's FCN, built as the book builds it (without the pretrained download)."""
    pretrained_net = torchvision.models.resnet18()
    net = nn.Sequential(*list(pretrained_net.children())[:-2])
    net.add_module("final_conv", nn.Conv2d(512, num_classes, kernel_size=1))
    net.add_module("transpose_conv", nn.ConvTranspose2d(num_classes, num_classes, kernel_size=64, padding=16,
                                                        stride=32))
    net.transpose_conv.weight.data.copy_(bilinear_kernel(num_classes, num_classes, 64))
    return net


class DoubleConv(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class Up(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)


class HandUNet(nn.Module):
    """The U-Net design written by hand (Ronneberger et al., padded convs with BN), the template's names."""

    def __init__(self, classes: int, base: int = 16, scales: int = 4) -> None:
        super().__init__()
        w = [base * 2 ** i for i in range(scales)]
        self.scales = scales
        for i in range(1, scales):
            self.add_module(f"enc{i}", DoubleConv(3 if i == 1 else w[i - 2], w[i - 1]))
        self.bottleneck = DoubleConv(w[-2], w[-1])
        for i in range(scales - 1, 0, -1):
            self.add_module(f"up{i}", Up(w[i], w[i - 1]))
            self.add_module(f"dec{i}", DoubleConv(2 * w[i - 1], w[i - 1]))
        self.head = nn.Module()
        self.head.conv = nn.Conv2d(w[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i in range(1, self.scales):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for i in range(self.scales - 1, 0, -1):
            x = torch.cat([getattr(self, f"up{i}").up(x), skips[i - 1]], dim=1)
            x = getattr(self, f"dec{i}")(x)
        return self.head.conv(x)


def macs(model: nn.Module, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2 / x.shape[0]


def test_registered_with_shapes_seg_classes() -> None:
    infos = {i.name: i for i in list_templates()}
    assert SHAPES_SEG_NUM_CLASSES == K  # the listing's count is the dataset's
    for name in NAMES:
        info = infos[name]
        assert info.input_shape == (3, 64, 64) and info.num_classes == K
        assert "num_classes" in info.options and len(info.description) > 40


@pytest.mark.parametrize("name", NAMES)
def test_template_analyses_compiles_and_trains_on_shapes_seg(name: str) -> None:
    project = build_template(name)
    a = analyze(project.graph)
    assert [d.message for d in a.diagnostics if d.severity is Severity.ERROR] == []
    assert a.input_shape == (3, 64, 64) and a.output_shapes == ((K, 64, 64),)
    model = compile_graph(project.graph, seed=0).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, K, 64, 64)
    config = TrainConfig.from_dict(project.training)
    assert config.extra == {} and config.task == "segmentation" and config.dataset == "shapes-seg"
    assert all(node.pos is not None for node in project.graph.nodes.values())
    again = loads_project(dumps_project(project))
    assert [(n.id, n.type, n.params) for n in again.graph.nodes.values()] == \
           [(n.id, n.type, n.params) for n in project.graph.nodes.values()]
    assert analyze(build_template(name, num_classes=3).graph).output_shapes == ((3, 64, 64),)


def test_fcn_is_d2l_fcn() -> None:
    """Same parameter count, MACs and output as d2l's net; the backbone keeps torchvision resnet18's keys."""
    project = build_template("fcn-resnet18")
    assert project.extra["torchvision"] == "resnet18"  # --weights DEFAULT: ImageNet into the backbone
    a = analyze(project.graph)
    ours = compile_graph(project.graph, seed=0).eval()
    ref = d2l_fcn(K).eval()
    assert a.total_params == sum(p.numel() for p in ref.parameters()) == 11_327_052
    x = torch.randn(2, 3, 64, 64)
    assert a.macs == macs(ref, x)
    resnet_keys = {k for k in torchvision.models.resnet18().state_dict() if not k.startswith("fc.")}
    assert set(ours.state_dict()) == resnet_keys | {"final_conv.weight", "final_conv.bias",
                                                    "transpose_conv.weight", "transpose_conv.bias"}
    # d2l's Sequential numbers the children: conv1 bn1 relu maxpool layer1..4 → 0 1 2 3 4..7
    index = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    renamed = {(index[k.split(".", 1)[0]] + "." + k.split(".", 1)[1]) if k.split(".", 1)[0] in index else k: v
               for k, v in ours.state_dict().items()}
    ref.load_state_dict(renamed, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_fcn_transposed_conv_starts_as_d2l_bilinear_kernel() -> None:
    ours = compile_graph(build_template("fcn-resnet18").graph, seed=3)
    assert torch.equal(ours.transpose_conv.weight.detach(), bilinear_kernel(K, K, 64))
    # the bias is torch's default init, drawn as d2l's nn.ConvTranspose2d draws it
    assert ours.transpose_conv.bias is not None and ours.transpose_conv.bias.abs().max() > 0


@pytest.mark.parametrize(("kernel", "stride", "padding"), [(4, 2, 1), (3, 2, 1), (64, 32, 16), (5, 1, 2)])
def test_bilinear_weight_init_is_d2l_bilinear_kernel(kernel: int, stride: int, padding: int) -> None:
    """ConvTranspose2d(weight_init="bilinear") against d2l's formula, even and odd kernels, and grouped."""
    layer = get_spec("ConvTranspose2d")
    assert layer is not None and layer.build is not None
    params = layer.resolve({"out_channels": 3, "kernel_size": kernel, "stride": stride, "padding": padding,
                            "weight_init": "bilinear"})
    built = layer.build({**params, "in_channels": 3})
    assert isinstance(built, BilinearConvTranspose2d)
    assert torch.equal(built.weight.detach(), bilinear_kernel(3, 3, kernel))
    depthwise = layer.build({**params, "in_channels": 3, "groups": 3})  # (C, 1, k, k): every channel its tent
    assert torch.equal(depthwise.weight.detach(), bilinear_kernel(3, 3, kernel).sum(dim=1, keepdim=True))
    if stride == 2 and kernel == 4:  # d2l's ×2 upsampling of a constant map is that constant inside the border
        with torch.no_grad():
            up = nn.functional.conv_transpose2d(torch.ones(1, 3, 6, 6), built.weight, stride=2, padding=1)
        torch.testing.assert_close(up[..., 1:-1, 1:-1], torch.ones_like(up[..., 1:-1, 1:-1]))


@pytest.mark.parametrize("scales", [4, 3])
def test_unet_is_the_hand_built_unet(scales: int) -> None:
    project = build_template("unet", scales=scales)
    a = analyze(project.graph)
    ref = HandUNet(K, 16, scales).eval()
    assert a.total_params == sum(p.numel() for p in ref.parameters())
    ours = compile_graph(project.graph, seed=0).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    assert a.macs == macs(ref, x)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    concats = [n for n in project.graph.nodes.values() if n.type == "Concat"]
    assert len(concats) == scales - 1  # a skip at every scale below the bottleneck


def test_unet_options_are_checked() -> None:
    with pytest.raises(SourceError, match="scales must be 3 or 4, got 5"):
        build_template("unet", scales=5)
    with pytest.raises(SourceError, match="base_channels must be a positive integer"):
        build_template("unet", base_channels=0)


@pytest.mark.parametrize("name", NAMES)
def test_export_builds_the_same_initial_weights_and_imports_back(name: str, tmp_path: Path) -> None:
    """The exported file builds the compiled model's weights for the same seed (bilinear kernel included)
    and imports back to the same graph: node types, params (weight_init kept) and state_dict keys."""
    project = build_template(name)
    path = tmp_path / "net.py"
    path.write_text(python_source(project.graph, "Net"), encoding="utf-8")
    compiled = compile_graph(project.graph, seed=7)
    torch.manual_seed(7)
    exported = python_model(path)
    want = compiled.state_dict()
    got = exported.state_dict()
    assert set(got) == set(want)
    differ = sorted(k for k in want if not torch.equal(got[k], want[k]))
    # The exporter writes a ResNet downsampling block's layers in another order than the compiler builds
    # them (so does every ResNet template's export): only those blocks' convs may start differently.
    assert all(k.split(".")[0] in ("layer2", "layer3", "layer4") and k.split(".")[1] == "0" for k in differ), differ
    assert not any(k.startswith(("final_conv", "transpose_conv", "head", "enc", "dec", "up")) for k in differ)
    back = import_python(path, [(3, 64, 64)])
    layers = {n.id: (n.type, n.params) for n in project.graph.nodes.values() if n.type not in ("ReLU",)}
    imported = {n.id: (n.type, n.params) for n in back.graph.nodes.values() if n.type not in ("ReLU",)}
    holding = {nid for nid, r in analyze(project.graph).nodes.items() if r.params or r.buffers}
    assert {k: layers[k] for k in holding} == {k: imported[k] for k in holding}
    assert analyze(back.graph).total_params == analyze(project.graph).total_params
