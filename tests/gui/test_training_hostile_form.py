"""The training form on hostile input (issue 11, items 10 and 14): an image folder with an empty class
folder and unreadable files says so in its summary, and the number fields cannot hold nan or inf."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.training import TrainConfig
from gui.training.settings import TrainingSettings
from tests.core.test_hostile_training import _image_folder


def test_the_dataset_summary_names_the_class_folders_left_out(qtbot, tmp_path: Path) -> None:
    _image_folder(tmp_path / "data")
    form = TrainingSettings()
    qtbot.addWidget(form)
    form.set_config(TrainConfig(dataset=f"folder:{tmp_path / 'data'}", workers=0))
    form.wait_for_data()
    text = form.classes.text()
    assert "<b>" in text and "2 classes" in text
    assert "left out the class folder c (no images in it)" in text and "unreadable image" in text


def test_the_number_fields_cannot_hold_nan_or_inf(qtbot) -> None:
    form = TrainingSettings()
    qtbot.addWidget(form)
    form.set_config(TrainConfig(dataset="synthetic:4,1,1,3", train_size=16, val_size=8))
    form.show()
    for word in ("nan", "inf"):
        form.lr.selectAll()
        QTest.keyClicks(form.lr, word)
        QTest.keyClick(form.lr, Qt.Key.Key_Return)
        assert math.isfinite(form.lr.value()) and math.isfinite(form.config().lr)
    form.wait_for_data()
