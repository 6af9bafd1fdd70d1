"""The Runs tab on a language model's run: its best figure is the lowest validation perplexity
("ppl 3.41"), not its token accuracy, and an image run beside it still shows its accuracy (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.training.runs import RunFolder
from gui.training.runs import COLUMNS, RunsPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

GRAPH = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [16]}},
                   {"id": "output", "type": "Output"}], "edges": [{"from": "input", "to": "output"}]}


def _run(root: Path, name: str, training: dict, metrics: list[dict]) -> RunFolder:
    folder = RunFolder(root / name)
    folder.create()
    folder.write_json("config.json", {"training": training, "dataset": {"name": training["dataset"]}})
    folder.write_json("graph.json", {"graph": GRAPH})
    folder.write_metrics(metrics)
    folder.write_json("run.json", {"status": "completed"})
    return folder


def test_a_language_model_run_shows_its_best_perplexity(qtbot, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    lm = _run(root, "lm-20261206-100000", {"task": "language-model", "dataset": "sentences", "epochs": 3}, [
        {"epoch": 1, "train_loss": 2.0, "train_acc": 0.3, "val_loss": 1.6, "val_acc": 0.40,
         "train_perplexity": 7.4, "val_perplexity": 4.95},
        {"epoch": 2, "train_loss": 1.4, "train_acc": 0.5, "val_loss": 1.23, "val_acc": 0.55,
         "train_perplexity": 4.1, "val_perplexity": 3.41},
        {"epoch": 3, "train_loss": 1.3, "train_acc": 0.56, "val_loss": 1.25, "val_acc": 0.56,
         "train_perplexity": 3.7, "val_perplexity": 3.49}])
    image = _run(root, "img-20261206-100001", {"dataset": "shapes", "epochs": 1}, [
        {"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "val_loss": 2.1, "val_acc": 0.25}])
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_root(root)
    panel.show()
    column = COLUMNS.index("Best val")
    assert panel.tree.headerItem().text(column) == "Best val"
    assert panel.item_for(lm.path).text(column) == "ppl 3.41"  # the lowest, not the last
    assert panel.item_for(image.path).text(column) == "25.0%"
