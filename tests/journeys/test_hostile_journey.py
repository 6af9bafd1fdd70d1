"""Hostile files in the editor (issue 11): a network whose totals have thousands of digits opens,
and every figure the user sees reads in scientific form instead of ending in a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.project import load_project
from gui.document import Document
from tests.journeys.conftest import open_window, settle

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _absurd_file(tmp_path: Path) -> Path:
    """A Linear of 10²²⁰⁰ × 10²²⁰⁰ weights: 10⁴⁴⁰⁰ parameters, past Python's 4,300-digit limit."""
    big = 10**2200
    doc = {"format": "netcanvas-project", "version": 1, "name": "absurd",
           "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [big]}},
                               {"id": "fc", "type": "Linear", "params": {"out_features": big}},
                               {"id": "output", "type": "Output"}],
                     "edges": [{"from": "input", "to": "fc"}, {"from": "fc", "to": "output"}]}}
    path = tmp_path / "absurd.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_totals_beyond_4300_digits_show_in_scientific_form(qtbot, isolated, tmp_path):  # type: ignore[no-untyped-def]
    window = open_window(qtbot, doc=Document.from_project(load_project(_absurd_file(tmp_path))))
    settle()
    # was: ValueError from f"{n:,}" in the inspector and on the card, so the window never showed
    assert window.inspector.stats["parameters"].text() == "≈ 1.00e4400  (≈ 1.00e4400)"
    assert window.inspector.stats["MACs"].text() == "≈ 1.00e4400  (≈ 1.00e4400)"
    assert window.totals_label.text().startswith("≈ 1.00e4400 params")
    window.summary_dock.raise_()  # the Summary tab, as a click on it shows it
    settle()
    assert "<b>≈ 1.00e4400</b> parameters" in window.summary.totals.text()
    assert "Parameters: ≈ 1.00e4400 · MACs: ≈ 1.00e4400" in window.scene.nodes["fc"].toolTip()


@pytest.mark.parametrize(("label", "needle", "expected"), [
    ("huge integer", '"note": 1', "graph.nodes[0].note: an integer of 5000 digits"),
    ("infinite number", '"note": 1', "graph.nodes[0].note: 1e400 is too large for a number"),
    ("deep groups", None, "graph.groups[64]: group 'g64' is nested 65 levels deep"),
])
def test_file_open_of_a_hostile_file_says_what_and_where(qtbot, isolated, tmp_path, label, needle, expected):  # type: ignore[no-untyped-def]
    doc = {"format": "netcanvas-project", "version": 1, "name": "hostile",
           "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [4]}, "note": 1},
                               {"id": "output", "type": "Output"}],
                     "edges": [{"from": "input", "to": "output"}]}}
    if needle is None:
        doc["graph"]["groups"] = [{"id": f"g{i}", "label": "G", "nodes": [f"g{i + 1}"]} for i in range(999)]
        doc["graph"]["groups"].append({"id": "g999", "label": "inner", "nodes": ["input"]})
    text = json.dumps(doc)
    if needle is not None:
        text = text.replace(needle, '"note": ' + ("1" * 5000 if label == "huge integer" else "1e400"))
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8")
    window = open_window(qtbot)
    title_before = window.windowTitle()
    # File › Open's handler (after the file dialog): it catches ProjectError only, so a ValueError
    # or a later RecursionError used to reach the user as nothing at all, or a traceback
    assert not window.files.open_path(path, ask=False)
    settle()
    assert len(window.errors) == 1
    title, message = window.errors[0]
    assert title == "Cannot open the project" and expected in message and "Traceback" not in message
    assert window.windowTitle() == title_before  # the open document is untouched
