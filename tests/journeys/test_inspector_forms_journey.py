"""Journey (issue 11): clicking between layers of different types in the editor window, switching
the theme while the inspector keeps forms hidden, and editing in a form shown again.

The inspector keeps the form of each node type it has shown; these steps check through the real
window that a kept form never shows the old theme's colours and that its edits reach the canvas."""

from __future__ import annotations

from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel

from core.layers import get_spec
from gui.panels.icons import category_icon
from gui.theme import DARK, LIGHT
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger


def _header_icon(window) -> QLabel:  # type: ignore[no-untyped-def]
    return next(lab for lab in window.inspector.body.findChildren(QLabel) if not lab.pixmap().isNull())


def _luminance(c: QColor) -> float:
    return 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()


def test_a_theme_switch_leaves_no_kept_form_in_the_old_colours_and_edits_reach_the_canvas(qtbot, isolated):
    window = open_window(qtbot)
    inspector = window.inspector
    window.view.select_nodes(["conv1"])
    settle()
    light_body = inspector.body
    window.view.select_nodes(["relu1"])  # the Conv2d form is kept, hidden
    settle()
    window.view.select_nodes(["conv2"])
    settle()
    assert inspector.body is light_body and inspector.id_edit.text() == "conv2"

    window.view.select_nodes(["relu1"])
    settle()
    trigger(window, "View", "Dark theme")
    settle(50)
    assert window.theme is DARK
    relu = get_spec("ReLU").category  # the form on show is built again too
    assert _header_icon(window).pixmap().toImage() == category_icon(relu, DARK).pixmap(24, 24).toImage()
    window.view.select_nodes(["conv2"])
    settle()
    spec = get_spec("Conv2d")
    dark_icon = category_icon(spec.category, DARK).pixmap(24, 24).toImage()
    assert inspector.body is not light_body  # built again in the dark theme
    assert _header_icon(window).pixmap().toImage() == dark_icon
    assert category_icon(spec.category, LIGHT).pixmap(24, 24).toImage() != dark_icon
    edit = inspector.id_edit
    assert edit.text() == "conv2" and _luminance(edit.palette().color(edit.backgroundRole())) < 0.3
    corner = inspector.mapTo(window, QPoint(4, inspector.height() - 4))  # the panel's background
    assert _luminance(window.grab().toImage().pixelColor(corner)) < 0.3

    # An edit in the kept form goes through one command and the canvas card follows.
    window.view.select_nodes(["pool1"])
    settle()
    window.view.select_nodes(["conv2"])
    settle()
    assert inspector.body is not light_body and inspector.editors["out_channels"].box.value() == 16
    depth = window.doc.undo_stack.count()
    inspector.editors["out_channels"].box.setValue(24)
    settle()
    assert window.doc.undo_stack.count() == depth + 1
    assert window.scene.nodes["conv2"].shape_text == "24×10×10"
    assert inspector.stats["shape"].text() == "24×10×10"
    window.act_undo.trigger()  # Edit › Undo (its text names the command)
    settle()
    assert window.scene.nodes["conv2"].shape_text == "16×10×10" and inspector.editors["out_channels"].box.value() == 16
    window.close()


def test_clicking_linear_relu_flatten_then_another_linear_shows_that_linears_values(qtbot, isolated):
    """What a user saw in a real window: fc1 → relu3 → flatten → fc2, and the Inspector reads fc2."""
    window = open_window(qtbot)
    inspector = window.inspector
    shown = {}
    for node in ("fc1", "relu3", "flatten", "fc2"):
        window.view.select_nodes([node])
        settle()
        shown[node] = inspector.body
    assert shown["fc2"] is shown["fc1"]  # the Linear form came back, not built again
    assert shown["relu3"] is not shown["fc1"] and not shown["relu3"].isVisible()
    titles = [lab.text() for lab in inspector.body.findChildren(QLabel) if lab.isVisible()]
    assert "Linear" in titles and "ReLU" not in titles and "Flatten" not in titles
    assert inspector.id_edit.text() == "fc2" and inspector.id_edit.isVisible()
    assert inspector.editors["out_features"].box.value() == 84
    assert "120" in inspector.inferred_labels["in_features"].text()
    assert inspector.stats["shape"].text() == "84"
    assert_not_clipped(inspector.id_edit)
