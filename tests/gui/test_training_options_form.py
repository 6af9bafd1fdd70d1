"""The training settings form and the summary's memory estimate are built from the option
declarations (core.training.options): the form reads as it always did, and a newly declared
optimizer is in both combos, with its settings and its memory, without another edit."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel

from core.analysis import analyze
from core.training import TrainConfig
from core.training.options import OPTIMIZERS
from core.units import human_bytes
from gui.panels.summary import SummaryPanel
from gui.training.settings import TrainingSettings
from tests.core.test_training_options import LION, _tiny_graph

SMALL = TrainConfig(dataset="synthetic:4,1,1,3", train_size=16, val_size=8)


def _labels(form: TrainingSettings) -> list[str]:
    layout = form.findChild(QFormLayout)
    assert layout is not None
    out = []
    for row in range(layout.rowCount()):
        item = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
        label = item.widget() if item is not None else None
        if isinstance(label, QLabel) and label.text() and layout.isRowVisible(row):  # the rows the task shows
            out.append(label.text())
    return out


def _items(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_the_form_reads_as_before_from_the_declarations(qtbot) -> None:
    form = TrainingSettings()
    qtbot.addWidget(form)
    form.set_config(SMALL)
    form.wait_for_data()
    assert _labels(form) == ["Task", "Dataset", "Batch size", "Epochs", "Optimizer", "Learning rate", "Momentum",
                             "Weight decay", "Schedule", "Warm-up epochs", "Loss", "Label smoothing", "Augmentation",
                             "Device", "Mixed precision", "Seed"]
    assert _items(form.dataset) == ["Shapes (built-in)", "MNIST", "Fashion-MNIST", "CIFAR-10", "Image folder…",
                                    "Synthetic tensors"]
    assert _items(form.optimizer) == ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
    assert _items(form.schedule) == ["Constant", "Step decay", "Cosine", "One-cycle", "Reduce on plateau"]
    assert _items(form.loss) == ["Cross-entropy", "BCE with logits", "MSE (L2)", "L1", "Huber", "Dice",
                                 "Cross-entropy + Dice"]
    assert _items(form.amp) == ["Off (float32)", "Auto (bf16 or fp16)", "bfloat16", "float16"]
    assert (form.lr.minimum(), form.lr.maximum(), form.lr.decimals()) == (1e-6, 10.0, 6)
    assert (form.momentum.maximum(), form.smoothing.maximum(), form.batch.maximum()) == (0.999, 0.99, 1 << 16)
    assert form.lr.toolTip() == "learning rate"
    assert form.data_arg.placeholderText() == "C,H,W,CLASSES  e.g. 3,32,32,10"
    # a field is enabled when the chosen option reads it
    assert form.momentum.isEnabled() and form.smoothing.isEnabled()
    form.optimizer.setCurrentIndex(form.optimizer.findData("adam"))
    form.loss.setCurrentIndex(form.loss.findData("mse"))
    assert not form.momentum.isEnabled() and not form.smoothing.isEnabled()
    form.lr.setValue(0.003)
    cfg = form.config()
    assert (cfg.optimizer, cfg.loss, cfg.lr, cfg.dataset) == ("adam", "mse", 0.003, "synthetic:4,1,1,3")


def test_a_new_optimizer_reaches_the_form_and_the_summary(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTIMIZERS, "lion", LION)
    analysis = analyze(_tiny_graph())
    form = TrainingSettings()
    qtbot.addWidget(form)
    form.set_config(SMALL)
    form.wait_for_data()
    form.set_analysis(analysis, _tiny_graph())
    assert _items(form.optimizer)[-1] == "Lion"
    form.optimizer.setCurrentIndex(form.optimizer.findText("Lion"))
    assert form.config().optimizer == "lion"
    assert not form.momentum.isEnabled()  # Lion does not read it
    est = analysis.memory(form.batch.value(), "lion")
    assert est.optimizer_state == est.grads
    assert f"optimizer {human_bytes(est.optimizer_state)}" in form.memory.text()

    summary = SummaryPanel()
    qtbot.addWidget(summary)
    assert _items(summary.optimizer)[-1] == "Lion"
    assert _items(summary.optimizer)[:2] == ["SGD (momentum)", "SGD (no momentum)"]
