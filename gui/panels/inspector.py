"""The inspector: the selected node's id, parameters, inferred arguments and analysis figures.

It shows one form per node type (built in idle time before the type's first click, or on it, then
kept for the last few types: see ``InspectorPanel``), or the overview or totals, and puts the
model's *values* into the widgets at every selection and after every analysis (the document emits
``analysis_updated`` after each edit), so it never trusts its own widgets' state (STYLE.md).
Every edit goes through an undo command: ``SetParamCommand``, ``RenameNodeCommand``,
``SetFrozenCommand``, ``SetInitCommand``.
A refused edit (bad id, out-of-range value) shows its message inline and changes nothing.
"""

from __future__ import annotations

import itertools
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import shiboken6
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
from gui.panels.inspector_prebuild import FormPrebuilder
from gui.panels.param_editors import OptionalEditor, ParamEditor, make_editor
from gui.panels.problems import without_node
from gui.theme import current_theme


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


@dataclass(eq=False)
class _Form:
    """One body of the inspector and the widgets :meth:`InspectorPanel.refresh` writes into.

    A node's form depends on its *type* only (header, doc text, editors, rows); the node's values
    are put in by ``refresh``, so one form serves every node of its type. ``theme`` is the theme
    the form was built in: its header icon is drawn in that theme's colours.
    """

    body: QWidget
    type_name: str = ""  # "" for the overview and the several-node totals (kept apart: ``_summaries``)
    theme: str = ""
    title: QLabel | None = None  # the overview's and the totals' heading (the model's name, "3 nodes selected")
    editors: dict[str, ParamEditor] = field(default_factory=dict)
    inferred_labels: dict[str, QLabel] = field(default_factory=dict)
    stats: dict[str, QLabel] = field(default_factory=dict)
    id_edit: QLineEdit | None = None
    id_error: QLabel | None = None
    param_error: QLabel | None = None
    frozen_box: QCheckBox | None = None
    init_box: QComboBox | None = None
    problems_box: QVBoxLayout | None = None


# The handles a form gives the panel while it is on show (``panel.editors`` is the shown form's).
_HANDLES = tuple(f.name for f in fields(_Form) if f.name not in ("body", "type_name", "theme", "title"))


