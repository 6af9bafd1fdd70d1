"""Inspector widgets for layer parameters, chosen by the parameter's meaning (its ``Kind``).

One factory table, :data:`EDITORS`, maps each :class:`~core.layers.spec.Kind` to an editor
class; :func:`make_editor` looks the kind up there and wraps optional parameters in a
"default" checkbox. Editors never keep the truth: the inspector calls :meth:`ParamEditor.set_value`
with the model's value after every change, and an edit only *emits* :attr:`ParamEditor.edited`
with the new JSON value (``None`` = back to the default), which the inspector turns into a
``SetParamCommand``. Values are checked with the declaration's own ``ParamSpec.validate``, so the
editor never re-implements a range rule; a refusal is emitted as :attr:`ParamEditor.refused`.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from core.layers.spec import Kind, ParamError, ParamSpec

_INT_LIMIT = 2**31 - 1


def _fmt_float(x: float) -> str:
    text = f"{x:.6g}"
    return text if any(c in text for c in ".en") else text + ".0"


class ParamEditor(QWidget):
    """Base class: shows a value, emits ``edited(value)`` or ``refused(message)``."""

    edited = Signal(object)
    refused = Signal(str)

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.setToolTip(spec.doc)

    def set_value(self, value: Any) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def current(self) -> Any:  # pragma: no cover - every subclass overrides
        """The value the user sees now (used when an optional parameter stops being default)."""
        raise NotImplementedError

    def _submit(self, value: Any) -> None:
        """Validate with the declaration, then emit ``edited`` or ``refused``."""
        try:
            checked = self.spec.validate(value)
        except ParamError as exc:
            self.refused.emit(f"{self.spec.name} {exc}")
            return
        self.edited.emit(checked)


def _spin(spec: ParamSpec) -> QSpinBox:
    box = QSpinBox()
    lo = int(spec.min) if spec.min is not None else -_INT_LIMIT
    if spec.min is not None and not spec.min_inclusive:
        lo += 1
    hi = int(spec.max) if spec.max is not None else _INT_LIMIT
    box.setRange(lo, hi)
    box.setKeyboardTracking(False)  # emit on Enter / focus-out / arrows, not on every keystroke
    box.setAccelerated(True)
    box.setMinimumWidth(64)
    return box


class IntEditor(ParamEditor):
    """A spin box limited to the declared range."""

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.box = _spin(spec)
        self._layout.addWidget(self.box)
        self.box.valueChanged.connect(lambda v: self._submit(int(v)))

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            self.box.setValue(int(value) if isinstance(value, (int, float)) else self.box.minimum())

    def current(self) -> Any:
        return int(self.box.value())


class FloatField(QLineEdit):
    """A line edit for one real number: shows ``0.5``, not a spin box's ``0.500000``."""

    def value_text(self) -> str:
        return self.text().strip()


def _parse_number(text: str, integer: bool) -> Any:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text  # validate() refuses it with the declaration's message


class FloatEditor(ParamEditor):
    """A number field checked by the declaration on Enter or focus-out."""

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.field = FloatField()
        self._layout.addWidget(self.field)
        self.field.editingFinished.connect(self._finish)

    def _finish(self) -> None:
        if self.field.isModified():
            self.field.setModified(False)
            self._submit(_parse_number(self.field.value_text(), integer=False))

    def set_value(self, value: Any) -> None:
        self.field.setText(_fmt_float(float(value)) if isinstance(value, (int, float)) else "")
        self.field.setModified(False)

    def current(self) -> Any:
        return _parse_number(self.field.value_text(), integer=False)


class BoolEditor(ParamEditor):
    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.box = QCheckBox()
        self._layout.addWidget(self.box)
        self._layout.addStretch(1)
        self.box.toggled.connect(lambda on: self._submit(bool(on)))

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            self.box.setChecked(bool(value))

    def current(self) -> Any:
        return self.box.isChecked()


class ChoiceEditor(ParamEditor):
    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.box = QComboBox()
        self.box.addItems(list(spec.choices))
        self._layout.addWidget(self.box)
        self.box.activated.connect(lambda i: self._submit(self.box.itemText(i)))

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.box):
            i = self.box.findText(str(value))
            self.box.setCurrentIndex(max(i, 0))

    def current(self) -> Any:
        return self.box.currentText()


