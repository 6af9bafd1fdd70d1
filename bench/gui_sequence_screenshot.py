"""Make the README's screenshot of a sequence model learning: the Training dock's Attention tab.

Everything runs in the real editor window (offscreen), through the code the user clicks: a small
character language model (Input → Embedding → causal MultiheadAttention → LSTM → Linear) trains on
the built-in ``sentences`` set; after epoch ``--grab-epoch`` the Attention tab is shown and the
window is saved as ``attention.png``: the attention of the probe sentence (tokens on the axes), the
LSTM's hidden states over time and its gradient norm per time step.

Run: ``.venv/bin/python bench/gui_sequence_screenshot.py [--out resources/screenshots]`` (about a
minute on 2 CPU cores; ``--epochs``, ``--grab-epoch`` and ``--size`` change the run and the window).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasScreenshots")

ROOT = Path(__file__).resolve().parent.parent
T = 32  # characters per sample


def build_graph(vocab: int) -> object:
    """Token ids → Embedding → causal self-attention (4 heads) → LSTM → Linear per step."""
    from core.graph import Graph

    g = Graph()
    g.add_node("Input", "input", {"shape": [T]})
    g.add_node("Embedding", "embed", {"num_embeddings": vocab, "embedding_dim": 32})
    g.add_node("MultiheadAttention", "attention", {"num_heads": 4, "causal": True})
    g.add_node("LSTM", "lstm", {"hidden_size": 96})
    g.add_node("Linear", "decoder", {"out_features": vocab})
    g.add_node("Output", "logits")
    for a, b in (("input", "embed"), ("embed", "attention"), ("attention", "lstm"), ("lstm", "decoder"),
                 ("decoder", "logits")):
        g.add_edge(a, b)
    return g


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "resources" / "screenshots"))
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--grab-epoch", type=int, default=3)
    ap.add_argument("--train", type=int, default=1024)
    ap.add_argument("--size", default="1600x1000")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from core.project import Project
    from core.training.data import open_dataset
    from gui.document import Document
    from gui.main_window import MainWindow
    from gui.theme import LIGHT, apply_theme

    def settle(rounds: int = 8) -> None:
        for _ in range(rounds):
            app.processEvents()

    apply_theme(LIGHT)
    vocab = open_dataset("sentences", task="language-model", seq_len=T, train_size=64, val_size=16).num_classes
    training = {"task": "language-model", "dataset": "sentences", "train_size": args.train, "val_size": 128,
                "epochs": args.epochs, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "device": "cpu",
                "probe_interval": 0.5, "generate_length": 60}
    doc = Document.from_project(Project(graph=build_graph(vocab), name="attention-lstm", training=training))
    window = MainWindow(doc, restore_layout=False)
    window.resize(width, height)
    dock = window.training
    panel = dock.panel
    window.show()
    dock.show()
    dock.raise_()
    window.resizeDocks([dock], [int(height * 0.56)], Qt.Orientation.Vertical)
    window.view.fit_all()
    settle()
    panel.settings.wait_for_data()

    loop = QEventLoop()
    grabbed: list[bool] = []

    def epoch_done(m: object) -> None:
        if getattr(m, "epoch", 0) >= args.grab_epoch and not grabbed:
            grabbed.append(True)
            QTimer.singleShot(1200, loop.quit)  # let the next probe land

    panel.run_finished.connect(lambda _s: loop.quit())
    if not panel.start():
        raise SystemExit(f"training did not start: {panel.problem_text}")
    panel.worker.epoch_ended.connect(epoch_done)
    loop.exec()
    view = panel.task_views.attention
    panel.tabs.setCurrentWidget(view)
    settle()
    if view.latest is None:
        raise SystemExit("no probe arrived: the Attention tab is empty")
    path = Path(args.out) / "attention.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        raise SystemExit(f"cannot write {path}")
    print(f"saved {path}")
    panel.stop()
    if panel.running:
        done = QEventLoop()
        panel.run_finished.connect(lambda _s: done.quit())
        done.exec()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
