"""Journey (issue 11): the window opens LeNet-5, sits idle a moment, and the user clicks one layer of
each type: every first click shows a form built beforehand in idle time (counted, not timed), with
the node's values; after a switch to the dark theme the forms are built again, in dark colours.

The window's first click on a type built its form on the GUI thread (45-60 ms, over DESIGN §10's
50 ms); the inspector now builds the forms of the graph's types while nothing happens."""

from __future__ import annotations

from collections import Counter

from PySide6.QtWidgets import QLabel

from core.layers import get_spec
from gui.panels.icons import category_icon
from gui.theme import DARK
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger

WAIT_MS = 20_000  # ~30 turns after 0.4 s of quiet, on a loaded machine


def _header(window) -> tuple[str, QLabel]:  # type: ignore[no-untyped-def]
    """The visible form's title and its icon."""
    labels = [lab for lab in window.inspector.body.findChildren(QLabel) if lab.isVisible()]
    title = next(lab for lab in labels if lab.property("role") == "heading")
    return title.text(), next(lab for lab in labels if not lab.pixmap().isNull())


def test_every_first_click_after_an_idle_moment_shows_a_form_built_beforehand(qtbot, isolated):
    window = open_window(qtbot)
    inspector = window.inspector
    types = [t for t, _ in Counter(n.type for n in window.doc.graph.nodes.values()).most_common()]
    builds: list[str] = []
    build = inspector._build_node
    inspector._build_node = lambda f, lay, t: (builds.append(t), build(f, lay, t))[1]  # type: ignore[method-assign]
    qtbot.waitUntil(lambda: set(inspector.prebuild.built) >= set(types) and not inspector.prebuild.pending,
                    timeout=WAIT_MS)
    assert not inspector.prebuild.blocked()  # no run: the Training dock is not even made
    done = list(builds)  # the forms not built before the count started, in idle time

    for node in ("conv1", "relu1", "pool1", "flatten", "fc1", "fc2"):
        window.view.select_nodes([node])
        settle()
        node_type = window.doc.graph.nodes[node].type
        assert _header(window)[0] == node_type and inspector.id_edit.text() == node
        assert_not_clipped(inspector.id_edit)
    assert builds == done  # no click built a form
    assert inspector.editors["out_features"].box.value() == 84 and inspector.stats["shape"].text() == "84"

    trigger(window, "View", "Dark theme")
    settle(50)
    assert window.theme is DARK and builds[len(done):] == ["Linear"]  # the form on show, at once
    qtbot.waitUntil(lambda: all(f.theme == DARK.name for f in inspector._forms.values())
                    and len(inspector._forms) == len(types) and not inspector.prebuild.pending, timeout=WAIT_MS)
    after_switch = len(builds)
    window.view.select_nodes(["conv2"])
    settle()
    spec = get_spec("Conv2d")
    assert _header(window)[0] == "Conv2d" and inspector.editors["out_channels"].box.value() == 16
    assert _header(window)[1].pixmap().toImage() == category_icon(spec.category, DARK).pixmap(24, 24).toImage()
    assert len(builds) == after_switch  # built in the dark theme before the click
    window.close()
