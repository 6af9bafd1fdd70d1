"""Make the README's screenshot of a GAN learning: the Training dock's Samples tab on template:dcgan.

Everything runs in the real editor window (offscreen unless ``QT_QPA_PLATFORM`` says otherwise),
through the code the user clicks: the DCGAN template (generator and discriminator side by side)
trains on the built-in ``shapes`` with the Samples tab open, and when the run ends the window is
saved as ``gan.png``: the fixed-noise grid of the last epoch, the slider through the epochs and the
epoch's D(x), D(G(z)) and losses. ``--resume RUN_DIR`` continues a GAN run folder (one trained with
``main.py train template:dcgan --out RUN_DIR``, say) in the window for ``--epochs`` in all: the
slider then holds the folder's earlier grids too.

Run: ``.venv/bin/python bench/gui_gan_screenshot.py [--out resources/screenshots] [--epochs 6]
[--train 3200] [--batch 32]``. The README's picture: ``main.py train template:dcgan --epochs 20
--threads 1 --out RUN`` (27 minutes on one busy thread), then ``--resume RUN --epochs 21 --train 20000
--batch 64 --niceness 0`` (the 21st epoch in the window, about 80 s). On 2 busy CPU cores an epoch
of 3,200 images takes 2-4 minutes; ``--niceness 0`` trains at the window's priority (the editor
lowers its training thread's by default, which on a machine full of other work starves the run).
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshots"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train", type=int, default=3200, help="training images an epoch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resume", metavar="RUN_DIR", help="continue this GAN run folder")
    ap.add_argument("--niceness", type=int,
                    help="CPU priority steps the training thread gives up (default: the editor's)")
    ap.add_argument("--runs", metavar="DIR", help="where the run folder goes (default: a new temporary folder)")
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import gui.training.worker as worker
    import templates  # noqa: F401  (registers template:NAME, as main.py does)
    from core.sources import load_source
    from gui.document import Document
    from gui.main_window import MainWindow
    from gui.theme import LIGHT, apply_theme

    if args.niceness is not None:
        worker.TRAINING_NICENESS = args.niceness

    def settle(rounds: int = 8) -> None:
        for _ in range(rounds):
            app.processEvents()

    apply_theme(LIGHT)
    project = load_source("template:dcgan")
    project.training.update({"train_size": args.train, "batch_size": args.batch, "epochs": args.epochs,
                             "device": "cpu"})
    window = MainWindow(Document.from_project(project, collapse_blocks=True), restore_layout=False)
    window.resize(width, height)
    dock = window.training
    dock.set_runs_root(Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="netcanvas-gan-")))
    panel = dock.panel
    window.show()
    dock.show()
    dock.raise_()
    # taller than the dock opens: the grid, its slider and the figures all in view
    window.resizeDocks([dock], [int(height * 0.62)], Qt.Orientation.Vertical)
    view = panel.task_views.samples
    panel.tabs.setCurrentWidget(view)  # open before the run, as a user watching it
    settle()
    panel.settings.wait_for_data()

    loop = QEventLoop()
    panel.run_finished.connect(lambda _s: loop.quit())
    resume = Path(args.resume) if args.resume else None
    if not panel.start(resume_from=resume, epochs=args.epochs):
        raise SystemExit(f"training did not start: {panel.problem_text}")
    loop.exec()
    panel.shutdown()
    summary = panel.last_summary
    if summary is None or summary.status != "completed":
        raise SystemExit(f"the run did not complete: {summary.message if summary else 'no summary'}")
    window.view.fit_all()
    settle()
    if view.shown_image() is None:
        raise SystemExit("no samples arrived: the Samples tab is empty")
    path = Path(args.out) / "gan.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        raise SystemExit(f"cannot write {path}")
    # 256 colours (no dithering): a third of the size, the sample grid still as drawn to the eye
    from PIL import Image

    Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                             dither=Image.Dither.NONE).save(path, optimize=True)
    print(f"saved {path} · run {summary.run_dir} · {view.caption.text()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
