"""The code panel: the generated PyTorch source of the current graph, live and read-only.

The source comes from the compiler engineer's exporter (``core.export``), regenerated ~300 ms
after the last edit (a single-shot timer restarted by every ``analysis_updated``), so typing
in the inspector never waits on code generation. While the graph has errors the panel lists
them instead: exported code must always run.
"""

from __future__ import annotations

import keyword
import re
from typing import Any

from PySide6.QtCore import QObject, QRegularExpression, QThread, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QShowEvent, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from core.analysis import Analysis
from gui.gc_pause import hold_gc, release_gc
from gui.theme import Theme, current_theme

DEBOUNCE_MS = 300


def python_source(graph: Any, name: str = "Network") -> str:
    """The exporter's Python source for ``graph`` (raises ImportError while there is none)."""
    from core import export

    return export.python_source(graph, name)


def shown(widget: QWidget) -> bool:
    """Visible *and* on screen: a dock in a background tab stays "visible" but is moved off the
    window, so panels test their visible region before doing work nobody would see."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


class _CodeThread(QThread):
    """Generates the source of a graph *copy* off the GUI thread (the exporter imports torch,
    ~1.5 s the first time, and takes ~0.2 s on ResNet-152: neither may freeze the editor).

    The panel holds the cyclic collector off while it runs (:func:`gui.gc_pause.hold_gc`): the
    exporter allocates enough to start collections, and one started here finalized the GUI's dropped
    Qt wrappers on this thread (a replaced document's scene, its timers and items: "QBasicTimer::start:
    Timers cannot be started from another thread", or a segfault in the collection).
    """

    generated = Signal(int, object)  # (request number, source text or an exception)

    def __init__(self, request: int, graph: Any, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request, self.graph, self.name = request, graph, name

    def run(self) -> None:
        try:
            result: object = python_source(self.graph, self.name)
        except Exception as exc:  # shown in the panel as the exporter's own message
            # Without its traceback: exc -> traceback -> this frame -> result -> exc is a cycle that only
            # a collection would free, and it holds this thread's wrapper (self).
            result = exc.with_traceback(None)
        self.generated.emit(self.request, result)


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, strings, numbers, comments and ``self.<name>`` in the theme's code colours."""

    def __init__(self, document: Any, theme: Theme) -> None:
        super().__init__(document)
        self.rules: list[tuple[QRegularExpression, QTextCharFormat]] = []
        self.set_theme(theme)

    def set_theme(self, t: Theme) -> None:
        def fmt(colour: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
            f = QTextCharFormat()
            f.setForeground(QColor(colour))
            if bold:
                f.setFontWeight(QFont.Weight.DemiBold)
            f.setFontItalic(italic)
            return f

        words = "|".join(re.escape(k) for k in keyword.kwlist)
        self.rules = [
            (QRegularExpression(rf"\b({words})\b"), fmt(t.code_keyword, bold=True)),
            (QRegularExpression(r"\b(nn|torch|F)\.[A-Za-z_]\w*"), fmt(t.code_name)),
            (QRegularExpression(r"\bself\b"), fmt(t.code_keyword, italic=True)),
            (QRegularExpression(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b"), fmt(t.code_number)),
            (QRegularExpression(r"\"[^\"\n]*\"|'[^'\n]*'"), fmt(t.code_string)),
            (QRegularExpression(r"#[^\n]*"), fmt(t.code_comment, italic=True)),
        ]
        self._doc_format = fmt(t.code_string, italic=True)
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        for pattern, f in self.rules:
            it = pattern.globalMatch(text)
            while it.hasNext():
                m = it.next()
                self.setFormat(m.capturedStart(), m.capturedLength(), f)
        # Triple-quoted docstrings may span lines: block state 1 = the line ends inside one.
        inside = self.previousBlockState() == 1
        pos = seg_start = 0
        while True:
            if inside:
                end = text.find('"""', pos)
                if end < 0:
                    self.setFormat(seg_start, len(text) - seg_start, self._doc_format)
                    self.setCurrentBlockState(1)
                    return
                self.setFormat(seg_start, end + 3 - seg_start, self._doc_format)
                pos, inside = end + 3, False
            else:
                start = text.find('"""', pos)
                if start < 0:
                    self.setCurrentBlockState(0)
                    return
                seg_start, pos, inside = start, start + 3, True


class CodePanel(QWidget):
    """Read-only, monospace, highlighted source with a Copy button."""

    code_ready = Signal()  # a generation finished (tests wait on it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: Any = None
        self.editor = QPlainTextEdit()
        self.editor.setReadOnly(True)
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSize(max(font.pointSize(), 10))
        self.editor.setFont(font)
        self.highlighter = PythonHighlighter(self.editor.document(), current_theme())
        self.status = QLabel()
        self.status.setProperty("role", "dim")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the generated code to the clipboard")
        self.copy_button.clicked.connect(self.copy)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.copy_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)
        lay.addLayout(top)
        lay.addWidget(self.editor, 1)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.regenerate)
        self.showing_code = False
        self.thread: _CodeThread | None = None
        self._request = 0
        self._pending = False
        self._gc_held = False  # our hold_gc() is on: from a thread's start to its result (or shutdown)
        self.stale = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.catch_up()

    def catch_up(self) -> None:
        """Regenerate if edits happened while the panel was hidden (its dock tab became current)."""
        if self.stale:
            QTimer.singleShot(0, self.regenerate)

    def shutdown(self) -> None:
        """Wait for a running generation (the window is closing)."""
        self.timer.stop()
        if self.thread is not None:
            self.thread.wait()
        self._release_gc()  # its result may never be delivered now

    def _release_gc(self) -> None:
        if self._gc_held:
            self._gc_held = False
            release_gc()

    def set_document(self, doc: Any) -> None:
        if self.doc is not None:
            self.doc.analysis_updated.disconnect(self._schedule)
        self.doc = doc
        doc.analysis_updated.connect(self._schedule)
        self.timer.start()  # not now: the window's first paint comes first

    def set_theme(self, theme: Theme) -> None:
        self.highlighter.set_theme(theme)

    def _schedule(self, _analysis: Analysis) -> None:
        self.timer.start()  # restarts: regenerate once the edits pause

    def regenerate(self) -> None:
        """Show the exported source, or the errors that prevent exporting."""
        if self.doc is None:
            return
        if not shown(self):
            self.stale = True  # a hidden tab does no work; showEvent catches up
            return
        self.stale = False
        a = self.doc.analysis
        if not a.ok:
            lines = ["# The graph has errors, so no code can be generated yet:", "#"]
            for d in a.errors:
                where = f"{d.node}: " if d.node and not d.message.startswith(d.node) else ""
                lines.append(f"#   {where}{d.message}")
            self._request += 1  # any generation still running is now stale
            self._show("\n".join(lines) + "\n", f"{len(a.errors)} error{'s' * (len(a.errors) != 1)}", code=False)
            self.code_ready.emit()
            return
        self._request += 1
        if self.thread is not None and self.thread.isRunning():
            self._pending = True  # regenerate again when the running one ends
            return
        self._pending = False
        self.status.setText("Generating…")
        self.thread = _CodeThread(self._request, self.doc.graph.copy(), self.doc.project.name or "Network", self)
        self.thread.generated.connect(self._generated)
        if not self._gc_held:
            hold_gc()  # no collection may start on the worker (see _CodeThread); released in _generated
            self._gc_held = True
        self.thread.start()

    def _generated(self, request: int, result: object) -> None:
        if self.thread is not None:
            self.thread.wait()  # it is returning from run(): this is immediate
            self.thread.deleteLater()
            self.thread = None
        self._release_gc()  # here, on the GUI thread: the next collection runs here
        if self._pending or request != self._request:
            self._pending = False
            self.regenerate()  # the graph changed meanwhile: this text is already stale
            return
        if isinstance(result, ImportError):
            self._show("# Python export is not available in this build.\n", "no exporter", code=False)
        elif isinstance(result, Exception):
            self._show(f"# The exporter could not write this graph:\n#   {type(result).__name__}: {result}\n",
                       "export failed", code=False)
        else:
            source = str(result)
            self._show(source, f"PyTorch · {source.count(chr(10))} lines · updates as you edit", code=True)
        self.code_ready.emit()

    def _show(self, text: str, status: str, *, code: bool) -> None:
        self.showing_code = code
        if self.editor.toPlainText() != text:
            bar = self.editor.verticalScrollBar()
            pos = bar.value()
            self.editor.setPlainText(text)
            bar.setValue(pos)  # keep the reader's place across regenerations
        self.status.setText(status)
        self.copy_button.setEnabled(code)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.editor.toPlainText())
        self.status.setText("Copied to the clipboard")

    def text(self) -> str:
        return self.editor.toPlainText()

    def scroll_to(self, text: str) -> bool:
        """Scroll so the first line containing ``text`` is at the top (e.g. ``class ``)."""
        block = self.editor.document().find(text).block()
        if not block.isValid():
            return False
        self.editor.verticalScrollBar().setValue(block.blockNumber())
        return True


__all__ = ["DEBOUNCE_MS", "CodePanel", "python_source", "shown"]
