"""The receptive field along a sequence, as the summary table and the inspector show it: "1 step",
"3 steps" (a Conv1d window over the steps), "prefix" (causal attention), "whole sequence"."""

from __future__ import annotations

import itertools

import pytest

from core.graph import Graph
from core.project import Project
from gui.document import Document
from gui.panels.inspector import InspectorPanel
from gui.panels.summary import COLUMNS, SummaryPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def doc(qtbot):
    g = Graph()
    layers = [("Input", "input", {"shape": [10]}),
              ("Embedding", "embed", {"num_embeddings": 20, "embedding_dim": 8}),
              ("Transpose", "to_ct", {"dim0": 1, "dim1": 2}),
              ("Conv1d", "conv", {"out_channels": 8, "kernel_size": 3, "padding": 1}),
              ("Transpose", "to_tc", {"dim0": 1, "dim1": 2}),
              ("MultiheadAttention", "causal", {"num_heads": 2, "causal": True}),
              ("MultiheadAttention", "attn", {"num_heads": 2}),
              ("Output", "out", {})]
    for type_name, nid, params in layers:
        g.add_node(type_name, nid, params)
    for (_, a, _), (_, b, _) in itertools.pairwise(layers):
        g.add_edge(a, b)
    d = Document.from_project(Project(g, name="sequence"))
    yield d
    d.dispose()


def test_summary_column_and_inspector_say_steps_prefix_and_whole_sequence(qtbot, doc):
    summary = SummaryPanel()
    qtbot.addWidget(summary)
    summary.show()  # a hidden panel does no work
    summary.set_document(doc)
    model = summary.model
    column = COLUMNS.index("Receptive field")
    shown = {model.index(row, 0).data(): model.index(row, column).data() for row in range(model.rowCount())}
    assert [shown[n] for n in ("embed", "conv", "to_tc", "causal", "attn")] == [
        "1 step", "3 steps", "3 steps", "prefix", "whole sequence"]
    inspector = InspectorPanel()
    qtbot.addWidget(inspector)
    inspector.set_document(doc)
    for node, size in (("conv", "3 steps"), ("causal", "prefix"), ("attn", "whole sequence")):
        doc.set_selection([node])
        assert inspector.stats["rf"].text() == size
