"""The Transformer templates: ViT-Tiny (32×32, patch 4) and the Transformer-encoder text classifier.

Each analyses without a diagnostic, counts exactly the parameters of its compiled module and the
MACs FlopCounterMode sees (attention's QKᵀ and A·V included), runs forward on a batch of its data,
and names a task and dataset that fit it.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from core.analysis import analyze
from core.compiler import compile_graph
from core.errors import SourceError
from core.project import Project
from core.training.config import TrainConfig
from core.training.data import check_fit, open_dataset
from templates.transformer import transformer_classifier, vit_tiny


def _example(project: Project) -> torch.Tensor:
    shape = analyze(project.graph).input_shape
    assert shape is not None
    if len(shape) == 1:  # token ids
        return torch.randint(0, 5, (2, *shape))
    return torch.randn(2, *shape)


@pytest.mark.parametrize(("build", "options"), [
    (vit_tiny, {}),
    (vit_tiny, {"depth": 2, "patch_size": 8, "num_classes": 4}),
    (transformer_classifier, {}),
    (transformer_classifier, {"num_layers": 1, "embed_dim": 32, "num_heads": 2, "seq_len": 20}),
])
def test_template_analyses_cleanly_and_counts_what_torch_holds_and_computes(build: Any,
                                                                          options: dict[str, Any]) -> None:
    project = build(**options)
    a = analyze(project.graph)
    assert a.ok and list(a.diagnostics) == [], [d.message for d in a.diagnostics]
    model = compile_graph(project.graph).eval()
    assert a.total_params == sum(p.numel() for p in model.parameters())
    x = _example(project)
    # with grad on: without it torch's MHA takes its fused inference kernel, which the counter cannot see
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(x)
    assert tuple(out.shape[1:]) == a.output_shapes[0] == (options.get("num_classes", 10 if build is vit_tiny else 2),)
    assert counter.get_total_flops() == 2 * a.macs * x.shape[0]


def test_vit_tiny_is_vit_tiny_for_32_pixels() -> None:
    a = analyze(vit_tiny().graph)
    assert a.nodes["conv_proj"].output_shape == (192, 8, 8)  # 4×4 patches of 3×32×32
    assert a.nodes["with_class_token"].output_shape == (65, 192)  # 64 patches and the class token
    layers = [n for n in a.order if a.nodes[n].type == "TransformerEncoderLayer"]
    assert len(layers) == 12
    assert a.total_params == 5_362_762
    # 12 layers of attention (with QKᵀ and A·V on 65 tokens) and a 768-unit MLP, the patch embedding, the head
    per_layer = 4 * 65 * 192 * 192 + 2 * 65 * 65 * 192 + 2 * 65 * 192 * 768
    assert a.macs == 12 * per_layer + 64 * 3 * 16 * 192 + 192 * 10
    project = vit_tiny()
    assert project.training["dataset"] == "shapes" and project.training["optimizer"] == "adamw"


def test_training_defaults_fit_their_data() -> None:
    for project in (vit_tiny(), transformer_classifier()):
        config = TrainConfig.from_dict(project.training)  # the settings validate
        source = open_dataset(config.dataset, task=config.task, train_size=64, val_size=16)
        assert check_fit(source, analyze(project.graph), project.graph) is None, project.name
    assert TrainConfig.from_dict(transformer_classifier().training).task == "sequence-classification"


def test_bad_options_are_refused_in_one_sentence() -> None:
    with pytest.raises(SourceError, match="patch_size must divide the image size 32, got 5"):
        vit_tiny(patch_size=5)
    with pytest.raises(SourceError, match="embed_dim 64 is not divisible by num_heads 5"):
        transformer_classifier(num_heads=5)


@pytest.mark.parametrize("name", ["vit-tiny", "transformer-classifier"])
def test_listed_and_laid_out_like_every_template(name: str) -> None:
    from tests.core import test_templates

    test_templates.test_template_is_consistent(name)  # analysis, shapes, training, rows along the data flow


@pytest.mark.parametrize(("build", "example"), [
    (transformer_classifier, lambda: torch.randint(0, 5, (2, 32))),
    (lambda: vit_tiny(depth=2), lambda: torch.randn(2, 3, 32, 32)),
])
def test_onnx_export_gives_the_compiled_outputs(build: Any, example: Any, tmp_path: Any) -> None:
    import onnxruntime as ort

    from core.export import export_onnx

    torch.manual_seed(0)
    project = build()
    model = compile_graph(project.graph).eval()
    path = tmp_path / "model.onnx"
    export_onnx(project.graph, path, model=model)
    x = example()
    session = ort.InferenceSession(str(path))
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-4, atol=1e-5)
