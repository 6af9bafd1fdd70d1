"""An Output's name (issue 15: torchvision's segmentation models return {"out", "aux"}) is edited in the
inspector's line edit, through the undo stack, shown on the Output's card, and refused when it is no
Python identifier."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.project import load_project
from gui.canvas.items import short_params
from gui.document import Document
from gui.panels.inspector import InspectorPanel
from gui.panels.param_editors import NameEditor

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"


def _type(editor: NameEditor, text: str) -> None:
    editor.field.setText(text)
    editor.field.setModified(True)
    editor.field.editingFinished.emit()


def test_output_name_is_edited_undone_shown_and_checked(qtbot) -> None:
    doc = Document.from_project(load_project(DEMO))
    try:
        panel = InspectorPanel()
        qtbot.addWidget(panel)
        panel.set_document(doc)
        doc.set_selection(["output"])
        editor = panel.editors["name"]
        assert isinstance(editor, NameEditor) and editor.field.text() == ""
        node = doc.graph.nodes["output"]
        assert short_params(node) == ""  # no name: the card shows nothing extra

        _type(editor, "aux")
        assert doc.graph.nodes["output"].params["name"] == "aux"
        assert doc.undo_stack.undoText() == "Set output.name = 'aux'"
        assert short_params(doc.graph.nodes["output"]) == "aux"

        with qtbot.waitSignal(editor.refused) as sig:
            _type(editor, "2nd")
        assert sig.args[0].startswith("name must be a Python identifier")
        assert doc.graph.nodes["output"].params["name"] == "aux"  # the refusal changed nothing

        doc.undo_stack.undo()
        assert doc.graph.nodes["output"].params.get("name", "") == ""
        assert editor.field.text() == ""  # refreshed from the model
    finally:
        doc.dispose()
