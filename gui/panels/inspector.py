"""The inspector: the selected node's id, parameters, inferred arguments and analysis figures.

It rebuilds its widgets when the selection changes and refreshes their *values* from the
model after every analysis (the document emits ``analysis_updated`` after each edit), so it
never trusts its own widgets' state (STYLE.md). Every edit goes through an undo command:
``SetParamCommand``, ``RenameNodeCommand``, ``SetFrozenCommand``, ``SetInitCommand``.
A refused edit (bad id, out-of-range value) shows its message inline and changes nothing.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.analysis import Analysis, NodeResult
from core.graph import GraphError
from core.layers import get_spec
from core.layers.spec import LayerSpec, ParamError, ParamSpec, fmt_shape
from core.project import INIT_CHOICES
from core.units import count, human, human_bytes
from gui import commands
from gui.panels.icons import category_icon, severity_icon
from gui.panels.param_editors import OptionalEditor, ParamEditor, make_editor
from gui.panels.problems import without_node


def _label(text: str = "", role: str | None = None, wrap: bool = False) -> QLabel:
    lab = QLabel(text)
    if role:
        lab.setProperty("role", role)
    lab.setWordWrap(wrap)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab


def _section(title: str) -> QLabel:
    return _label(title.upper(), "section")


def _form() -> QFormLayout:
    form = _AlignedForm()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setHorizontalSpacing(12)
    form.setVerticalSpacing(6)
    return form


class _AlignedForm(QFormLayout):
    """A form whose label column can be widened to match the inspector's other forms."""


def _align_forms(root: QWidget) -> None:
    """Give every form's labels the widest label's width, so all fields start in one column."""
    forms = [lay for lay in root.findChildren(QFormLayout) if isinstance(lay, _AlignedForm)]
    labels = []
    for form in forms:
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and item.widget() is not None:
                labels.append(item.widget())
    width = max((w.sizeHint().width() for w in labels), default=0)
    for w in labels:
        w.setMinimumWidth(width)


def _fmt_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " × ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "—" if value is None else str(value)


def _rf_text(r: NodeResult) -> tuple[str, str, str]:
    rf = r.rf
    if rf is None:
        return "?", "?", "?"
    if rf.is_global:  # along a sequence: "whole sequence" or "prefix"
        return rf.short() if rf.sequence else "global (whole input)", "—", "—"

    def join(xs: tuple[float, ...]) -> str:
        return " × ".join(str(int(x)) if float(x).is_integer() else f"{x:g}" for x in xs)

    # along a sequence the size reads "9 steps"
    return rf.short() if rf.sequence else join(rf.size or ()), join(rf.stride), join(rf.padding)


def warm_style(parent: QWidget | None = None) -> QPixmap:
    """Render one hidden form of the inspector's kinds of widget into a pixmap and return it.

    The style draws a check box, a combo box's arrow or a spin box's buttons the first time from
    scratch (pixmaps, gradients, font metrics) and caches them: without this the first node click
    pays that in its first paint (90-118 ms on a loaded 2-core machine while training). Rendering
    off screen fills the same caches; the widgets are thrown away.
    """
    host = QWidget(parent)
    host.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    lay = QFormLayout(host)
    box = QCheckBox("frozen", host)
    box.setChecked(True)
    combo = QComboBox(host)
    combo.addItems(["default", "zeros"])
    spin = QSpinBox(host)
    lay.addRow(_label("a"), box)
    lay.addRow(_label("b"), QCheckBox("", host))
    lay.addRow(_label("c"), combo)
    lay.addRow(_label("d"), spin)
    lay.addRow(_label("e"), QLineEdit("x", host))
    host.adjustSize()
    pixmap = QPixmap(host.size())
    host.render(pixmap)
    host.deleteLater()
    return pixmap


