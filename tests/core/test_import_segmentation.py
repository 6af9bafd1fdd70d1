"""torchvision's semantic segmentation models import faithfully (issue 15).

``fcn_resnet50``, ``deeplabv3_mobilenet_v3_large`` (both with their auxiliary head) and
``lraspp_mobilenet_v3_large`` return an OrderedDict ``{"out": …, "aux": …}`` after an
``F.interpolate(…, size=input_shape[-2:], mode="bilinear", align_corners=False)`` and read their
backbone through ``IntermediateLayerGetter``. The import gives one Output per entry, in order, named
by its key, an Upsample for each interpolate, the source's state_dict keys, and (eval mode, the
source's weights with BatchNorm statistics made non-trivial) the same ``out`` and ``aux``.
Small 3×64×64 inputs keep it fast; ``torchvision:NAME`` resolves these names at their own size.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.analysis import analyze
from core.compiler import compile_graph
from core.errors import SourceError
from core.importer import import_torchvision, import_with_weights, torchvision_model

MODELS = {  # name → the dict's keys, in order
    "fcn_resnet50": ["out", "aux"],
    "deeplabv3_mobilenet_v3_large": ["out", "aux"],
    "lraspp_mobilenet_v3_large": ["out"],
}


def with_statistics(model: nn.Module) -> nn.Module:
    """torchvision's random init, plus BatchNorm scales, shifts and running statistics that are not the
    identity, so that a BatchNorm dropped or misplaced by the import would show in the outputs."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


# the two large ones take 10-20 s each on a 2-core CPU (building 35 M / 11 M random weights and tracing)
SLOW = {"fcn_resnet50", "deeplabv3_mobilenet_v3_large"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODELS])
def test_segmentation_model_imports_faithfully(name: str) -> None:
    torch.manual_seed(0)
    model = with_statistics(torchvision_model(name))  # aux_loss=True where the family has it, no downloads
    graph, state = import_with_weights(model, (3, 64, 64))
    result = analyze(graph)
    assert result.ok, [d.message for d in result.errors]
    outputs = [n for n in graph.nodes.values() if n.type == "Output"]
    assert [n.params.get("name") for n in outputs] == MODELS[name]
    assert [n.id for n in outputs] == MODELS[name]
    assert result.output_shapes == tuple((21, 64, 64) for _ in MODELS[name])
    upsamples = [n for n in graph.nodes.values() if n.type == "Upsample"]
    assert len(upsamples) >= len(MODELS[name])  # one per head's interpolate (DeepLab's ASPP pooling adds one)
    assert all(n.params.get("mode") == "bilinear" for n in upsamples)
    assert result.total_params == sum(p.numel() for p in model.parameters())
    assert set(state) == set(model.state_dict())
    with torch.device("meta"):  # no initialisation: every tensor is loaded next
        compiled = compile_graph(graph, analysis=result)
    compiled.to_empty(device="cpu")
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = model(x)
        got = compiled(x)
    got = got if isinstance(got, tuple) else (got,)
    assert list(want) == MODELS[name] and len(got) == len(want)
    for key, value in zip(want, got, strict=True):
        torch.testing.assert_close(value, want[key], rtol=1e-5, atol=1e-5, msg=f"{name} {key}")


def test_torchvision_source_resolves_segmentation_names() -> None:
    project = import_torchvision("lraspp_mobilenet_v3_large", (3, 96, 96))
    assert project.extra["torchvision"] == "lraspp_mobilenet_v3_large"
    assert [n.params for n in project.graph.nodes.values() if n.type == "Output"] == [{"name": "out"}]
    assert analyze(project.graph).output_shapes == ((21, 96, 96),)
    with pytest.raises(SourceError, match=r"no classification or segmentation model 'fcn_resnet5'.*fcn_resnet50"):
        import_torchvision("fcn_resnet5")
