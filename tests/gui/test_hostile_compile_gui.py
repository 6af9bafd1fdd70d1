"""What the user sees when the network is too big for this machine (issue 11, item 8): the Summary's
*Verify with torchinfo* and the training dock's Start answer with one sentence naming the biggest
layer, and nothing is built."""

from __future__ import annotations

import pytest

import core.compiler as compiler
import core.memory_guard as memory_guard
from core.project import new_project
from gui.document import Document
from gui.panels.summary import SummaryPanel
from gui.training import TrainingPanel
from tests.core.test_hostile_compile import GIB, huge_graph
from tests.gui.test_training_panel import make_doc

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 8 * GIB)

    def refuse(node: object) -> None:
        raise AssertionError(f"a layer was built: {node}")

    monkeypatch.setattr(compiler, "build_module", refuse)


def test_verify_with_torchinfo_shows_the_sentence(qtbot, nothing_built) -> None:  # type: ignore[no-untyped-def]
    doc = Document.from_project(new_project(huge_graph(), name="huge"))
    panel = SummaryPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_document(doc)
    panel.verify_button.click()
    qtbot.waitUntil(lambda: panel.last_report is not None, timeout=30_000)
    text = panel.verify_result.text()
    assert "The network's weights need 11.18 GiB, but this machine has 8.00 GiB free: make the layers smaller " \
           "(conv1 has 3.00 G parameters)." in text
    assert "does not compile" not in text and "Traceback" not in text and "AssertionError" not in text
    assert panel.verify_button.isEnabled()
    doc.dispose()


def test_start_refuses_a_run_that_does_not_fit(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    doc = make_doc()
    panel = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.resize(1400, 700)
    panel.show()
    panel.settings.wait_for_data()
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 1 << 10)  # 1 KiB free
    panel.b_start.click()
    assert panel.worker is None or not panel.running
    assert not panel.banner.isHidden()
    problem = panel.problem_text
    assert "Training needs about " in problem and "this machine has 1.00 KiB free" in problem
    assert "make the layers smaller or the batch smaller (fc has 1.03 k parameters)" in problem
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    panel.shutdown()
    doc.dispose()