class TupleEditor(ParamEditor):
    """``kernel_size = 3`` or ``[3, 5]``: one field per axis and a "same for all" link.

    Linked, the editor shows one value in every field and emits a single number (torch's
    ``_pair(3)``); unlinked it emits the list. The link state follows the model's value.
    """

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.integer = spec.kind is Kind.INTS
        self.fields: list[QSpinBox | FloatField] = []
        for _ in range(max(spec.arity, 1)):
            f: QSpinBox | FloatField
            if self.integer:
                f = _spin(spec)
                f.valueChanged.connect(self._changed)
            else:
                f = FloatField()
                f.editingFinished.connect(self._changed)
            f.setMinimumWidth(48)
            self.fields.append(f)
            self._layout.addWidget(f, 1)
        self.link = QToolButton()
        self.link.setCheckable(True)
        self.link.setText("=")
        self.link.setToolTip("Same value for every axis (unlink to set each axis)")
        self.link.toggled.connect(self._link_toggled)
        self._layout.addWidget(self.link)
        self._linked = True

    def _values(self) -> list[Any]:
        out: list[Any] = []
        for f in self.fields:
            if isinstance(f, QSpinBox):
                out.append(int(f.value()))
            else:
                out.append(_parse_number(f.value_text(), integer=False))
        return out

    def _changed(self, *_args: Any) -> None:
        sender = self.sender()
        values = self._values()
        if self._linked:
            # Mirror the edited field into the others, then emit one number.
            i = self.fields.index(sender) if sender in self.fields else 0
            self._show([values[i]] * len(self.fields), linked=True)
            self._submit(values[i])
        else:
            self._submit(values)

    def _link_toggled(self, on: bool) -> None:
        values = self._values()
        self._linked = on
        self._submit(values[0] if on else values)

    def _show(self, values: list[Any], linked: bool) -> None:
        for f, v in zip(self.fields, values, strict=False):
            with QSignalBlocker(f):
                if isinstance(f, QSpinBox):
                    f.setValue(int(v))
                else:
                    f.setText(_fmt_float(float(v)))
        for f in self.fields[1:]:
            f.setEnabled(not linked)
        with QSignalBlocker(self.link):
            self.link.setChecked(linked)
        self._linked = linked

    def set_value(self, value: Any) -> None:
        n = len(self.fields)
        if isinstance(value, (list, tuple)) and len(value) == n:
            self._show(list(value), linked=False)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self._show([value] * n, linked=True)
        else:
            self._show([self.fields[0].minimum() if isinstance(self.fields[0], QSpinBox) else 0.0] * n, linked=True)

    def current(self) -> Any:
        values = self._values()
        return values[0] if self._linked else values


_SHAPE_SPLIT = re.compile(r"[\s,×x*]+")


class _TextEditor(ParamEditor):
    """A value typed in a line edit, submitted once when editing finishes (and only if it changed)."""

    PLACEHOLDER = ""

    def __init__(self, spec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(spec, parent)
        self.field = QLineEdit()
        self.field.setPlaceholderText(self.PLACEHOLDER)
        self._layout.addWidget(self.field)
        self.field.editingFinished.connect(self._finish)

    def _finish(self) -> None:
        if not self.field.isModified():
            return
        self.field.setModified(False)
        self._submit(self.current())


class ShapeEditor(_TextEditor):
    """A shape as text: ``3 × 224 × 224`` (commas, ``x`` or spaces also accepted)."""

    PLACEHOLDER = "e.g. 3 × 224 × 224"

    def current(self) -> Any:
        parts = [p for p in _SHAPE_SPLIT.split(self.field.text().strip().strip("[]()")) if p]
        return [_parse_number(p, integer=True) for p in parts]

    def set_value(self, value: Any) -> None:
        if isinstance(value, (list, tuple)):
            self.field.setText(" × ".join(str(v) for v in value))
        else:
            self.field.setText("")
        self.field.setModified(False)


class NameEditor(_TextEditor):
    """A name as text (an Output's ``out``); the declaration checks it is a Python identifier or empty."""

    PLACEHOLDER = "none"

    def current(self) -> Any:
        return self.field.text().strip()

    def set_value(self, value: Any) -> None:
        self.field.setText(value if isinstance(value, str) else "")
        self.field.setModified(False)


class OptionalEditor(ParamEditor):
    """An optional parameter: a "default" checkbox (value ``None``) beside the real editor."""

    def __init__(self, inner: ParamEditor, parent: QWidget | None = None) -> None:
        super().__init__(inner.spec, parent)
        self.inner = inner
        self.default = QCheckBox("default")
        derived = inner.spec.default_from
        self.default.setToolTip(f"Leave {inner.spec.name} unset: torch uses {derived}, shown greyed" if derived
                                else f"Leave {inner.spec.name} unset: torch's default applies")
        self._layout.addWidget(inner, 1)
        self._layout.addWidget(self.default)
        inner.edited.connect(self.edited)
        inner.refused.connect(self.refused)
        self.default.toggled.connect(self._toggled)

    def _toggled(self, on: bool) -> None:
        self.inner.setEnabled(not on)
        if on:
            self.edited.emit(None)
        else:
            self._submit(self.inner.current())

    def set_value(self, value: Any, effective: Any = None) -> None:
        """``effective`` is what torch uses while the value is ``None`` (pooling stride → kernel)."""
        with QSignalBlocker(self.default):
            self.default.setChecked(value is None)
        self.inner.setEnabled(value is not None)
        shown = value if value is not None else effective
        if shown is None:
            shown = max(int(self.spec.min or 1), 1)
        self.inner.set_value(shown)

    def current(self) -> Any:
        return None if self.default.isChecked() else self.inner.current()


def _ints_editor(spec: ParamSpec) -> ParamEditor:
    return TupleEditor(spec) if spec.arity > 1 else IntEditor(spec)


def _floats_editor(spec: ParamSpec) -> ParamEditor:
    return TupleEditor(spec) if spec.arity > 1 else FloatEditor(spec)


# The one table from meaning to widget (STYLE.md: declarations never name widgets).
EDITORS: dict[Kind, Any] = {
    Kind.INT: IntEditor,
    Kind.FLOAT: FloatEditor,
    Kind.BOOL: BoolEditor,
    Kind.CHOICE: ChoiceEditor,
    Kind.INTS: _ints_editor,
    Kind.FLOATS: _floats_editor,
    Kind.SHAPE: ShapeEditor,
    Kind.NAME: NameEditor,
}


def make_editor(spec: ParamSpec) -> ParamEditor:
    """The editor for ``spec``'s kind, wrapped with a "default" checkbox when it is optional."""
    editor: ParamEditor = EDITORS[spec.kind](spec)
    if spec.optional:
        return OptionalEditor(editor)
    return editor


__all__ = ["EDITORS", "ParamEditor", "make_editor"]
