"""Story: build a character-level LSTM language model on an empty canvas, train it, watch it write.

A student draws Input[T] → Embedding → LSTM → Linear with Ctrl+K in the palette, wires the head to
the Output by dragging between ports, opens the Training dock and chooses the Language model task
(the dataset list then offers the generated sentences and text files, the preview shows decoded
sentences, not a mosaic), lets the settings' Fix set the head to the vocabulary's size, trains a
short epoch, and reads what the dock shows: the perplexity curve and its axis, the sample written
after the epoch in the Text tab, and the LSTM's hidden states in the Attention tab. The
image-only tabs are hidden for this task and come back for image classification. Saved and
reopened, the project still trains a language model.
"""

from __future__ import annotations

import gc
import json

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QComboBox, QFileDialog, QStyle, QStyleOptionComboBox

from core.graph import Edge
from core.project import load_project
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger
from tests.journeys.test_build_lenet_journey import add_by_search, drag, mouse

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

T = 16  # time steps a sample
# what the story trains on: a few hundred sentences, one short epoch (as the other journeys cut theirs)
SMALL = {"train_size": 96, "val_size": 32, "batch_size": 32, "epochs": 1, "probe_interval": 0.0, "device": "cpu",
         "generate_length": 40}


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Qt wrappers the story leaves behind are collected here, on the GUI thread (not the training thread)."""
    yield
    gc.collect()


def visible_tabs(panel) -> list[str]:
    bar = panel.tabs.tabBar()
    return [bar.tabText(i).replace("&&", "&") for i in range(bar.count()) if bar.isTabVisible(i)]


def output_shapes(window, node_id: str) -> list[str]:
    """The node's output shapes as the inspector lists them (an LSTM has three: output, h_n, c_n)."""
    window.view.select_nodes([node_id])
    settle(5)
    return window.inspector.stats["shape"].text().split(", ")


def choose(combo, text: str) -> None:
    """Pick the entry a user reads in a combo box, as a click in its list does."""
    index = combo.findText(text)
    assert index >= 0, f"no “{text}” in {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setCurrentIndex(index)
    settle()


