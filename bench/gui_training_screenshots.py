"""Make the training screenshots of the README: a run in progress, the runs comparison, Grad-CAM.

Everything runs in the real editor window (offscreen), through the same code the user clicks:

- ``training_run.png`` — the LeNet-5 demo training on the built-in shapes set, grabbed in the middle
  of the run (after epoch ``--grab-epoch``): live curves and the feature maps of conv1 and conv2
  for the probe sample.
- ``runs_compare.png`` — a second run with a changed graph (conv1 with 12 channels) and a lower
  learning rate; the Runs tab compares the two (settings, graph diff), their validation curves are
  overlaid, and the changed node is selected on the canvas.
- ``gradcam.png`` — the Predictions tab on a validation sample: top-5 classes, Grad-CAM for the
  predicted class at conv2 over the image, and the image's feature maps at conv1.
- ``evaluation.png`` — the Evaluation tab of the second run: its confusion matrix, the per-class
  table and the samples of its most confused pair.

Run: ``.venv/bin/python bench/gui_training_screenshots.py [--out resources/screenshots]`` (a few
minutes on 2 CPU cores; ``--train`` sets the number of training images, ``--epochs`` the run length).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasScreenshots")

ROOT = Path(__file__).resolve().parent.parent


def settle(app: object, rounds: int = 8) -> None:
    for _ in range(rounds):
        app.processEvents()  # type: ignore[attr-defined]


def save(window: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):  # type: ignore[attr-defined]
        raise SystemExit(f"cannot write {path}")
    print(f"saved {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshots"))
    ap.add_argument("--train", type=int, default=12_000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--grab-epoch", type=int, default=5)
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--filters", action="store_true", help="also save filters.png (the Filters tab)")
    args = ap.parse_args()
    out = Path(args.out)
    width, height = (int(v) for v in args.size.split("x"))

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from core.project import load_project
    from gui import commands
    from gui.document import Document
    from gui.main_window import MainWindow
    from gui.theme import LIGHT, apply_theme

    apply_theme(LIGHT)
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training.update({"train_size": args.train, "val_size": 2000, "epochs": args.epochs,
                             "probe_interval": 0.5, "device": "cpu"})
    doc = Document.from_project(project)
    window = MainWindow(doc, restore_layout=False)
    window.resize(width, height)
    runs = Path(tempfile.mkdtemp(prefix="nc-shots-")) / "runs"
    dock = window.training
    dock.set_runs_root(runs)
    panel = dock.panel
    window.show()
    dock.show()
    dock.raise_()
    window.resizeDocks([dock], [int(height * 0.56)], Qt.Orientation.Vertical)
    settle(app)
    window.view.select_nodes(["conv1", "conv2"])
    window.view.fit_all()
    settle(app)
    panel.settings.wait_for_data()

    # 1. a run in progress
    loop = QEventLoop()
    grabbed: list[bool] = []

    def epoch_done(m: object) -> None:
        if getattr(m, "epoch", 0) >= args.grab_epoch and not grabbed:
            grabbed.append(True)
            QTimer.singleShot(900, loop.quit)  # let the next probe and a few batches land

    panel.run_finished.connect(lambda _s: loop.quit())
    if not panel.start():
        raise SystemExit(f"training did not start: {panel.problem_text}")
    panel.worker.epoch_ended.connect(epoch_done)
    loop.exec()
    panel.maps.set_zoom("conv1", 2)
    panel.maps.render()
    settle(app)
    panel.maps._hover("conv2", 3, 4, 5)  # the receptive field of one conv2 position, drawn on the sample
    settle(app)
    save(window, out / "training_run.png")
    finished = QEventLoop()
    panel.run_finished.connect(lambda _s: finished.quit())
    if panel.running:
        finished.exec()
    first = panel.run_dir

    # 2. a second run with another graph and learning rate, compared with the first
    doc.push(commands.SetParamCommand(doc, "conv1", "out_channels", 12))
    panel.settings.lr.setValue(0.02)
    settle(app)
    done = QEventLoop()
    panel.run_finished.connect(lambda _s: done.quit())
    if not panel.start():
        raise SystemExit(f"second run did not start: {panel.problem_text}")
    done.exec()
    second = panel.run_dir
    panel.runs.refresh()
    panel.tabs.setCurrentWidget(panel.runs)
    panel.runs.set_ticked([str(first), str(second)])
    panel.runs.select([str(first), str(second)])
    panel.runs.compare_ticked()
    panel.runs.b_highlight.click()
    window.view.fit_all()
    settle(app)
    save(window, out / "runs_compare.png")

    # 3. Grad-CAM on a validation sample
    panel.load_weights(second)
    panel.tabs.setCurrentWidget(panel.predict)
    data = panel.settings.data
    if data is not None:
        images, labels = data.preview(16, "val")
        panel.predict.set_samples(images, labels)
        panel.predict.sample_spin.setValue(5)
    panel.predict.cam_node.setCurrentText("conv2")
    panel.predict.map_node.setCurrentText("relu1")
    panel.predict.flush()  # its computations run on a worker thread
    settle(app)
    save(window, out / "gradcam.png")

    # 4. where the second run errs: its confusion matrix, the table and the busiest mistake's samples
    view = dock.evaluation
    if view is not None:
        panel.tabs.setCurrentWidget(view)
        view.set_run(Path(second), evaluate_missing=True)
        wait = QEventLoop()
        poll = QTimer(interval=100)
        poll.timeout.connect(lambda: wait.quit() if view.evaluation is not None and not view.busy else None)
        poll.start()
        wait.exec()
        ev = view.evaluation
        pairs = [(ev.confusion[t][p], t, p) for t in range(len(ev.classes)) for p in range(len(ev.classes)) if t != p]
        if pairs:
            _, t, p = max(pairs)
            view.show_cell(t, p)
            wait = QEventLoop()
            poll.timeout.disconnect()
            poll.timeout.connect(lambda: wait.quit() if not view.busy else None)
            wait.exec()
        poll.stop()
        settle(app)
        save(window, out / "evaluation.png")
    if args.filters:
        panel.tabs.setCurrentWidget(panel.filters)
        settle(app)
        save(window, out / "filters.png")
    panel.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
