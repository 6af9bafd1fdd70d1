"""The Training dock's Text tab: what a language model writes after each epoch.

The engine generates a sample after every epoch of a language model (:mod:`core.training.generate`:
the prompt, then ``generate_length`` tokens drawn at ``temperature``) and sends it in
:attr:`core.training.EpochMetrics.generated`. This tab lists those samples, the newest on top,
each under its epoch number with the prompt in bold, in a monospace font that wraps and can be
selected and copied; the line above says which settings made them. It only shows: generating is
the engine's.

:func:`token_preview` words a token dataset for the settings form: a few samples decoded to text
(in place of the image mosaic) and what the data holds.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from gui.theme import Theme, current_theme

EMPTY_TEXT = "The text the model writes after each epoch appears here once a language model trains."


class TextView(QWidget):
    """Generated samples per epoch (newest first) and the settings that made them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[tuple[int, str]] = []  # (epoch, generated text), oldest first
        self.prompt = ""
        self.settings = QLabel(EMPTY_TEXT)
        self.settings.setWordWrap(True)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.text.setReadOnly(True)  # selectable and copyable, not editable
        self.text.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(mono)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.settings)
        layout.addWidget(self.text, 1)
        self.set_theme(current_theme())

    def set_run(self, config: Any) -> None:
        """A new run of ``config`` (a :class:`core.training.TrainConfig`): forget the old samples and say
        how the new ones are made."""
        self.entries = []
        self.prompt = str(getattr(config, "prompt", "") or "")
        temperature = float(getattr(config, "temperature", 1.0))
        length = int(getattr(config, "generate_length", 0))
        start = (f"prompt “{html.escape(self.prompt)}”" if self.prompt
                 else "starting from the validation text's first tokens")
        if length:
            self.settings.setText(f"After each epoch: {length:,} tokens at temperature {temperature:g}, {start}.")
        else:
            self.settings.setText("Generated tokens is 0 in the settings: no text is written after the epochs.")
        self._render()

    def add_epoch(self, epoch: int, generated: str) -> None:
        """The sample written after ``epoch`` (nothing happens for an empty one)."""
        if generated:
            self.entries.append((epoch, generated))
            self._render()

    def clear(self) -> None:
        self.entries = []
        self.settings.setText(EMPTY_TEXT)
        self._render()

    def newest(self) -> str:
        """The latest sample as plain text (``""`` before the first)."""
        return self.entries[-1][1] if self.entries else ""

    def set_theme(self, theme: Theme) -> None:
        self.settings.setStyleSheet(f"color: {theme.text_dim};")
        self._render()

    def _render(self) -> None:
        t = current_theme()
        blocks = []
        for epoch, text in reversed(self.entries):
            # the prompt (when the sample starts with it) in bold, the model's continuation plain
            head, rest = (self.prompt, text[len(self.prompt):]) if self.prompt and text.startswith(self.prompt) \
                else ("", text)
            body = (f"<b>{_escape(head)}</b>" if head else "") + _escape(rest)
            blocks.append(f"<p style='margin: 0 0 2px 0; color: {t.text_dim};'>Epoch {epoch}</p>"
                          f"<p style='margin: 0 0 10px 0;'>{body}</p>")
        self.text.setHtml("".join(blocks))


def token_preview(data: Any, t: Theme, samples: int) -> tuple[str, str]:
    """``samples`` training samples of a token source decoded to text (a classification set's class
    before each), and its counts: train/val, tokens a sample, vocabulary or classes (both HTML)."""
    ids, labels = data.preview(samples, "train")
    names = list(data.classes)
    decode: Callable[[list[int]], str] | None = getattr(data, "decode", None)
    classes = getattr(data, "target", "") == "class"
    lines: list[str] = []
    if decode is None:
        lines.append(f"<span style='color:{t.text_dim}'>{html.escape(data.name)} cannot turn its token ids back "
                     "into text, so no samples are shown.</span>")
    else:
        for row, label in zip(ids.tolist(), labels, strict=False):
            text = html.escape(decode(row).replace("\n", " ⏎ "))
            if classes and label < len(names):
                text = f"<span style='color:{t.text_dim}'>{html.escape(names[label])}:</span> {text}"
            lines.append(text)
    preview = (f"<div style='font-family: monospace;'>{'<br>'.join(lines)}</div>" if lines
               else f"<span style='color:{t.text_dim}'>No samples to show.</span>")
    if classes:
        kinds = ", ".join(f"{n} {c:,}" for n, c in zip(names[:12], data.class_counts("train")[:12], strict=False))
        what = f"{len(names)} classes<br><span style='color:{t.text_dim}'>{html.escape(kinds)}</span>"
    else:
        what = f"vocabulary of {len(getattr(data, 'vocab', ())):,} tokens"
    report = data.report()
    note = f"<br><span style='color:{t.warning}'>{html.escape(report)}</span>" if report else ""
    counts = (f"<b>{data.train_count:,}</b> train · <b>{data.val_count:,}</b> val · "
              f"{getattr(data, 'seq_len', 0)} tokens a sample · {what}{note}")
    return preview, counts


def _escape(text: str) -> str:
    """Text as HTML that keeps its line breaks (wrapping stays the view's)."""
    return html.escape(text).replace("\n", "<br>")


__all__ = ["EMPTY_TEXT", "TextView", "token_preview"]
