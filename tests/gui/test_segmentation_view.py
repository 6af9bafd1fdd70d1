"""The Training dock's "Segmentation" tab and what follows the segmentation and GAN tasks elsewhere.

The view is fed probe events with known masks and epoch metrics with known IoUs; what is asserted
is what the user sees: the blended overlays (class colours from the data's palette, ignored pixels
untouched), the legend's names, the IoU table's rows and numbers, the receptive-field box a click
draws (from the analysis's field of the head) with its sentence, and the diagnostic when the head
sees less than an object. Then the second plot's mean-IoU and D(x)/D(G(z)) modes, the headlines,
and the runs list's "Best val" for both tasks.
"""

from __future__ import annotations

import gc
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from core.analysis import analyze
from core.graph import Graph
from core.training import EpochMetrics, ProbeData, RunSummary
from core.training.tasks import TASKS
from gui.theme import LIGHT, apply_theme
from gui.training.plots import MetricsPlots
from gui.training.run_records import RunRecord
from gui.training.segmentation_view import (
    CLICK_HINT,
    SegmentationView,
    fmt_iou,
    head_field,
    overlay,
    rf_diagnostic,
)
from gui.training.task_views import epoch_headline, plot_metric, summary_headline

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

CLASSES = ("background", "circle", "square")
PALETTE = ((0, 0, 0), (255, 0, 0), (0, 0, 255))
SIZE = 16


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():  # type: ignore[no-untyped-def]
    yield
    gc.collect()


