"""Closing the training form while it is still opening a dataset must not abort the process.

The loader thread used to be a Qt child of the form: a window closed during the few hundred
milliseconds the built-in shapes set takes to open destroyed a running QThread, and Qt aborts the
whole process for that ("QThread: Destroyed while thread is still running"). It ran in a
subprocess so that a regression fails this test instead of killing the test run. The loaders wait
at a gate until both forms are gone, so they are certainly still running then (with the loader a
child of its form, as before, this script aborts every time), and then open a small shapes set.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from PySide6.QtWidgets import QApplication
    from PySide6.QtTest import QTest
    app = QApplication([])
    import threading
    import gui.training.settings as settings
    from core.training import TrainConfig
    from gui.training.settings import TrainingSettings
    # Each loader opens the data only once both forms are gone (a gate, not a race against the
    # seconds a full shapes set takes), and then a small shapes set.
    gate, real_open = threading.Event(), settings.open_data
    def gated_open(*args, **kwargs):
        gate.wait()
        return real_open(*args, **kwargs)
    settings.open_data = gated_open
    for _ in range(2):
        form = TrainingSettings()
        form.base = TrainConfig(train_size=256, val_size=64)
        form.load_data()
        assert form._loading is not None, "the dataset should still be opening"
        form.deleteLater()
        QTest.qWait(0)  # the form is gone; its loader is not
    gate.set()
    while getattr(settings, "_RUNNING_LOADERS", None):
        QTest.qWait(20)
    QTest.qWait(2000)  # (the old code: let its orphaned threads finish or abort)
    print("closed cleanly")
""")


def test_closing_the_form_while_a_dataset_opens_is_safe() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed cleanly" in done.stdout