def test_build_an_lstm_language_model_train_it_and_read_what_it_writes(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    window.training.set_runs_root(isolated / "runs")
    trigger(window, "File", "New")
    doc = window.doc
    doc.project.training = dict(SMALL)

    # Input of T token ids, then Embedding → LSTM → Linear, each added after the selected node.
    window.view.select_nodes(["input"])
    field = window.inspector.editors["shape"].field
    field.selectAll()
    QTest.keyClicks(field, str(T))
    QTest.keyClick(field, Qt.Key.Key_Return)
    assert doc.graph.nodes["input"].params["shape"] == [T]
    add_by_search(window, "Embedding")
    window.inspector.editors["num_embeddings"].box.setValue(64)
    window.inspector.editors["embedding_dim"].box.setValue(16)
    lstm = add_by_search(window, "LSTM")
    window.inspector.editors["hidden_size"].box.setValue(32)
    assert output_shapes(window, lstm) == [f"{T}×32", "1×32", "1×32"]
    window.view.select_nodes([lstm])
    head = add_by_search(window, "Linear")
    assert output_shapes(window, head)[0].startswith(f"{T}×")

    # The Output still listens to the Input: click that wire, Delete, wire the head to the Output.
    sc = window.view.canvas
    mid = sc.edges[Edge("input", "output")].path.pointAtPercent(0.5)
    window.view.centerOn(mid)
    mouse(window.view, QEvent.Type.MouseButtonPress, mid)
    mouse(window.view, QEvent.Type.MouseButtonRelease, mid, Qt.MouseButton.NoButton)
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    drag(window.view, sc.nodes[head].out_port_pos(0), sc.nodes["output"].in_port_pos(0))
    assert doc.graph.predecessors("output") == [head]
    assert doc.analysis.ok, [e.message for e in doc.analysis.errors]

    # The Training dock: the task first; a language model offers its own datasets and settings.
    trigger(window, "Train", "Show Training Panel")
    dock = window.training
    qtbot.waitUntil(lambda: dock.built is not None, timeout=30_000)
    panel = dock.panel
    form = panel.settings
    assert "Predictions" in visible_tabs(panel) and "Text" not in visible_tabs(panel)
    choose(form.task, "Language model")
    assert [form.dataset.itemText(i) for i in range(form.dataset.count())] == [
        "Sentences (built-in)", "Text file…"]
    assert form.dataset.currentText() == "Sentences (built-in)"
    for combo in (form.task, form.dataset):  # the chosen names read in full in the closed combo boxes
        settle()
        room = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, _combo_option(combo),
                                            QStyle.SubControl.SC_ComboBoxEditField, combo).width()
        assert combo.fontMetrics().horizontalAdvance(combo.currentText()) <= room, combo.currentText()
    assert form.prompt.isVisible() and form.task_fields["temperature"].isVisible() and not form.augment.isVisible()
    form.prompt.setText("the ")
    data = form.wait_for_data()
    settle()
    # The preview is decoded sentences in text (the first sample's start), not a mosaic of images.
    assert data is not None and data.modality == "tokens" and data.seq_len == T
    assert form.text_preview.isVisible() and not form.preview.isVisible()
    first = data.decode(data.preview(1, "train")[0][0].tolist())
    assert first[:8] in form.text_preview.text().replace("&#x27;", "'")
    assert f"{T} tokens a sample" in form.classes.text()
    # Tabs for this task: Text and Attention in, Predictions and Evaluation out.
    assert visible_tabs(panel) == ["Curves & feature maps", "Filters", "Runs", "Text", "Attention"]

    # The head does not fit the vocabulary yet: the settings say so, and Fix sets it (one undo step).
    qtbot.waitUntil(lambda: form.banner.isVisible(), timeout=5_000)
    assert "vocabulary" in form.banner_text.text()
    form.fix_button.click()
    settle()
    assert doc.graph.nodes[head].params["out_features"] == len(data.vocab)
    qtbot.waitUntil(lambda: not form.banner.isVisible(), timeout=5_000)

    # F5: one short epoch.
    start = next(a for a in window.training_menu.actions() if a.shortcut() == QKeySequence("F5"))
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        start.trigger()
    panel.worker.wait()
    settle()
    summary = blocker.args[0]
    assert summary.status == "completed", panel.problem_text
    ppl = summary.last.val_perplexity
    assert ppl is not None and 1.0 < ppl
    assert f"val perplexity {ppl:.2f}" in panel.progress_text.text()
    assert_not_clipped(panel.progress_text)

    # Curves: the second plot is perplexity, with a train and a validation point.
    plots = panel.plots
    assert plots.acc_plot.getPlotItem().getAxis("left").labelText == "perplexity"
    assert "Perplexity" in plots.acc_plot.getPlotItem().titleLabel.text
    xs, ys = plots.c_val_acc.getOriginalDataset()
    assert xs is not None and len(xs) == 1 and ys[0] == pytest.approx(ppl)

    # Text: the sample written after epoch 1, starting with the prompt (in bold).
    bar = panel.tabs.tabBar()
    text_view = panel.task_views.text
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(panel.tabs.indexOf(text_view)).center())
    settle()
    assert text_view.isVisible() and text_view.entries and text_view.entries[-1][0] == 1
    written = text_view.newest()
    assert written.startswith("the ") and len(written) > len("the ")
    shown = text_view.text.toPlainText()
    assert shown.startswith("Epoch 1") and written.splitlines()[0] in shown
    assert '<span style=" font-weight:700;">the </span>' in text_view.text.toHtml()  # the prompt, in bold
    assert "temperature 1" in text_view.settings.text()

    # Attention: the LSTM's hidden states (time × units) from the probe.
    attention = panel.task_views.attention
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(panel.tabs.indexOf(attention)).center())
    settle()
    assert attention.isVisible() and attention.latest is not None
    assert lstm in attention.latest.activations
    assert attention.hidden_combo.currentText() and attention.hidden_map.isVisible()

    # Start wrote the task into the project as one undo step, like the other settings: undo and redo it.
    assert doc.project.training["task"] == "language-model" and doc.undo_stack.undoText() == "Set training settings"
    window.view.setFocus()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle()
    assert "task" not in doc.project.training and form.task.currentText() == "Image classification"
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    settle()
    assert form.task.currentText() == "Language model" and form.prompt.text() == "the "

    # Back to image classification: its tabs return, the language model's go.
    choose(form.task, "Image classification")
    assert visible_tabs(panel) == ["Curves & feature maps", "Filters", "Predictions", "Runs", "Evaluation"]
    assert plots.acc_plot.getPlotItem().getAxis("left").labelText == "%"
    choose(form.task, "Language model")

    # Saved and reopened: the project still trains a language model, from the same form.
    target = isolated / "lstm_lm.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    trigger(window, "File", "Save As")
    assert json.loads(target.read_text())["training"]["task"] == "language-model"
    window.close()
    again = open_window(qtbot)
    again.files._open_recent(target)
    settle()
    assert load_project(target).training["task"] == "language-model"
    trigger(again, "Train", "Show Training Panel")
    qtbot.waitUntil(lambda: again.training.built is not None, timeout=30_000)
    reopened = again.training.panel
    assert reopened.settings.task.currentText() == "Language model"
    assert "Text" in visible_tabs(reopened) and "Predictions" not in visible_tabs(reopened)
    again.close()


def _combo_option(combo: QComboBox) -> QStyleOptionComboBox:
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    return option