class InspectorPanel(QScrollArea):
    """Shows and edits what is selected on the canvas (``doc.selection``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Long values wrap instead of widening the panel past its dock.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doc: Any = None
        self.node_id: str | None = None
        self._built_for: tuple[str, str] | None = None  # (id, type) the widgets were built for
        self.editors: dict[str, ParamEditor] = {}
        self.inferred_labels: dict[str, QLabel] = {}
        self.stats: dict[str, QLabel] = {}
        self.id_edit: QLineEdit | None = None
        self.id_error: QLabel | None = None
        self.param_error: QLabel | None = None
        self.frozen_box: QCheckBox | None = None
        self.init_box: QComboBox | None = None
        self.problems_box: QVBoxLayout | None = None
        self._body = QWidget()
        self.setWidget(self._body)
        self._selected: list[str] = []
        self.style_warmed = False

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        super().showEvent(event)
        if not self.style_warmed:
            self.style_warmed = True
            QTimer.singleShot(0, self._warm_style)  # after the window's first paint, before any click

    def _warm_style(self) -> None:
        warm_style(self)

    # -- wiring -------------------------------------------------------------------------------
    def set_document(self, doc: Any) -> None:
        if self.doc is not None:
            for sig, slot in self._connections():
                sig.disconnect(slot)
        self.doc = doc
        for sig, slot in self._connections():
            sig.connect(slot)
        self._built_for = None
        self._selection_changed(list(getattr(doc, "selection", []) or []))

    def _connections(self) -> list[tuple[Any, Any]]:
        d = self.doc
        return [(d.selection_changed, self._selection_changed), (d.analysis_updated, self._analysis_updated),
                (d.node_renamed, self._renamed)]

    def _renamed(self, old: str, new: str) -> None:
        if self.node_id == old:
            self.node_id = new
            self._built_for = (new, self._built_for[1]) if self._built_for else None
            self.refresh()

    def _selection_changed(self, ids: list[str]) -> None:
        ids = [i for i in ids if i in self.doc.graph.nodes]
        self.node_id = ids[0] if len(ids) == 1 else None
        self._selected = ids
        if self.node_id is not None and self._shows_type(self.doc.graph.nodes[self.node_id].type):
            # Another node of the type on show: the same widgets with its values. Building them again
            # held the GUI thread ~20 ms (and as much again to lay them out) at every click.
            self._built_for = (self.node_id, self.doc.graph.nodes[self.node_id].type)
            for label in (self.id_error, self.param_error):
                if label is not None:
                    label.hide()
            self.refresh()
            return
        self._rebuild()

    def _shows_type(self, type_name: str) -> bool:
        """Whether the widgets on show were built for one node of ``type_name`` (and are not being edited)."""
        built = self._built_for
        return (built is not None and bool(built[0]) and built[1] == type_name
                and not (self.id_edit is not None and self.id_edit.hasFocus()))

    def _analysis_updated(self, _analysis: Analysis) -> None:
        ids = [i for i in getattr(self, "_selected", []) if i in self.doc.graph.nodes]
        if ids != getattr(self, "_selected", []):
            self._selected = ids
            self.node_id = ids[0] if len(ids) == 1 else None
        if self.node_id:
            key = (self.node_id, self.doc.graph.nodes[self.node_id].type)
        else:
            key = ("", "totals:" + ",".join(ids)) if len(ids) > 1 else ("", "overview")
        if key != self._built_for:
            self._rebuild()
        elif self.node_id:
            self.refresh()
        else:
            self._refresh_rows()

    # -- building -----------------------------------------------------------------------------
    def _new_body(self) -> QVBoxLayout:
        self.editors, self.inferred_labels, self.stats = {}, {}, {}
        self.id_edit = self.id_error = self.param_error = None
        self.frozen_box = self.init_box = None
        self.problems_box = None
        old = self.takeWidget()
        if old is not None:
            old.deleteLater()
        self._body = QWidget()
        lay = QVBoxLayout(self._body)
        lay.setContentsMargins(12, 10, 12, 12)
        lay.setSpacing(6)
        self.setWidget(self._body)
        return lay

    def _rebuild(self) -> None:
        lay = self._new_body()
        ids = getattr(self, "_selected", [])
        if self.node_id is not None:
            node = self.doc.graph.nodes[self.node_id]
            self._built_for = (self.node_id, node.type)
            self._build_node(lay, node.type)
            self.refresh()
        elif len(ids) > 1:
            self._built_for = ("", "totals:" + ",".join(ids))
            self._build_rows(lay, f"{len(ids)} nodes selected", "", "Totals", self._totals_rows(ids))
        else:
            self._built_for = ("", "overview")
            self._build_rows(lay, self.doc.project.name or "Untitled",
                             "Select a node on the canvas to inspect and edit it.", "Model", self._overview_rows())
        lay.addStretch(1)
        _align_forms(self._body)

    def _build_header(self, lay: QVBoxLayout, spec: LayerSpec | None, type_name: str) -> None:
        row = QHBoxLayout()
        row.setSpacing(8)
        if spec is not None:
            icon = QLabel()
            icon.setPixmap(category_icon(spec.category).pixmap(24, 24))
            row.addWidget(icon)
        title = _label(type_name, "heading")
        title.setStyleSheet("font-size: 15px;")
        row.addWidget(title)
        if spec is not None and spec.category.value != type_name:
            row.addWidget(_label(spec.category.value, "dim"))
        row.addStretch(1)
        lay.addLayout(row)
        if spec is not None and spec.doc:
            doc = _label(spec.doc.strip().split("\n\n")[0], "dim", wrap=True)
            lay.addWidget(doc)

    def _build_node(self, lay: QVBoxLayout, type_name: str) -> None:
        spec = get_spec(type_name)
        self._build_header(lay, spec, type_name)

        lay.addWidget(_section("Node"))
        form = _form()
        self.id_edit = QLineEdit()
        self.id_edit.setToolTip("The node id is the module path in the compiled model (e.g. layer1.0.conv1)")
        self.id_edit.editingFinished.connect(self._rename)
        form.addRow("id", self.id_edit)
        self.id_error = _label("", "error", wrap=True)
        self.id_error.hide()
        form.addRow("", self.id_error)
        if spec is not None and spec.is_module:
            self.frozen_box = QCheckBox("frozen (not trained)")
            self.frozen_box.setToolTip("Frozen parameters keep requires_grad = False in the compiled model")
            self.frozen_box.toggled.connect(self._set_frozen)
            form.addRow("training", self.frozen_box)
            self.init_box = QComboBox()
            self.init_box.addItems(list(INIT_CHOICES))
            self.init_box.setToolTip("Weight initialisation applied when the model is built")
            self.init_box.activated.connect(self._set_init)
            form.addRow("init", self.init_box)
        lay.addLayout(form)

        if spec is not None and spec.params:
            lay.addWidget(_section("Parameters"))
            form = _form()
            for p in spec.params:
                label = QLabel(p.name)
                label.setToolTip(p.doc)
                if p.inferred:
                    value = _label("", "dim")
                    value.setToolTip(f"{p.doc}\nInferred from the input shape.")
                    self.inferred_labels[p.name] = value
                    form.addRow(label, value)
                    continue
                editor = make_editor(p)
                editor.edited.connect(lambda v, name=p.name: self._set_param(name, v))
                editor.refused.connect(self._show_param_error)
                self.editors[p.name] = editor
                form.addRow(label, editor)
            lay.addLayout(form)
            self.param_error = _label("", "error", wrap=True)
            self.param_error.hide()
            lay.addWidget(self.param_error)

        lay.addWidget(_section("Output"))
        form = _form()
        for key, title in (("shape", "shape"), ("rf", "receptive field"), ("rf_stride", "  stride (jump)"),
                           ("rf_padding", "  padding"), ("params", "parameters"), ("buffers", "buffers"),
                           ("macs", "MACs"), ("act", "activation")):
            value = _label(wrap=True)
            self.stats[key] = value
            form.addRow(title, value)
        lay.addLayout(form)
        lay.addWidget(_section("Problems"))
        self.problems_box = QVBoxLayout()
        self.problems_box.setSpacing(4)
        lay.addLayout(self.problems_box)

    def _totals_rows(self, ids: list[str]) -> list[tuple[str, str]]:
        """``(title, value)`` rows for several selected nodes."""
        a = self.doc.analysis
        results = [a.nodes[i] for i in ids if i in a.nodes]
        params = sum(r.params or 0 for r in results)
        trainable = sum(r.trainable or 0 for r in results)
        macs = sum(r.macs or 0 for r in results)
        act = sum(r.activation_bytes or 0 for r in results)
        share = 100.0 * params / a.total_params if a.total_params else 0.0
        types: dict[str, int] = {}
        for i in ids:
            t = self.doc.graph.nodes[i].type
            types[t] = types.get(t, 0) + 1
        return [("parameters", f"{count(params)}  ({human(params)})"), ("trainable", f"{count(trainable)}"),
                ("MACs", f"{count(macs)}  ({human(macs)})"), ("activations", human_bytes(act) + " per sample"),
                ("share of model", f"{share:.1f} % of parameters"),
                ("types", ", ".join(f"{n} × {t}" for t, n in sorted(types.items())))]

    def _overview_rows(self) -> list[tuple[str, str]]:
        """``(title, value)`` rows describing the whole model (nothing selected)."""
        a = self.doc.analysis
        errors = sum(1 for d in a.diagnostics if d.severity.value == "error")
        warnings = sum(1 for d in a.diagnostics if d.severity.value == "warning")
        status = "ready to train" if a.ok else f"{errors} error{'s' * (errors != 1)}"
        if warnings:
            status += f", {warnings} warning{'s' * (warnings != 1)}"
        at_least = "≥ " if a.partial else ""  # the layers at and after an error are not counted
        return [("nodes", str(len(self.doc.graph.nodes))),
                ("input", fmt_shape(a.input_shape) if a.input_shape else "—"),
                ("output", ", ".join(fmt_shape(x) for x in a.output_shapes) or "—"),
                ("parameters", f"{at_least}{count(a.total_params)}  ({human(a.total_params)})"),
                ("trainable", f"{at_least}{count(a.trainable_params)}"),
                ("MACs", f"{at_least}{count(a.macs)}  ({human(a.macs)})"),
                ("activations", human_bytes(a.activation_bytes) + " per sample"), ("status", status)]

    def _build_rows(self, lay: QVBoxLayout, title: str, hint: str, section: str,
                    rows: list[tuple[str, str]]) -> None:
        head = _label(title, "heading")
        head.setStyleSheet("font-size: 15px;")
        lay.addWidget(head)
        if hint:
            lay.addWidget(_label(hint, "dim", wrap=True))
        lay.addWidget(_section(section))
        form = _form()
        for key, value in rows:
            lab = _label(value, wrap=key == "types")
            self.stats[key] = lab
            form.addRow(key, lab)
        lay.addLayout(form)

    def _refresh_rows(self) -> None:
        """Update the overview / totals values in place (no rebuild: this runs after every edit)."""
        ids = getattr(self, "_selected", [])
        rows = self._totals_rows(ids) if len(ids) > 1 else self._overview_rows()
        for key, value in rows:
            lab = self.stats.get(key)
            if lab is not None and lab.text() != value:
                lab.setText(value)

    # -- refreshing from the model -----------------------------------------------------------
    def refresh(self) -> None:
        """Put the model's current values into the widgets (never the other way round)."""
        if self.node_id is None or self.node_id not in self.doc.graph.nodes:
            return
        node = self.doc.graph.nodes[self.node_id]
        spec = get_spec(node.type)
        if self.id_edit is not None and not self.id_edit.hasFocus():
            self.id_edit.setText(node.id)
        if self.frozen_box is not None:
            self.frozen_box.blockSignals(True)
            self.frozen_box.setChecked(node.frozen)
            self.frozen_box.blockSignals(False)
        if self.init_box is not None:
            if self.init_box.findText(node.init) < 0:
                self.init_box.addItem(node.init)
            self.init_box.blockSignals(True)
            self.init_box.setCurrentText(node.init)
            self.init_box.blockSignals(False)
        result: NodeResult | None = self.doc.analysis.nodes.get(node.id)
        if spec is not None:
            try:  # the values torch uses: unset derived defaults (a pool's stride) filled in
                in_effect = spec.in_effect(spec.resolve(node.params))
            except ParamError:
                in_effect = {}
            for name, editor in self.editors.items():
                self._show_value(editor, spec.param(name), node.params, result, in_effect)
            for name, lab in self.inferred_labels.items():
                given = node.params.get(name)
                inferred = result.args.get(name) if result is not None else None
                text = f"{_fmt_value(inferred)}  (inferred)" if inferred is not None else "? (needs a known input)"
                if given is not None and given != inferred:
                    text = f"{_fmt_value(given)}  " + (f"(set; the input gives {_fmt_value(inferred)})"
                                                        if inferred is not None else "(set explicitly)")
                lab.setText(text)
        self._show_stats(result)
        self._show_problems(node.id)

    def _show_value(self, editor: ParamEditor, p: ParamSpec, given: dict[str, Any],
                    result: NodeResult | None, in_effect: dict[str, Any]) -> None:
        value = given.get(p.name, p.default)
        if isinstance(editor, OptionalEditor):
            effective = result.args.get(p.name) if result is not None else None
            if effective is None:
                effective = in_effect.get(p.name)  # the declaration's derived default (stride → kernel_size)
            editor.set_value(value, effective)
        else:
            editor.set_value(value)

    def _show_stats(self, r: NodeResult | None) -> None:
        s = self.stats
        if not s:
            return
        if r is None or not r.known:
            for lab in s.values():
                lab.setText("?")
            s["shape"].setText("? (unknown until the problem is fixed)")
            return
        shapes = r.out_shapes or ()
        s["shape"].setText(", ".join(fmt_shape(x) for x in shapes) or "—")
        size, stride, padding = _rf_text(r)
        s["rf"].setText(size)
        s["rf_stride"].setText(stride)
        s["rf_padding"].setText(padding)
        params = r.params or 0
        frozen = params - (r.trainable or 0)
        s["params"].setText(f"{count(params)}" + (f"  ({human(params)})" if params >= 10_000 else "")
                            + (f"; {count(frozen)} frozen" if frozen else ""))
        s["buffers"].setText(f"{count(r.buffers or 0)}")
        macs = r.macs or 0
        s["macs"].setText(f"{count(macs)}" + (f"  ({human(macs)})" if macs >= 10_000 else ""))
        s["act"].setText(human_bytes(r.activation_bytes or 0) + " per sample")

    def _show_problems(self, node_id: str) -> None:
        box = self.problems_box
        if box is None:
            return
        while box.count():
            item = box.takeAt(0)
            w = item.widget()
            if w is not None:
                w.deleteLater()
        diags = self.doc.analysis.diagnostics_for(node_id)
        if not diags:
            box.addWidget(_label("none", "dim"))
            return
        for d in diags:
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            h.setSpacing(6)
            icon = QLabel()
            icon.setPixmap(severity_icon(d.severity.value).pixmap(16, 16))
            icon.setAlignment(Qt.AlignmentFlag.AlignTop)
            h.addWidget(icon)
            h.addWidget(_label(without_node(d), wrap=True), 1)
            box.addWidget(row)

    # -- edits (each one command) -------------------------------------------------------------
    def _push(self, factory: Any) -> str | None:
        """Push the command ``factory()`` builds; return the refusal message instead of raising."""
        try:
            problem = commands.try_push(self.doc, factory)
        except GraphError as exc:
            problem = str(exc)
        return problem

    def _set_param(self, name: str, value: Any) -> None:
        node_id = self.node_id
        if node_id is None:
            return
        if self.doc.graph.nodes[node_id].params.get(name, _MISSING) == value:
            return
        problem = self._push(lambda: commands.SetParamCommand(self.doc, node_id, name, value))
        self._show_param_error(problem or "")
        if problem:
            self.refresh()

    def _show_param_error(self, message: str) -> None:
        if self.param_error is not None:
            self.param_error.setText(message)
            self.param_error.setVisible(bool(message))
        if message:
            self.refresh()  # put the model's value back into the refused widget

    def _rename(self) -> None:
        if self.id_edit is None or self.node_id is None:
            return
        new = self.id_edit.text().strip()
        old = self.node_id
        if new == old:
            self._show_id_error("")
            return
        problem = self._push(lambda: commands.RenameNodeCommand(self.doc, old, new))
        self._show_id_error(problem or "")

    def _show_id_error(self, message: str) -> None:
        if self.id_error is not None:
            self.id_error.setText(message)
            self.id_error.setVisible(bool(message))
        if self.id_edit is not None:
            self.id_edit.setProperty("invalid", bool(message))
            self.id_edit.style().unpolish(self.id_edit)
            self.id_edit.style().polish(self.id_edit)

    def _set_frozen(self, on: bool) -> None:
        node_id = self.node_id
        if node_id is not None and self.doc.graph.nodes[node_id].frozen != on:
            self._push(lambda: commands.SetFrozenCommand(self.doc, node_id, on))

    def _set_init(self, index: int) -> None:
        node_id = self.node_id
        if node_id is None or self.init_box is None:
            return
        init = self.init_box.itemText(index)
        if self.doc.graph.nodes[node_id].init != init:
            self._push(lambda: commands.SetInitCommand(self.doc, node_id, init))


_MISSING = object()

__all__ = ["InspectorPanel"]
