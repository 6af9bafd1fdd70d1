"""The Transformer templates: ViT-Tiny (32×32, patch 4) and the Transformer-encoder text classifier.

Each analyses without a diagnostic, counts exactly the parameters of its compiled module and the
MACs FlopCounterMode sees (attention's QKᵀ and A·V included), runs forward on a batch of its data,
and names a task and dataset that fit it. The text classifier's recipe learns brackets well above
chance in a short seeded CPU run.
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


def test_classifier_reads_out_the_maximum_of_causal_prenorm_layers() -> None:
    # Why the defaults learn brackets (the mean of bidirectional post-norm layers stayed at chance):
    # each step sees its prefix, and the maximum over time asks whether any step saw a fault.
    graph = transformer_classifier().graph
    layers = [n for n in graph.nodes.values() if n.type == "TransformerEncoderLayer"]
    assert len(layers) == 2 and all(n.params["causal"] and n.params["norm_first"] for n in layers)
    assert graph.nodes["max_over_time"].type == "Amax" and graph.nodes["max_over_time"].params["dim"] == [1]
    bidirectional = transformer_classifier(causal=False).graph
    assert not any(n.params["causal"] for n in bidirectional.nodes.values() if n.type == "TransformerEncoderLayer")


@pytest.fixture
def one_thread() -> Any:
    # A model this small trains faster on one intra-op thread, and far faster on a loaded CPU
    # where two threads contend with other processes; restored afterwards for the other tests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_classifier_learns_brackets_well_above_chance(tmp_path: Any, one_thread: Any) -> None:
    # The template's own recipe (causal pre-norm layers, max over time, AdamW with a warm-up and a
    # cosine decay) at a CPU test's size: narrower, 16 brackets, 2,000 strings, seeded. Half the
    # strings are balanced, so guessing scores 0.5; a model that only counted brackets would
    # still miss the swapped pairs.
    from core.training import Callbacks
    from core.training.session import TrainingSession

    project = transformer_classifier(embed_dim=32, num_heads=2, dim_feedforward=64, seq_len=16)
    training = {**project.training, "epochs": 8, "batch_size": 32, "lr": 2e-3, "train_size": 2000,
                "val_size": 400, "device": "cpu", "seed": 0}
    failed: list[object] = []
    ended: list[Any] = []
    session = TrainingSession(project, TrainConfig.from_dict(training),
                              Callbacks(failed=failed.append, epoch_end=ended.append), run_dir=tmp_path / "run")
    assert session.run().status == "completed", failed
    accuracy = [m.val_acc for m in ended]
    assert len(accuracy) == 8 and accuracy[-1] is not None
    assert accuracy[-1] >= 0.75, accuracy
