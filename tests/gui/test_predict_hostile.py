"""Predictions from hostile or huge image files (issue 11, item 15).

A file whose header claims a decompression bomb is refused in one sentence naming it and its pixel
count; a big photo is decoded on a worker thread, downscaled while decoding (JPEG draft, reduce),
while the window keeps answering, and then shows its predictions.
"""

from __future__ import annotations

import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin
from PySide6.QtCore import QCoreApplication, QTimer

import gui.training.predict as predict_module
from core.analysis import analyze
from core.compiler import compile_graph
from core.explain import ExplainError, load_image
from gui.training.predict import PredictionView
from tests.gui.test_training_worker import tiny_graph


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes whose IHDR claims ``width``×``height`` RGB pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b""))
            + _chunk(b"IEND", b""))


@pytest.fixture
def view(qtbot):
    w = PredictionView()
    qtbot.addWidget(w)
    graph = tiny_graph()
    model = compile_graph(graph)
    model.eval()
    w.set_model(model, analyze(graph), ["cat", "dog", "car", "cup"])
    w.messages = []
    w.message.connect(w.messages.append)
    return w


def test_a_bomb_header_is_refused_in_one_sentence_naming_the_file(view, tmp_path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    assert not view.open_image(bomb)
    assert not view.decoding and view.display is None
    assert len(view.messages) == 1
    text = view.messages[0]
    assert str(bomb) in text and "400 megapixels" in text and "scale it down" in text
    assert "\n" not in text and "Traceback" not in text and "DOS" not in text
    with pytest.raises(ExplainError, match="400 megapixels"):
        load_image(bomb, (3, 8, 8))


def test_the_bomb_limit_is_pil_s_own(view, tmp_path, monkeypatch) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (100, 100), "red").save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # so 10,000 pixels is over twice the limit
    assert not view.open_image(path)
    assert view.messages == [f"{path} is 0.01 megapixels, more than the 0.002 megapixels an image may have here; "
                             "scale it down first"]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_big_photo_is_decoded_off_the_gui_thread_at_reduced_scale(view, qtbot, tmp_path, monkeypatch,
                                                                     suffix) -> None:
    path = tmp_path / f"photo{suffix}"
    ramp = np.linspace(0, 255, 4000, dtype=np.float32).astype(np.uint8)
    Image.fromarray(np.stack([np.tile(ramp, (3000, 1))] * 3, axis=-1)).save(path)

    # The worker waits until the GUI thread's timer has fired while it decodes, so the test proves
    # the window answers during the decode without measuring any time.
    ticked = threading.Event()
    decoded_on: list[threading.Thread] = []
    real_decode = predict_module.decode_image

    def held_decode(*args, **kwargs):
        decoded_on.append(threading.current_thread())
        assert ticked.wait(10)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(predict_module, "decode_image", held_decode)
    reductions: list[object] = []
    drafts: list[object] = []
    real_reduce, real_draft = Image.Image.reduce, JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(Image.Image, "reduce", lambda im, factor, *a: reductions.append(factor)
                        or real_reduce(im, factor, *a))
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda im, mode, size: drafts.append(size)
                        or real_draft(im, mode, size))

    ticks_while_decoding: list[bool] = []

    def tick() -> None:
        ticks_while_decoding.append(view.decoding)
        ticked.set()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(0)
    assert view.open_image(path)
    assert view.decoding and view.source_label.text() == f"Reading photo{suffix} (4000×3000)…"
    qtbot.waitUntil(lambda: not view.decoding, timeout=10000)
    timer.stop()

    assert True in ticks_while_decoding  # the GUI thread ran while the image was being decoded
    assert decoded_on and decoded_on[0] is not threading.main_thread()
    assert view.messages == []
    assert tuple(view.display.shape) == (3, 8, 8) and tuple(view.tensor.shape) == (1, 3, 8, 8)
    assert view.source_label.text() == f"photo{suffix} (4000×3000 → 8×8)"
    view.flush()  # the prediction is computed on its worker thread
    assert len(view.predictions) == 4 and view.bars.predictions == view.predictions
    assert reductions and all(int(f) > 1 for f in reductions)  # type: ignore[call-overload]
    if suffix == ".jpg":
        assert drafts == [(16, 16)]  # decoded at 1/8 scale by the JPEG decoder itself


def test_a_newer_choice_wins_over_an_image_still_decoding(view, qtbot, tmp_path, monkeypatch) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (2000, 1000), "blue").save(big)
    small = tmp_path / "small.png"
    Image.new("RGB", (20, 10), "red").save(small)
    release = threading.Event()
    real_decode = predict_module.decode_image

    def held_decode(opened, path, *args, **kwargs):
        if Path(path) == big:
            assert release.wait(10)
        return real_decode(opened, path, *args, **kwargs)

    monkeypatch.setattr(predict_module, "decode_image", held_decode)
    assert view.open_image(big) and view.decoding
    assert view.open_image(small) and not view.decoding  # a small image is shown at once
    release.set()
    for worker in [t for t in threading.enumerate() if t.name == "decode image"]:
        worker.join(10)
    QCoreApplication.processEvents()  # the stale result arrives, and is dropped
    assert view.source == small and view.source_label.text() == "small.png (20×10 → 8×8)"
    assert int(view.display[0].float().mean()) > 200  # red, not the big blue one
