"""The Training dock for sequence tasks (issue 14): the settings form's Task chooser and what follows it
(datasets, token settings, the text file picker, decoded previews), perplexity curves, the Text tab,
the tabs each task shows, and the Evaluation tab made when first opened (issue 11)."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont

from core.training import EpochMetrics, TrainConfig
from core.training.options import DATASETS
from core.training.tasks import TASKS
from gui.training import TrainingDock
from gui.training import settings as settings_module
from gui.training.plots import MetricsPlots
from gui.training.settings import TrainingSettings
from gui.training.task_views import epoch_headline
from gui.training.text_view import TextView
from tests.gui.test_training_panel import make_doc

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

LM = TASKS["language-model"]


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    yield
    gc.collect()


@pytest.fixture
def form(qtbot):
    f = TrainingSettings()
    qtbot.addWidget(f)
    f.show()
    yield f
    f.wait_for_data()
    settings_module.wait_for_loaders()


def items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def test_the_task_comes_first_and_its_choice_filters_the_datasets_and_settings(form) -> None:
    assert items(form.task) == [t.label for t in TASKS.values()]
    assert form.task.itemData(1, Qt.ItemDataRole.ToolTipRole) == LM.doc
    assert items(form.dataset) == [DATASETS[n].label for n in TASKS["classification"].datasets]
    assert form.augment.isVisible() and not form.prompt.isVisible()

    form.task.setCurrentIndex(form.task.findData("language-model"))
    assert items(form.dataset) == ["Sentences (built-in)", "Text file…"]
    assert form.dataset.itemData(0, Qt.ItemDataRole.ToolTipRole) == DATASETS["sentences"].doc
    assert not form.augment.isVisible()  # random crop and flip are for images
    for widget in (form.tokenize, form.prompt, form.task_fields["temperature"], form.task_fields["generate_length"]):
        assert widget.isVisible()
    form.tokenize.setCurrentIndex(form.tokenize.findData("word"))
    form.prompt.setText("once upon")
    form.task_fields["temperature"].setValue(0.7)
    form.task_fields["generate_length"].setValue(50)
    cfg = form.config()
    assert (cfg.task, cfg.dataset, cfg.tokenize, cfg.prompt, cfg.temperature, cfg.generate_length) == (
        "language-model", "sentences", "word", "once upon", 0.7, 50)

    # Sequence classification: its own generated sets; no prompt or temperature.
    form.task.setCurrentIndex(form.task.findData("sequence-classification"))
    assert items(form.dataset) == ["Brackets (built-in)", "Digit sums (built-in)"]
    assert not form.prompt.isVisible() and not form.task_fields["temperature"].isVisible()

    # Back to images: the image datasets (the default one) and augmentation again.
    form.task.setCurrentIndex(form.task.findData("classification"))
    assert form.dataset.currentData() == "shapes" and form.augment.isVisible()

    # The project's section fills the form the other way round.
    form.set_config(cfg)
    assert form.task.currentData() == "language-model" and form.dataset.currentData() == "sentences"
    assert form.prompt.text() == "once upon" and form.tokenize.currentData() == "word"


def test_browse_picks_a_text_file_for_text_and_a_folder_for_images(form, monkeypatch, tmp_path) -> None:
    picked: list[str] = []
    book = tmp_path / "book.txt"
    monkeypatch.setattr(settings_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (picked.append("file") or str(book), "")))
    monkeypatch.setattr(settings_module.QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: picked.append("folder") or str(tmp_path)))
    form.task.setCurrentIndex(form.task.findData("language-model"))
    form.dataset.setCurrentIndex(form.dataset.findData("text"))
    assert form.browse.isEnabled() and form.browse.toolTip() == "Choose the text file"
    form.browse.click()
    assert picked == ["file"] and form.data_arg.text() == str(book)
    assert form.config().dataset == f"text:{book}"
    form.task.setCurrentIndex(form.task.findData("classification"))
    form.dataset.setCurrentIndex(form.dataset.findData("folder"))
    form.browse.click()
    assert picked == ["file", "folder"]


def test_token_data_is_previewed_as_decoded_text(form, tmp_path) -> None:
    book = tmp_path / "book.txt"
    book.write_text("the cat sat on the mat. " * 60, encoding="utf-8")
    form.set_config(TrainConfig(task="language-model", dataset=f"text:{book}"))
    data = form.wait_for_data()
    assert data is not None and data.modality == "tokens", form.classes.text()
    assert form.text_preview.isVisible() and not form.preview.isVisible()
    shown = form.text_preview.text()
    assert "the cat" in shown or "cat sat" in shown or "on the" in shown
    assert f"vocabulary of {len(data.vocab)} tokens" in form.classes.text()
    # a classification set of token strings names each sample's class before it
    form.set_config(TrainConfig(task="sequence-classification", dataset="brackets", train_size=32, val_size=8))
    data = form.wait_for_data()
    assert data is not None and data.modality == "tokens"
    assert any(f"{name}:" in form.text_preview.text() for name in data.classes)
    # a text file that is not there: the reason in one line, and no empty image mosaic
    form.set_config(TrainConfig(task="language-model", dataset=f"text:{tmp_path / 'missing.txt'}"))
    assert form.wait_for_data() is None and "missing.txt" in form.classes.text()
    assert not form.preview.isVisible() and not form.text_preview.isVisible()
    # and images are a mosaic again
    form.set_config(TrainConfig(dataset="synthetic:3,8,8,4", train_size=16, val_size=8))
    form.wait_for_data()
    assert form.preview.isVisible() and not form.text_preview.isVisible()


def test_language_models_plot_perplexity_in_users_words(qtbot) -> None:
    plots = MetricsPlots()
    qtbot.addWidget(plots)
    plots.set_metric("perplexity")
    axis = plots.acc_plot.getPlotItem().getAxis("left")
    assert axis.labelText == "perplexity" and "Perplexity" in plots.acc_plot.getPlotItem().titleLabel.text
    m = EpochMetrics(epoch=1, epochs=2, train_loss=2.0, train_acc=0.3, val_loss=1.5, val_acc=0.4, val_top5=None,
                     lr=0.1, images_per_s=10.0, seconds=1.0, eta_s=1.0, data_wait=0.0, train_perplexity=7.39,
                     val_perplexity=4.48)
    plots.add_epoch(m)
    plots.refresh(force=True)
    xs, ys = plots.c_val_acc.getOriginalDataset()
    assert list(xs) == [1.0] and list(ys) == [pytest.approx(4.48)]
    assert epoch_headline(m, LM) == "val perplexity 4.48"
    assert epoch_headline(m, TASKS["classification"]) == "val acc 40.0%"
    # a finished run's history reads the perplexity columns
    plots.load_history([{"epoch": 1, "train_loss": 2.0, "val_loss": 1.5, "train_perplexity": 7.39,
                         "val_perplexity": 4.48, "val_acc": 0.4}])
    assert list(plots.c_val_acc.getOriginalDataset()[1]) == [pytest.approx(4.48)]
    plots.set_metric("accuracy")
    assert axis.labelText == "%" and plots.val_acc.n == 0  # the other kind's points are not drawn on these axes


def test_the_text_tab_lists_each_epochs_sample_newest_first_prompt_in_bold(qtbot) -> None:
    view = TextView()
    qtbot.addWidget(view)
    view.set_run(TrainConfig(task="language-model", dataset="sentences", prompt="the ", temperature=0.8,
                             generate_length=20))
    assert view.settings.text() == "After each epoch: 20 tokens at temperature 0.8, prompt “the ”."
    view.add_epoch(1, "the dog a <cat>")
    view.add_epoch(2, "the cat sat")
    text = view.text.toPlainText()
    assert text.index("Epoch 2") < text.index("the cat sat") < text.index("Epoch 1") < text.index("the dog a <cat>")
    assert view.text.isReadOnly() and view.text.font().styleHint() == QFont.StyleHint.Monospace
    html = view.text.toHtml()
    assert "font-weight:700" in html and "&lt;cat&gt;" in html
    view.clear()
    assert view.entries == [] and view.newest() == ""


def test_each_task_shows_its_tabs_and_evaluation_is_made_when_first_opened(qtbot, tmp_path) -> None:
    doc = make_doc()
    dock = TrainingDock(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(dock)
    dock.resize(1400, 700)  # the settings column: about 340 px
    dock.show()
    panel = dock.panel
    bar = panel.tabs.tabBar()
    assert dock._built_evaluation() is None  # not made with the panel
    shown = [bar.tabText(i) for i in range(bar.count()) if bar.isTabVisible(i)]
    assert shown == ["Curves && feature maps", "Filters", "Predictions", "Runs", "Evaluation"]
    index = next(i for i in range(bar.count()) if bar.tabText(i) == "Evaluation")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    qtbot.waitUntil(lambda: dock._built_evaluation() is not None)  # made a few turns later (its imports first)
    view = dock._built_evaluation()
    assert view is not None and panel.tabs.currentWidget() is view and view.isVisible()
    assert panel.tabs.indexOf(view) == index and dock.evaluation is view

    form = panel.settings
    form.task.setCurrentIndex(form.task.findData("language-model"))
    shown = [bar.tabText(i) for i in range(bar.count()) if bar.isTabVisible(i)]
    assert shown == ["Curves && feature maps", "Filters", "Runs", "Text", "Attention"]
    assert panel.plots.acc_plot.getPlotItem().getAxis("left").labelText == "perplexity"
    # The tiny image graph does not fit token data: the banner's long Fix label wraps in the form's
    # width instead of widening the form past its scroll area (which cut off every row).
    form.wait_for_data()
    qtbot.waitUntil(lambda: form.fix_button.isVisible(), timeout=5_000)
    scroll = form.parentWidget().parentWidget()
    assert form.width() <= scroll.viewport().width()
    button = form.fix_button
    assert button.label.startswith("Fix: ") and button.label in button.toolTip()
    assert all(button.fontMetrics().horizontalAdvance(line) <= button.width() for line in button.text().splitlines())
    form.task.setCurrentIndex(form.task.findData("sequence-classification"))
    shown = [bar.tabText(i) for i in range(bar.count()) if bar.isTabVisible(i)]
    assert shown == ["Curves && feature maps", "Filters", "Runs", "Attention", "Evaluation"]
    form.task.setCurrentIndex(form.task.findData("classification"))
    shown = [bar.tabText(i) for i in range(bar.count()) if bar.isTabVisible(i)]
    assert shown == ["Curves && feature maps", "Filters", "Predictions", "Runs", "Evaluation"]
    assert dock.confirm_close()
    doc.dispose()


def test_a_gan_chooses_its_adversarial_loss_in_the_loss_rows_place(form) -> None:
    assert form.loss.isVisible() and not form.gan_loss.isVisible()
    form.task.setCurrentIndex(form.task.findData("gan"))
    assert not form.loss.isVisible() and form.gan_loss.isVisible()
    assert items(form.gan_loss) == ["Non-saturating BCE", "Hinge"]
    assert form.form.labelForField(form.gan_loss).text() == "GAN loss"
    assert form.task_fields["n_critic"].isVisible()
    form.gan_loss.setCurrentIndex(form.gan_loss.findData("hinge"))
    form.task_fields["n_critic"].setValue(5)
    cfg = form.config()
    assert (cfg.task, cfg.gan_loss, cfg.n_critic) == ("gan", "hinge", 5)
    form.set_config(TrainConfig(task="gan", gan_loss="bce"))  # a project's section fills it back
    assert form.gan_loss.currentData() == "bce"
    form.task.setCurrentIndex(form.task.findData("segmentation"))
    assert form.loss.isVisible() and not form.gan_loss.isVisible()
    assert form.task_fields["ignore_index"].isVisible() and not form.task_fields["n_critic"].isVisible()
