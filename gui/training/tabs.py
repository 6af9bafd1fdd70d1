"""The Training dock's viewer tabs: each built the first time it is needed, each shown for the tasks it serves.

A tab starts as an empty placeholder with its title; its viewer is made when the tab is first
opened or first asked for (:meth:`ViewerTabs.get`), so opening the dock does not pay for viewers
nobody looks at (the Evaluation tab's pyqtgraph plots held the first open 0.1–0.2 s). A tab may
name the viewer it is (``maps``, ``predictions``, ``evaluation``, ``text``, ``attention``: the
words of :attr:`core.training.tasks.TaskOption.viewers`); :meth:`ViewerTabs.set_viewers` hides
the tabs the chosen task does not use and shows them again when it changes back. Tabs keep their
indices whether shown or not, so code that remembers a tab's index stays right.

A tab may also name the modules its viewer needs (``warm``): opened by the user, it imports them one
per event-loop turn (a :class:`gui.training.staged.Slicer`) and makes its viewer in the turn after,
so that no turn holds the window for all of it (issue 11: the Evaluation tab's first open held it
52 ms, most of it importing its modules). Asked for in code (:meth:`ViewerTabs.get`), a viewer is
made at once, whatever is left of that included.

Qt sizes a tab's page only when it is shown: a page whose tab stack grew or shrank meanwhile (the
Predictions tab's first open makes the panel taller) was laid out again at its next switch, and its
plots drew every axis anew (~30 ms of that switch's hold). When the stack's size settles, the hidden
pages that hold graphics views are given it and laid out, and each view is painted once into its
items' caches, a view per event-loop turn (:meth:`ViewerTabs._fit_hidden_pages`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Generic, TypeVar, cast

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QTimer
from PySide6.QtGui import QPixmap, QRegion
from PySide6.QtWidgets import QGraphicsView, QSizePolicy, QStackedWidget, QTabWidget, QWidget

from gui.training.staged import Slicer, Steps

V = TypeVar("V", bound=QWidget)
FIT_AFTER_MS = 150  # after the tab stack's last resize (a dragged splitter or window resizes it many times)


@dataclass
class _Tab:
    title: str
    make: Callable[[Any], QWidget]  # owner → its viewer (a plain function: it holds nothing of the owner)
    viewer: str | None  # the task viewer it is; None: every task
    places_itself: bool  # make() adds its own tab (at the end), in place of the removed placeholder
    widget: QWidget  # the placeholder until built
    policy: QSizePolicy | None = None  # the widget's own size policy while the task hides the tab
    warm: tuple[str, ...] = ()  # modules make() imports, imported a turn apart first when the user opens it


class ViewerTabs(QObject):
    """The tabs of ``tabs`` added through :meth:`add`, made on first need for ``owner``."""

    def __init__(self, owner: QWidget, tabs: QTabWidget) -> None:
        super().__init__(tabs)
        self._owner = weakref.ref(owner)  # the panel owns the tabs: a strong reference back would be a cycle
        self.tabs = tabs
        self._tabs: dict[str, _Tab] = {}
        self._built: set[str] = set()
        self._making: dict[str, Slicer] = {}  # tabs opened by the user whose viewer is being made in steps
        self._viewers: Collection[str] | None = None
        tabs.currentChanged.connect(self._opened)
        self._fitting: Slicer | None = None
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(FIT_AFTER_MS)
        self._fit_timer.timeout.connect(self._fit_hidden_pages)
        self._stack = tabs.findChild(QStackedWidget, "qt_tabwidget_stackedwidget")
        if self._stack is not None:
            self._stack.installEventFilter(self)

    def add(self, key: str, title: str, make: Callable[[Any], QWidget], viewer: str | None = None,
            places_itself: bool = False, warm: Sequence[str] = ()) -> None:
        """A tab called ``title`` whose viewer ``make(owner)`` makes when first needed. One that
        ``places_itself`` must be the last tab when it is made (it appends its own). ``warm`` names the
        modules ``make`` imports: opened by the user, the tab imports them first, one per turn."""
        placeholder = QWidget()
        self._tabs[key] = _Tab(title, make, viewer, places_itself, placeholder, warm=tuple(warm))
        self.tabs.addTab(placeholder, title)
        self._show_for_task(key)

    def built(self, key: str) -> QWidget | None:
        """The viewer of ``key`` if it was made (without making it)."""
        return self._tabs[key].widget if key in self._built else None

    @property
    def making(self) -> bool:
        """Whether a tab the user opened is still being made (a step per event-loop turn)."""
        return bool(self._making)

    def get(self, key: str) -> QWidget:
        """The viewer of ``key``, made and put in its tab now if it was not yet."""
        tab = self._tabs[key]
        if key in self._built:
            return tab.widget
        steps = self._making.pop(key, None)
        if steps is not None:
            steps.cancel()  # made now: the imports it had left run in make()
        owner = self._owner()
        assert owner is not None, "the tabs outlived their panel"
        index = self.tabs.indexOf(tab.widget)
        current = self.tabs.currentIndex()
        placeholder = tab.widget
        self.tabs.blockSignals(True)
        try:
            self.tabs.removeTab(index)
            if tab.places_itself:
                assert index == self.tabs.count(), f"the {tab.title} tab must be the last one to place itself"
                widget = tab.make(owner)
            else:
                widget = tab.make(owner)
                self.tabs.insertTab(index, widget, tab.title)
            tab.widget, tab.policy = widget, None  # the placeholder's policy goes with it
            self._built.add(key)
            self._show_for_task(key)
            self.tabs.setCurrentIndex(current)
        finally:
            self.tabs.blockSignals(False)
        placeholder.deleteLater()
        if current == index:  # it was opened: whoever follows the tabs hears of it now that it is there
            self.tabs.currentChanged.emit(index)
        return widget

    def key_of(self, widget: QWidget | None) -> str | None:
        return next((k for k, t in self._tabs.items() if t.widget is widget), None)

    def set_viewers(self, viewers: Collection[str]) -> None:
        """Show the tabs whose viewer is in ``viewers`` (and those of every task), hide the others."""
        current = self.tabs.currentIndex()
        self._viewers = tuple(viewers)
        for key in self._tabs:
            self._show_for_task(key)
        if current > 0 and not self.tabs.isTabVisible(current):
            self.tabs.setCurrentIndex(0)  # the tab shown went away: back to the first (not a random neighbour)

    def shown(self, key: str) -> bool:
        """Whether ``key``'s tab is offered for the current task."""
        return self.tabs.isTabVisible(self.tabs.indexOf(self._tabs[key].widget))

    def _show_for_task(self, key: str) -> None:
        tab = self._tabs[key]
        visible = tab.viewer is None or self._viewers is None or tab.viewer in self._viewers
        self.tabs.setTabVisible(self.tabs.indexOf(tab.widget), visible)
        # A hidden tab's viewer must not size the dock: the tab stack is as tall as its tallest page's
        # minimum, shown or not (Predictions, built from a segmentation data set's preview while its tab
        # was hidden, made the panel 60 px taller than the dock). Hidden, its size policy is Ignored.
        if not visible and tab.policy is None:
            tab.policy = tab.widget.sizePolicy()
            tab.widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        elif visible and tab.policy is not None:
            tab.widget.setSizePolicy(tab.policy)
            tab.policy = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override: the tab stack resized
        if watched is self._stack and event.type() == QEvent.Type.Resize:
            self._fit_timer.start()
        return False

    def _fit_hidden_pages(self) -> None:
        """Give the hidden pages that hold graphics views the size the shown one has, now, in steps."""
        current = self.tabs.currentWidget()
        if current is None:
            return
        if self._fitting is not None and not self._fitting.finished:
            self._fitting.cancel()
        rect = current.geometry()
        pages = [page for i in range(self.tabs.count())
                 if (page := self.tabs.widget(i)) is not None and page is not current and page.geometry() != rect
                 and page.findChild(QGraphicsView) is not None]
        if pages:
            self._fitting = Slicer(self._fit_steps(pages, rect), self)
            self._fitting.start()

    def _fit_steps(self, pages: list[QWidget], rect: QRect) -> Steps:
        for page in pages:
            if page.isVisible():
                continue  # shown meanwhile: Qt laid it out
            page.setGeometry(rect)
            # Rendering a hidden widget first delivers the resize events Qt kept for its showing (its layouts
            # run, pyqtgraph lays its plots out): one pixel of it is enough for that.
            page.render(QPixmap(1, 1), QPoint(), QRegion(0, 0, 1, 1))
            yield
            for view in page.findChildren(QGraphicsView):
                if view.isVisibleTo(page) and not page.isVisible():
                    view.grab()  # its items (axes, texts) painted into their cached pixmaps, for the next show
                    yield

    def _opened(self, index: int) -> None:
        key = self.key_of(self.tabs.widget(index))
        if key is None or key in self._built or key in self._making:
            return
        if not self._tabs[key].warm:
            self.get(key)
            return
        steps = Slicer(self._open_in_steps(key), self)
        steps.done.connect(steps.deleteLater)
        self._making[key] = steps
        steps.start()  # the placeholder shows meanwhile (a few turns)

    def _open_in_steps(self, key: str) -> Steps:
        for module in self._tabs[key].warm:
            yield
            import_module(module)
        yield
        del self._making[key]  # first: get() would cancel the steps that are running it
        self.get(key)


class TabViewer(Generic[V]):
    """A class attribute that is the viewer of one tab of the instance's ``viewer_tabs``, made when first
    read (``panel.filters``)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __get__(self, owner: Any, _type: type | None = None) -> V:
        return cast(V, owner.viewer_tabs.get(self.key))


class BuiltViewer(Generic[V]):
    """Like :class:`TabViewer`, but ``None`` until the viewer was made (reading it makes nothing)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __get__(self, owner: Any, _type: type | None = None) -> V | None:
        return cast("V | None", owner.viewer_tabs.built(self.key))


__all__ = ["BuiltViewer", "TabViewer", "ViewerTabs"]