class InspectorPanel(QScrollArea):
    """Shows and edits what is selected on the canvas (``doc.selection``).

    Every body lives in one holder widget (the scroll area's widget) and only the one on show is
    visible. The forms of the last :attr:`kept_forms` node types stay there hidden: selecting a
    node of a type shown before shows its form again with the node's values instead of building
    one and destroying the old (a click to another type: ~37 → ~17 ms of GUI-thread time, canvas
    repaint included; bench/inspector_select.py). Hiding and showing a child costs far less than
    moving a body in or out of the scroll area, which re-polishes every widget in it under the
    application's style sheet (~8 ms out, ~14 ms in, for a Conv2d form). The forms of the types in
    the graph are built ahead of their first click, in idle time and into free places only
    (:attr:`prebuild`, gui.panels.inspector_prebuild), so a first click shows a kept form too.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Long values wrap instead of widening the panel past its dock.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doc: Any = None
        self.node_id: str | None = None
        self._built_for: tuple[str, str] | None = None  # (id, type) the widgets were built for
        # How many node types' forms stay built, the one on show included; 1 keeps only the one on
        # show (another type's form is built again each time, as before the cache; bench/inspector_select.py).
        self.kept_forms = 8
        self._forms: OrderedDict[str, _Form] = OrderedDict()  # by type, least recently shown first
        # The overview and the several-node totals, kept too: the rows are the same, only their values
        # change (a new body at each multi-selection held the GUI thread ~30-60 ms during a run).
        self._summaries: dict[str, _Form] = {}  # "overview" / "totals"
        self._holder = QWidget()
        self._holder_layout = QVBoxLayout(self._holder)
        self._holder_layout.setContentsMargins(0, 0, 0, 0)
        self._holder_layout.setSpacing(0)
        self.setWidget(self._holder)
        self.editors: dict[str, ParamEditor] = {}
        self.inferred_labels: dict[str, QLabel] = {}
        self.stats: dict[str, QLabel] = {}
        self.id_edit: QLineEdit | None = None
        self.id_error: QLabel | None = None
        self.param_error: QLabel | None = None
        self.frozen_box: QCheckBox | None = None
        self.init_box: QComboBox | None = None
        self.problems_box: QVBoxLayout | None = None
        self._form = self._new_form("")  # replaced by the overview once a document is set
        self._form.body.show()
        self._install(self._form)
        self._selected: list[str] = []
        self.style_warmed = False
        # The forms of the graph's types, built in idle time before their first click (issue 11).
        self.prebuild = FormPrebuilder(self)

    @property
    def body(self) -> QWidget:
        """The body on show (the holder's one visible child)."""
        return self._form.body

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        super().showEvent(event)
        if not self.style_warmed:
            self.style_warmed = True
            QTimer.singleShot(0, self._warm_style)  # after the window's first paint, before any click
        self.prebuild.schedule()  # a closed inspector builds nothing ahead: once shown, it may

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
        # A theme switch comes here: forms built in the other theme go (their icons have its colours).
        for type_name, form in list(self._forms.items()):
            if form.theme != current_theme().name and form is not self._form:
                del self._forms[type_name]
                self._destroy(form)
        for kind, form in list(self._summaries.items()):
            if form.theme != current_theme().name and form is not self._form:
                del self._summaries[kind]
                self._destroy(form)
        self._selection_changed(list(getattr(doc, "selection", []) or []))
        self.prebuild.cancel()  # a half-built form may be in the old theme
        self.prebuild.schedule()

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
        self.prebuild.postpone()  # the user is clicking: the GUI is not idle
        ids = [i for i in ids if i in self.doc.graph.nodes]
        self.node_id = ids[0] if len(ids) == 1 else None
        self._selected = ids
        if self.node_id is not None and self._shows_type(self.doc.graph.nodes[self.node_id].type):
            # Another node of the type on show: the same widgets with its values. Building them again
            # held the GUI thread ~20 ms (and as much again to lay them out) at every click.
            self._built_for = (self.node_id, self.doc.graph.nodes[self.node_id].type)
            self._clear_errors()
            self.refresh()
            return
        self._rebuild()

    def _shows_type(self, type_name: str) -> bool:
        """Whether the widgets on show were built for one node of ``type_name`` (and are not being edited)."""
        built = self._built_for
        return (built is not None and bool(built[0]) and built[1] == type_name
                and self._reusable(self._form, type_name))

    def _reusable(self, form: _Form, type_name: str) -> bool:
        """Whether ``form`` can show a node of ``type_name``: its type, this theme, and no id being typed
        (a node's id typed in the form on show stays with that node)."""
        return (form.type_name == type_name and form.theme == current_theme().name
                and not (form.id_edit is not None and form.id_edit.hasFocus()))

    def _analysis_updated(self, _analysis: Analysis) -> None:
        self.prebuild.schedule()  # after an edit (new types, maybe), once the GUI is idle again
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

    # -- the forms ----------------------------------------------------------------------------
    def _new_form(self, type_name: str) -> _Form:
        """An empty, hidden body in the holder (built hidden: no show or layout per widget added)."""
        body = QWidget(self._holder)
        body.hide()  # explicitly: adding it to the holder's layout does not show it
        lay = QVBoxLayout(body)
        lay.setContentsMargins(12, 10, 12, 12)
        lay.setSpacing(6)
        self._holder_layout.addWidget(body)
        return _Form(body, type_name, current_theme().name)

    def _node_form(self, type_name: str) -> _Form:
        """The form for nodes of ``type_name``: the kept one if it can show it, else a new one."""
        self.prebuild.finish(type_name)  # a form being prebuilt for it: the rest of it, now
        form = self._forms.pop(type_name, None)
        if form is not None and not self._reusable(form, type_name):
            if form is not self._form:
                self._destroy(form)
            form = None  # the one on show goes when the new one replaces it (_switch)
        if form is None:
            form = self._new_form(type_name)
            for _ in self._form_steps(form, type_name):
                pass
        else:
            self._clear_errors(form)
        self._forms[type_name] = form
        while len(self._forms) > max(self.kept_forms, 1):
            _, oldest = self._forms.popitem(last=False)
            if oldest is not self._form:
                self._destroy(oldest)
        return form

    def _form_steps(self, form: _Form, type_name: str) -> Iterator[None]:
        """Build ``form``'s body for nodes of ``type_name``, yielding between its sections."""
        lay = form.body.layout()
        assert isinstance(lay, QVBoxLayout)
        yield from self._build_node(form, lay, type_name)
        lay.addStretch(1)
        _align_forms(form.body)

    def prebuild_targets(self) -> list[str]:
        """The graph's types without a kept form, the most nodes first, as many as there is room for:
        prebuilt forms take only free places among the kept ones (they never push one out)."""
        room = max(self.kept_forms, 1) - len(self._forms)
        if self.doc is None or room <= 0 or not self.isVisible():
            return []
        counts = Counter(node.type for node in self.doc.graph.nodes.values())
        return [t for t, _ in counts.most_common() if t not in self._forms][:room]

    def prebuild_steps(self, type_name: str) -> Iterator[None]:
        """Build ``type_name``'s form hidden, a section per step (for :class:`FormPrebuilder`), and keep it.

        The same steps as a click's build, then the style sheet's polish and a layout and paint off
        screen, as a first show would do. The form goes in as the least recently shown: a form the user
        has seen outlives one never shown."""
        form = self._new_form(type_name)
        whole = False
        try:
            yield from self._form_steps(form, type_name)
            yield
            form.body.ensurePolished()
            yield
            self._draw_once(form.body)
            whole = True
        finally:
            # Cancelled (another document or theme): it never becomes a kept form. Closed by the collector
            # after the panel went, its widgets are gone already.
            if not whole and shiboken6.isValid(form.body):
                self._destroy(form)
        if (type_name in self._forms or len(self._forms) >= max(self.kept_forms, 1)
                or form.theme != current_theme().name):
            self._destroy(form)  # a click built it meanwhile, or filled the room
            return
        self._forms[type_name] = form
        self._forms.move_to_end(type_name, last=False)

    def _draw_once(self, body: QWidget) -> None:
        """Lay ``body`` out at the panel's width and draw it off screen, the pixmap thrown away: the
        layout and text caches its first show filled (a prebuilt form's first show: ~12 → ~8 ms)."""
        width = self.viewport().width()
        height = body.heightForWidth(width) if body.hasHeightForWidth() else body.sizeHint().height()
        if width > 0 and height > 0:  # a panel never shown has no width to lay out at
            body.resize(width, height)
            body.render(QPixmap(body.size()))

    def _switch(self, form: _Form) -> None:
        """Make ``form`` the one the panel's handles point at, and hide (or destroy) the old one.

        The handles move first: the old body's focus-out on hiding (a field's editingFinished) then
        edits nothing, as its slots only act for the form on show."""
        old = self._form
        if old is form:
            return
        self._install(form)
        old.body.hide()
        if not any(kept is old for kept in itertools.chain(self._forms.values(), self._summaries.values())):
            self._destroy(old)

    def _install(self, form: _Form) -> None:
        self._form = form
        for name in _HANDLES:
            setattr(self, name, getattr(form, name))

    def _reveal(self, form: _Form) -> None:
        if form.body.isHidden():
            form.body.show()
            self.verticalScrollBar().setValue(0)  # a body shown anew starts at its top, as a new one did

    def _destroy(self, form: _Form) -> None:
        form.body.hide()
        self._holder_layout.removeWidget(form.body)
        form.body.deleteLater()

    def _when_shown(self, form: _Form, slot: Callable[..., None]) -> Callable[..., None]:
        """``slot`` for a signal of ``form``'s widgets, acting only while ``form`` is on show."""

        def call(*args: Any) -> None:
            if self._form is form:
                slot(*args)

        return call

    def _clear_errors(self, form: _Form | None = None) -> None:
        """Hide the error labels and the id's red frame, as in a new form."""
        form = form or self._form
        for label in (form.id_error, form.param_error):
            if label is not None:
                label.hide()
                label.clear()
        edit = form.id_edit
        if edit is not None and edit.property("invalid"):
            edit.setProperty("invalid", False)
            edit.style().unpolish(edit)
            edit.style().polish(edit)

    # -- building -----------------------------------------------------------------------------
    def _rebuild(self) -> None:
        ids = getattr(self, "_selected", [])
        if self.node_id is not None:
            node = self.doc.graph.nodes[self.node_id]
            self._built_for = (self.node_id, node.type)
            form = self._node_form(node.type)
            self._switch(form)
            self.refresh()  # into the hidden body: no repaint per value
            self._reveal(form)
            return
        kind = "totals" if len(ids) > 1 else "overview"
        self._built_for = ("", "totals:" + ",".join(ids)) if len(ids) > 1 else ("", "overview")
        title = f"{len(ids)} nodes selected" if len(ids) > 1 else self.doc.project.name or "Untitled"
        summary = self._summaries.get(kind)
        if summary is not None and summary.theme != current_theme().name:  # built in another theme
            del self._summaries[kind]
            if summary is not self._form:
                self._destroy(summary)
            summary = None  # the one on show goes when the new one replaces it (_switch)
        if summary is None:
            summary = self._new_form("")
            lay = summary.body.layout()
            assert isinstance(lay, QVBoxLayout)
            if kind == "totals":
                self._build_rows(summary, lay, title, "", "Totals", self._totals_rows(ids))
            else:
                self._build_rows(summary, lay, title, "Select a node on the canvas to inspect and edit it.", "Model",
                                 self._overview_rows())
            lay.addStretch(1)
            _align_forms(summary.body)
            self._summaries[kind] = summary
            self._switch(summary)
        else:  # kept: the same rows with this selection's values
            self._switch(summary)
            if summary.title is not None and summary.title.text() != title:
                summary.title.setText(title)
            self._refresh_rows()
        self._reveal(summary)

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

    def _build_node(self, f: _Form, lay: QVBoxLayout, type_name: str) -> Iterator[None]:
        spec = get_spec(type_name)
        self._build_header(lay, spec, type_name)

        lay.addWidget(_section("Node"))
        form = _form()
        f.id_edit = QLineEdit()
        f.id_edit.setToolTip("The node id is the module path in the compiled model (e.g. layer1.0.conv1)")
        f.id_edit.editingFinished.connect(self._when_shown(f, self._rename))
        form.addRow("id", f.id_edit)
        f.id_error = _label("", "error", wrap=True)
        f.id_error.hide()
        form.addRow("", f.id_error)
        if spec is not None and spec.is_module:
            f.frozen_box = QCheckBox("frozen (not trained)")
            f.frozen_box.setToolTip("Frozen parameters keep requires_grad = False in the compiled model")
            f.frozen_box.toggled.connect(self._when_shown(f, self._set_frozen))
            form.addRow("training", f.frozen_box)
            f.init_box = QComboBox()
            f.init_box.addItems(list(INIT_CHOICES))
            f.init_box.setToolTip("Weight initialisation applied when the model is built")
            f.init_box.activated.connect(self._when_shown(f, self._set_init))
            form.addRow("init", f.init_box)
        lay.addLayout(form)
        yield

        if spec is not None and spec.params:
            lay.addWidget(_section("Parameters"))
            form = _form()
            for p in spec.params:
                label = QLabel(p.name)
                label.setToolTip(p.doc)
                if p.inferred:
                    value = _label("", "dim")
                    value.setToolTip(f"{p.doc}\nInferred from the input shape.")
                    f.inferred_labels[p.name] = value
                    form.addRow(label, value)
                    continue
                editor = make_editor(p)
                editor.edited.connect(self._when_shown(f, lambda v, name=p.name: self._set_param(name, v)))
                editor.refused.connect(self._when_shown(f, self._show_param_error))
                f.editors[p.name] = editor
                form.addRow(label, editor)
                if len(f.editors) % 3 == 0:
                    yield  # a convolution's editors take a while: three a step
            lay.addLayout(form)
            f.param_error = _label("", "error", wrap=True)
            f.param_error.hide()
            lay.addWidget(f.param_error)
            yield

        lay.addWidget(_section("Output"))
        form = _form()
        for key, title in (("shape", "shape"), ("rf", "receptive field"), ("rf_stride", "  stride (jump)"),
                           ("rf_padding", "  padding"), ("params", "parameters"), ("buffers", "buffers"),
                           ("macs", "MACs"), ("act", "activation")):
            value = _label(wrap=True)
            f.stats[key] = value
            form.addRow(title, value)
        lay.addLayout(form)
        lay.addWidget(_section("Problems"))
        f.problems_box = QVBoxLayout()
        f.problems_box.setSpacing(4)
        lay.addLayout(f.problems_box)

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

    def _build_rows(self, f: _Form, lay: QVBoxLayout, title: str, hint: str, section: str,
                    rows: list[tuple[str, str]]) -> None:
        head = f.title = _label(title, "heading")
        head.setStyleSheet("font-size: 15px;")
        lay.addWidget(head)
        if hint:
            lay.addWidget(_label(hint, "dim", wrap=True))
        lay.addWidget(_section(section))
        form = _form()
        for key, value in rows:
            lab = _label(value, wrap=key == "types")
            f.stats[key] = lab
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
            # The choices plus this node's own init if it is none of them (a form serves several nodes).
            extra = [self.init_box.itemText(i) for i in range(len(INIT_CHOICES), self.init_box.count())]
            wanted = [] if node.init in INIT_CHOICES else [node.init]
            if extra != wanted:
                self.init_box.blockSignals(True)
                while self.init_box.count() > len(INIT_CHOICES):
                    self.init_box.removeItem(self.init_box.count() - 1)
                self.init_box.addItems(wanted)
                self.init_box.blockSignals(False)
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
