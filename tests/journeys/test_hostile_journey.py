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