def seg_graph(convs: int = 2) -> Graph:
    """Input 3×16×16 → ``convs`` 3×3 convolutions (padding 1) → 1×1 conv to the classes → Output."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, SIZE, SIZE]})
    prev = "input"
    for i in range(convs):
        g.add_node("Conv2d", f"conv{i}", {"out_channels": 4, "kernel_size": 3, "padding": 1})
        g.add_edge(prev, f"conv{i}")
        prev = f"conv{i}"
    g.add_node("Conv2d", "head", {"out_channels": len(CLASSES), "kernel_size": 1})
    g.add_node("Output", "output")
    g.add_edge(prev, "head")
    g.add_edge("head", "output")
    return g


def source(typical: float | None = 8.0) -> types.SimpleNamespace:
    return types.SimpleNamespace(classes=list(CLASSES), palette=PALETTE, typical_object_px=typical, ignore_index=255)


def probe() -> ProbeData:
    """Two grey samples: truth a circle in the top-left quarter (one ignored pixel), prediction a square."""
    images = torch.full((2, 3, SIZE, SIZE), 100, dtype=torch.uint8)
    truth = torch.zeros((2, SIZE, SIZE), dtype=torch.uint8)
    truth[:, :8, :8] = 1
    truth[:, 0, 0] = 255
    pred = torch.zeros((2, SIZE, SIZE), dtype=torch.uint8)
    pred[:, 8:, 8:] = 2
    return ProbeData(epoch=1, step=5, global_step=5, images=images, labels=(1, 1),
                     probabilities=torch.full((2, 3), 1 / 3), masks_true=truth, masks_pred=pred)


def metrics(**kw) -> EpochMetrics:  # type: ignore[no-untyped-def]
    base = dict(epoch=1, epochs=2, train_loss=0.9, train_acc=0.6, val_loss=0.8, val_acc=0.7, val_top5=None, lr=0.1,
                images_per_s=100.0, seconds=1.0, eta_s=1.0, data_wait=0.0)
    base.update(kw)
    return EpochMetrics(**base)  # type: ignore[arg-type]


def pixel(view, row: int, col: int) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    c = view.image.pixelColor(col, row)
    return c.red(), c.green(), c.blue()


def test_overlay_blends_class_colours_and_leaves_ignored_pixels() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    out = overlay(image, mask, PALETTE, alpha=0.5)
    assert out[0, 0].tolist() == [50, 50, 50]  # background: black at half strength
    assert out[0, 1].tolist() == [178, 50, 50]
    assert out[1, 0].tolist() == [50, 50, 178]
    assert out[1, 1].tolist() == [100, 100, 100]  # ignored: the image as it is
    assert fmt_iou(0.7123) == "0.71" and fmt_iou(None) == "—"


def test_the_head_field_comes_from_the_analysis_and_the_diagnostic_from_the_data() -> None:
    g = seg_graph(2)
    node, rf, out_hw = head_field(analyze(g), g)  # type: ignore[misc]
    assert (node, tuple(rf.size), out_hw) == ("head", (5, 5), (SIZE, SIZE))  # two 3×3 convs and a 1×1
    text = rf_diagnostic(rf, 8.0, "The head (head)")
    assert text.startswith("The head (head) sees 5×5 px but objects are ~8 px across: it cannot see a whole object")
    assert "downsampling" in text and "dilation" in text
    assert rf_diagnostic(rf, 4.0) == "" and rf_diagnostic(rf, None) == ""
    assert head_field(analyze(Graph()), Graph()) is None


def test_the_view_shows_masks_legend_iou_and_the_field_box(qtbot) -> None:  # type: ignore[no-untyped-def]
    apply_theme(LIGHT)
    view = SegmentationView()
    qtbot.addWidget(view)
    view.resize(900, 320)
    view.show()
    g = seg_graph(2)
    view.set_data(source(8.0))
    view.set_analysis(analyze(g), g)
    assert view.legend_text().split() == ["■", "background", "■", "circle", "■", "square"]
    assert view.diagnostic.isVisible() and "sees 5×5 px but objects are ~8 px" in view.diagnostic.text()
    assert view.image_view.image is None and view.table.rowCount() == 0

    view.show_probe(probe())
    assert view.renders == 1 and view.sample_combo.isVisible() and view.sample_combo.count() == 2
    for v in view.views:
        assert (v.image.width(), v.image.height()) == (SIZE, SIZE)
    assert pixel(view.image_view, 4, 4) == (100, 100, 100)
    assert pixel(view.truth_view, 4, 4) == (185, 45, 45)  # circle red over grey
    assert pixel(view.truth_view, 0, 0) == (100, 100, 100)  # the ignored pixel
    assert pixel(view.pred_view, 12, 12) == (45, 45, 185)  # square blue
    assert pixel(view.pred_view, 4, 4) == (45, 45, 45)  # predicted background
    assert view.field.text() == CLICK_HINT

    # A click on the image: a 5×5 box around the pixel on all three pictures, and the sentence.
    target = view.image_view.target()
    scale = target.width() / SIZE
    from PySide6.QtCore import QPoint, Qt

    qtbot.mouseClick(view.image_view, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(target.left() + 6.5 * scale), int(target.top() + 7.5 * scale)))
    assert view.clicked_at == (7, 6)
    for v in view.views:
        box = v.rects[0][0]
        assert (box.top(), box.left(), box.height(), box.width()) == (5, 4, 5, 5)
    assert view.field.text() == "At pixel (7, 6) the head (head) sees 5×5 px: rows 5–9, columns 4–8 of the image."

    # An epoch: one row per class, its IoU, "—" for an absent class; the summary line above.
    view.add_epoch(metrics(val_miou=0.5, val_pixel_acc=0.75, val_iou=(0.8, 0.2, None)))
    rows = [(view.table.item(r, 0).text(), view.table.item(r, 1).text()) for r in range(view.table.rowCount())]
    assert rows == [("background", "0.80"), ("circle", "0.20"), ("square", "—")]
    assert "mean IoU <b>0.50</b>" in view.summary.text() and "pixel accuracy 75.0%" in view.summary.text()

    # A deeper head sees a whole object: no diagnostic. clear() forgets the run.
    deep = seg_graph(6)
    view.set_analysis(analyze(deep), deep)
    assert not view.diagnostic.isVisible()
    view.clear()
    assert view.image_view.image is None and view.table.rowCount() == 0 and view.clicked_at is None


def test_a_hidden_view_draws_its_probe_when_shown(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = SegmentationView()
    qtbot.addWidget(view)
    view.show_probe(probe())
    assert view.renders == 0
    view.show()
    qtbot.waitExposed(view)
    assert view.renders == 1 and view.truth_view.image is not None


def test_the_second_plot_follows_the_task(qtbot) -> None:  # type: ignore[no-untyped-def]
    plots = MetricsPlots()
    qtbot.addWidget(plots)
    assert plot_metric(TASKS["segmentation"]) == "miou" and plot_metric(TASKS["gan"]) == "gan"
    plots.set_metric("miou")
    item = plots.acc_plot.getPlotItem()
    assert "Mean IoU" in item.titleLabel.text and item.getAxis("left").labelText == "IoU"
    assert item.getViewBox().viewRange()[1] == pytest.approx([-0.02, 1.02])
    assert [plots.acc_plot.getPlotItem().legend.names[id(label)] for _s, label in item.legend.items] == [
        "val pixel acc", "val mIoU"]
    plots.add_epoch(metrics(val_miou=0.4, val_pixel_acc=0.9))
    plots.refresh(force=True)
    xs, ys = plots.c_val_acc.getOriginalDataset()
    assert list(xs) == [1.0] and list(ys) == [pytest.approx(0.4)]
    assert list(plots.c_train_acc.getOriginalDataset()[1]) == [pytest.approx(0.9)]

    plots.set_metric("gan")
    loss = plots.loss_plot.getPlotItem()
    assert plots.c_d_loss in loss.items and plots.c_g_loss in loss.items
    assert "D loss" in loss.legend.names.values() and "G loss" in loss.legend.names.values()
    plots.add_epoch(metrics(val_loss=None, val_acc=None, d_loss=1.2, g_loss=0.8, d_real=0.62, d_fake=0.31))
    plots.refresh(force=True)
    assert list(plots.c_d_loss.getOriginalDataset()[1]) == [pytest.approx(1.2)]
    assert list(plots.c_train_acc.getOriginalDataset()[1]) == [pytest.approx(0.62)]
    assert list(plots.c_val_acc.getOriginalDataset()[1]) == [pytest.approx(0.31)]
    assert "D(x)" in item.titleLabel.text

    plots.set_metric("accuracy")  # back: the GAN's loss curves leave the plot and its legend
    assert plots.c_d_loss not in loss.items and "D loss" not in loss.legend.names.values()
    assert item.getAxis("left").labelText == "%"
    assert [item.legend.names[id(label)] for _s, label in item.legend.items] == ["train", "validation"]


def test_headlines_in_users_words() -> None:
    seg, gan = TASKS["segmentation"], TASKS["gan"]
    m = metrics(val_miou=0.714, val_pixel_acc=0.9)
    assert epoch_headline(m, seg) == "val mIoU 0.71"
    summary = RunSummary("completed", 2, 2, 0.9, m, None, 1.0, best_val_miou=0.75)
    assert summary_headline(summary, seg) == "best val mIoU 0.75 (epoch 2)"
    g = metrics(val_loss=None, val_acc=None, d_loss=1.2, g_loss=0.8, d_real=0.62, d_fake=0.31)
    assert epoch_headline(g, gan) == "D(x) 0.62 · D(G(z)) 0.31"
    assert summary_headline(RunSummary("completed", 1, None, None, g, None, 1.0), gan) == "D(x) 0.62 · D(G(z)) 0.31"


def test_best_val_in_the_runs_list(tmp_path: Path) -> None:
    seg = RunRecord(tmp_path, config={"task": "segmentation"},
                    metrics=[{"epoch": 1, "val_acc": 0.9, "val_miou": 0.5},
                             {"epoch": 2, "val_acc": 0.95, "val_miou": 0.71}])
    assert seg.best_text == "mIoU 0.71"
    gan = RunRecord(tmp_path, config={"task": "gan"},
                    metrics=[{"epoch": 1, "g_loss": 0.9}, {"epoch": 2, "g_loss": 1.25}])
    assert gan.best_text == "G loss 1.250"
    assert RunRecord(tmp_path, config={"task": "gan"}).best_text == "–"


def test_a_tab_the_task_hides_does_not_make_the_dock_taller(qtbot) -> None:  # type: ignore[no-untyped-def]
    """Predictions, built from a segmentation data set's preview while hidden, made the panel taller than
    its dock: a hidden tab's viewer is left out of the tab stack's minimum height until shown again."""
    from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

    from gui.training.tabs import ViewerTabs

    def tall(_owner: object) -> QWidget:
        page = QWidget()
        inner = QWidget()
        inner.setFixedHeight(500)
        QVBoxLayout(page).addWidget(inner)
        return page

    owner = QWidget()
    qtbot.addWidget(owner)
    tabs = QTabWidget(owner)
    tabs.addTab(QWidget(), "Curves")
    viewer_tabs = ViewerTabs(owner, tabs)
    viewer_tabs.add("predict", "Predictions", tall, "predictions")
    viewer_tabs.set_viewers(["maps", "segmentation"])
    viewer_tabs.get("predict")  # built while hidden
    assert not viewer_tabs.shown("predict") and tabs.minimumSizeHint().height() < 200
    viewer_tabs.set_viewers(["maps", "predictions"])
    assert viewer_tabs.shown("predict") and tabs.minimumSizeHint().height() >= 500
    viewer_tabs.set_viewers(["maps"])
    assert tabs.minimumSizeHint().height() < 200
