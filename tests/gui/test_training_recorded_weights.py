"""A project that records pretrained weights (its file's ``weights`` entry) trains from them when
Start is pressed in the editor, as ``main.py train`` does; weights loaded in the editor win."""

from __future__ import annotations

import pytest
import torch

from core.compiler import compile_graph
from core.project import new_project
from gui.document import Document
from gui.training import TrainingPanel
from tests.gui.test_training_worker import tiny_graph

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def recorded(qtbot, tmp_path):
    weights = tmp_path / "pretrained.pth"
    source = compile_graph(tiny_graph(), seed=11)
    torch.save(source.state_dict(), weights)
    project = new_project(tiny_graph(), name="tiny", training=dict(
        dataset="synthetic:3,8,8,4", train_size=64, val_size=32, batch_size=32, epochs=1, device="cpu", lr=1e-9,
        momentum=0.0, probe_interval=0.0))
    project.extra["weights"] = {"source": str(weights)}
    doc = Document.from_project(project)
    panel = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.resize(1400, 700)
    panel.show()
    panel.settings.wait_for_data()
    yield panel, source, str(weights)
    panel.shutdown()
    doc.dispose()


def test_start_loads_the_weights_the_project_records(qtbot, recorded):
    panel, source, path = recorded
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        assert panel.start()
    panel.worker.wait()
    assert blocker.args[0].status == "completed"
    assert panel.worker.request.weights_spec == path
    report = panel.worker.session.weights_report
    assert report is not None and report.source == path and report.reinitialized == [] and report.missing == []
    trained = dict(panel.worker.model.named_parameters())
    for key, value in source.named_parameters():  # lr 1e-9: the run's weights are still the file's
        assert torch.allclose(trained[key].detach().cpu(), value.detach(), atol=1e-6), key


def test_weights_loaded_in_the_editor_are_carried_instead(qtbot, recorded):
    panel, _, _ = recorded
    panel.loaded_weights = (compile_graph(tiny_graph(), seed=3), tiny_graph())
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        assert panel.start()
    panel.worker.wait()
    assert panel.worker.request.weights_spec is None and panel.worker.session.weights_report is None
