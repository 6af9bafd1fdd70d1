"""Compiled templates against torchvision's models: same ``state_dict`` (``strict=True``) and
the same outputs in eval mode.

Inputs are small (32–64 px) where the architecture allows it: every mirrored model ends in
adaptive pooling, so the forward path is the same code at any size. BatchNorm running stats are
randomized first, otherwise eval-mode BN would be the identity and hide a misplaced layer.
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from core.compiler import compile_graph
from templates import build_template, list_templates

MIRRORED = sorted(info.name for info in list_templates() if info.torchvision)
# Smallest comfortable input per model: AlexNet's 11×11/s4 stem and three max-pools need ≥ 63 px;
# GoogLeNet and DenseNet need ≥ 32 px; 64 px keeps ResNet's last stage at 2×2.
INPUT_SIZE = {"alexnet": 64, "googlenet": 64, "densenet121": 64}
# VGG's dense layers (102 M weights in the first one) make torchvision's random init the slow part,
# and the weights come from our compiled model anyway: build torchvision's VGG uninitialized.
UNINITIALIZED = {name for name in MIRRORED if name.startswith("vgg")}


def randomize_batchnorm(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def torchvision_model(name: str) -> torch.nn.Module:
    if name in UNINITIALIZED:
        with torch.device("meta"):
            model = torchvision.models.get_model(name)
        return model.to_empty(device="cpu")
    kwargs = {"init_weights": True} if name == "googlenet" else {}  # the old init, without its FutureWarning
    return torchvision.models.get_model(name, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("name", MIRRORED)
def test_compiled_template_is_torchvision_model(name: str) -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ours = compile_graph(build_template(name).graph, seed=0)
    tv = torchvision_model(name)
    if name in UNINITIALIZED:
        tv.load_state_dict(ours.state_dict(), strict=True)
    randomize_batchnorm(tv, gen)
    ours.load_state_dict(tv.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in tv.state_dict().items()}
    ours.eval()
    tv.eval()
    size = INPUT_SIZE.get(name, 32 if name.startswith("vgg") else 64)
    x = torch.randn(2, 3, size, size, generator=gen)
    with torch.no_grad():
        expected = tv(x)
        got = ours(x)
    if name == "googlenet":
        # three Outputs (main, aux2, aux1); torchvision returns only the main logits in eval mode
        assert isinstance(got, tuple) and len(got) == 3
        got = got[0]
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.slow
def test_googlenet_auxiliary_heads_match_torchvision() -> None:
    """torchvision runs aux1/aux2 only in training; compare them on the captured block outputs."""
    gen = torch.Generator().manual_seed(1)
    tv = torchvision.models.googlenet(init_weights=True).eval()
    randomize_batchnorm(tv, gen)
    ours = compile_graph(build_template("googlenet").graph).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    captured: dict[str, torch.Tensor] = {}
    tv.inception4a.register_forward_hook(lambda m, i, o: captured.__setitem__("4a", o))
    tv.inception4d.register_forward_hook(lambda m, i, o: captured.__setitem__("4d", o))
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        main = tv(x)
        main_ours, aux2, aux1 = ours(x)
        torch.testing.assert_close(main_ours, main, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(aux1, tv.aux1(captured["4a"]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(aux2, tv.aux2(captured["4d"]), rtol=1e-5, atol=1e-6)
