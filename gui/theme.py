"""Light and dark themes: one :class:`Theme` of named colours for the canvas, the panels and Qt.

Colours are ``#rrggbb`` strings so a theme is plain data (the canvas turns them into
``QColor`` where it paints). :func:`apply_theme` sets the application palette and stylesheet;
the window then hands the same theme to the canvas (``view.set_theme(theme)``) so every
surface agrees. :func:`current_theme` is what a widget asks when it paints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.layers.spec import Category


@dataclass(frozen=True)
class Theme:
    """Every colour the editor uses, by role."""

    name: str
    dark: bool
    # window chrome
    window: str
    panel: str  # dock and list backgrounds
    panel_alt: str  # alternate rows, headers
    border: str
    text: str
    text_dim: str
    accent: str  # selection, focus, primary buttons
    accent_text: str
    # canvas
    canvas: str
    grid_minor: str
    grid_major: str
    node_fill: str
    node_border: str
    node_text: str
    node_text_dim: str
    node_selected: str
    port: str
    port_hover: str
    edge: str
    edge_label: str
    edge_label_bg: str
    group_fill: str
    group_border: str
    group_text: str
    # severities
    error: str
    warning: str
    info: str
    ok: str
    # code highlighting
    code_keyword: str
    code_string: str
    code_number: str
    code_comment: str
    code_name: str
    # one header colour per palette category (node headers, palette icons)
    categories: dict[str, str] = field(default_factory=dict)

    def category_color(self, category: Category | str) -> str:
        key = category.value if isinstance(category, Category) else str(category)
        return self.categories.get(key, self.accent)


_CATEGORY_LIGHT = {
    Category.IO.value: "#5b6b7f",
    Category.CONV.value: "#2f6fd6",
    Category.POOL.value: "#0f9a8f",
    Category.NORM.value: "#8a5bd6",
    Category.ACTIVATION.value: "#e0892b",
    Category.LINEAR.value: "#c8416a",
    Category.DROPOUT.value: "#7b8a3a",
    Category.RECURRENT.value: "#a0522d",
    Category.ATTENTION.value: "#b0357f",
    Category.SHAPE.value: "#6f7a8a",
    Category.MERGE.value: "#2c9c4a",
}

_CATEGORY_DARK = {
    Category.IO.value: "#8796aa",
    Category.CONV.value: "#5b93f0",
    Category.POOL.value: "#35c2b4",
    Category.NORM.value: "#a884ee",
    Category.ACTIVATION.value: "#f0a350",
    Category.LINEAR.value: "#e66a91",
    Category.DROPOUT.value: "#a6b65c",
    Category.RECURRENT.value: "#d2875a",
    Category.ATTENTION.value: "#de6bb0",
    Category.SHAPE.value: "#96a2b3",
    Category.MERGE.value: "#4fc46d",
}

LIGHT = Theme(
    name="light", dark=False,
    window="#f3f4f7", panel="#ffffff", panel_alt="#f6f7f9", border="#d9dde4",
    text="#1d2330", text_dim="#667085", accent="#2f6fd6", accent_text="#ffffff",
    canvas="#f7f8fa", grid_minor="#eceef2", grid_major="#dfe3e9",
    node_fill="#ffffff", node_border="#c9ced8", node_text="#1d2330", node_text_dim="#667085",
    node_selected="#2f6fd6", port="#8a94a6", port_hover="#2f6fd6",
    edge="#9aa3b2", edge_label="#475467", edge_label_bg="#f7f8fa",
    group_fill="#e9eef8", group_border="#b8c4da", group_text="#344054",
    error="#d92d20", warning="#dc8a00", info="#2f6fd6", ok="#12915a",
    code_keyword="#8a3fc4", code_string="#1a7f37", code_number="#b35900", code_comment="#8a94a6",
    code_name="#2f6fd6",
    categories=_CATEGORY_LIGHT,
)

DARK = Theme(
    name="dark", dark=True,
    window="#1b1e24", panel="#22262e", panel_alt="#272c35", border="#353b46",
    text="#e4e7ec", text_dim="#98a2b3", accent="#5b93f0", accent_text="#0f1115",
    canvas="#181b20", grid_minor="#1f232a", grid_major="#272c34",
    node_fill="#262b34", node_border="#3b4250", node_text="#eef0f3", node_text_dim="#a0a9b8",
    node_selected="#5b93f0", port="#7d8798", port_hover="#5b93f0",
    edge="#6b7485", edge_label="#b6beca", edge_label_bg="#181b20",
    group_fill="#202631", group_border="#3a4558", group_text="#c9d1dd",
    error="#f0524a", warning="#f5b440", info="#5b93f0", ok="#3ccf83",
    code_keyword="#c792ea", code_string="#a5d6a7", code_number="#f5b97a", code_comment="#6f7a8c",
    code_name="#82aaff",
    categories=_CATEGORY_DARK,
)

THEMES: dict[str, Theme] = {LIGHT.name: LIGHT, DARK.name: DARK}

_current: Theme = LIGHT
ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def current_theme() -> Theme:
    """The theme in use now (the light one until :func:`apply_theme` is called)."""
    return _current


def theme_named(name: str | None) -> Theme:
    """``"dark"`` → :data:`DARK`; anything unknown falls back to :data:`LIGHT`."""
    return THEMES.get(name or "", LIGHT)


def apply_theme(theme: Theme, app: object | None = None) -> None:
    """Make ``theme`` current and apply its palette and stylesheet to the QApplication."""
    global _current
    _current = theme
    from PySide6.QtWidgets import QApplication

    qapp = app if app is not None else QApplication.instance()
    if isinstance(qapp, QApplication):
        qapp.setPalette(make_palette(theme))  # (Qt itself skips an equal palette)
        sheet = stylesheet(theme)
        # Setting a style sheet re-polishes every widget alive even when the text is the same (0.6 s with
        # three windows open); a new window applies the theme already in force.
        if qapp.styleSheet() != sheet:
            qapp.setStyleSheet(sheet)


def make_palette(theme: Theme) -> object:
    """A QPalette with the theme's colours in every role the standard widgets read."""
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: theme.window,
        QPalette.ColorRole.WindowText: theme.text,
        QPalette.ColorRole.Base: theme.panel,
        QPalette.ColorRole.AlternateBase: theme.panel_alt,
        QPalette.ColorRole.ToolTipBase: theme.panel,
        QPalette.ColorRole.ToolTipText: theme.text,
        QPalette.ColorRole.PlaceholderText: theme.text_dim,
        QPalette.ColorRole.Text: theme.text,
        QPalette.ColorRole.Button: theme.panel_alt,
        QPalette.ColorRole.ButtonText: theme.text,
        QPalette.ColorRole.BrightText: theme.error,
        QPalette.ColorRole.Highlight: theme.accent,
        QPalette.ColorRole.HighlightedText: theme.accent_text,
        QPalette.ColorRole.Link: theme.accent,
        QPalette.ColorRole.Mid: theme.border,
        QPalette.ColorRole.Midlight: theme.panel_alt,
        QPalette.ColorRole.Dark: theme.border,
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.text_dim))
    return p


def _icon_url(name: str, t: Theme) -> str:
    return (ICONS / f"{name}-{'dark' if t.dark else 'light'}.svg").as_posix()


def stylesheet(t: Theme) -> str:
    """The application stylesheet: flat panels, quiet borders, one accent colour."""
    up, down, check = _icon_url("chevron-up", t), _icon_url("chevron-down", t), _icon_url("check", t)
    return f"""
QMainWindow, QDialog {{ background: {t.window}; }}
QMainWindow::separator {{ background: {t.border}; width: 1px; height: 1px; }}
QDockWidget {{ color: {t.text}; font-weight: 600; }}
QDockWidget::title {{
    background: {t.panel_alt}; padding: 6px 10px; border-bottom: 1px solid {t.border};
    text-align: left;
}}
QDockWidget > QWidget {{ background: {t.panel}; }}
QTabBar::tab {{
    background: {t.panel_alt}; color: {t.text_dim}; padding: 5px 14px; border: 1px solid {t.border};
    border-bottom: none; margin-right: 2px; border-top-left-radius: 4px; border-top-right-radius: 4px;
}}
QTabBar::tab:selected {{ background: {t.panel}; color: {t.text}; border-bottom: 2px solid {t.accent}; }}
QToolTip {{ background: {t.panel}; color: {t.text}; border: 1px solid {t.border}; padding: 6px; }}
QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox, QPlainTextEdit, QTextEdit {{
    background: {t.panel}; color: {t.text}; border: 1px solid {t.border}; border-radius: 4px;
    padding: 3px 6px; selection-background-color: {t.accent}; selection-color: {t.accent_text};
}}
QLineEdit:focus, QSpinBox:focus, QDoubleSpinBox:focus, QComboBox:focus {{ border: 1px solid {t.accent}; }}
QLineEdit[invalid="true"] {{ border: 1px solid {t.error}; }}
QAbstractSpinBox {{ padding-right: 18px; }}
QAbstractSpinBox::up-button, QAbstractSpinBox::down-button {{
    subcontrol-origin: border; width: 16px; border-left: 1px solid {t.border}; background: {t.panel_alt};
}}
QAbstractSpinBox::up-button {{ subcontrol-position: top right; border-top-right-radius: 4px; }}
QAbstractSpinBox::down-button {{ subcontrol-position: bottom right; border-bottom-right-radius: 4px; }}
QAbstractSpinBox::up-button:hover, QAbstractSpinBox::down-button:hover {{ background: {t.border}; }}
QAbstractSpinBox::up-arrow {{ image: url({up}); width: 8px; height: 8px; }}
QAbstractSpinBox::down-arrow {{ image: url({down}); width: 8px; height: 8px; }}
QAbstractSpinBox::up-arrow:disabled, QAbstractSpinBox::down-arrow:disabled {{ image: none; }}
QComboBox {{ padding-right: 20px; }}
QComboBox::drop-down {{ subcontrol-origin: padding; subcontrol-position: center right; width: 20px; border: none; }}
QComboBox::down-arrow {{ image: url({down}); width: 10px; height: 10px; }}
QComboBox QAbstractItemView {{ background: {t.panel}; color: {t.text}; border: 1px solid {t.border}; }}
QPushButton, QToolButton {{
    background: {t.panel_alt}; color: {t.text}; border: 1px solid {t.border}; border-radius: 4px;
    padding: 4px 10px;
}}
QPushButton:hover, QToolButton:hover {{ border-color: {t.accent}; }}
QPushButton:pressed, QToolButton:pressed {{ background: {t.border}; }}
QPushButton:default {{ background: {t.accent}; color: {t.accent_text}; border-color: {t.accent}; }}
QPushButton:disabled {{ color: {t.text_dim}; }}
QPushButton:default:disabled {{
    background: {t.panel_alt}; color: {t.text_dim}; border-color: {t.border};
}}
QPushButton[role="fix"] {{
    background: transparent; color: {t.accent}; border: 1px solid {t.accent}; border-radius: 3px;
    padding: 1px 8px; margin: 1px 4px;
}}
QPushButton[role="fix"]:hover {{ background: {t.accent}; color: {t.accent_text}; }}
QTreeView, QTableView, QListView, QTreeWidget, QTableWidget, QListWidget {{
    background: {t.panel}; color: {t.text}; border: none; alternate-background-color: {t.panel_alt};
    selection-background-color: {t.accent}; selection-color: {t.accent_text}; outline: 0;
}}
QTreeView::item, QListView::item {{ padding: 3px 2px; }}
QHeaderView::section {{
    background: {t.panel_alt}; color: {t.text_dim}; border: none; border-bottom: 1px solid {t.border};
    border-right: 1px solid {t.border}; padding: 4px 8px; font-weight: 600;
}}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 0; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 0; }}
QScrollBar::handle {{ background: {t.border}; border-radius: 4px; min-height: 24px; min-width: 24px; }}
QScrollBar::handle:hover {{ background: {t.text_dim}; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: none; }}
QStatusBar {{ background: {t.panel_alt}; color: {t.text_dim}; border-top: 1px solid {t.border}; }}
QStatusBar QLabel {{ color: {t.text_dim}; padding: 0 8px; }}
QMenuBar {{ background: {t.window}; color: {t.text}; }}
QMenuBar::item:selected {{ background: {t.panel_alt}; }}
QMenu {{ background: {t.panel}; color: {t.text}; border: 1px solid {t.border}; padding: 4px 0; }}
QMenu::item {{ padding: 5px 24px 5px 24px; }}
QMenu::item:selected {{ background: {t.accent}; color: {t.accent_text}; }}
QMenu::item:disabled {{ color: {t.text_dim}; }}
QMenu::separator {{ height: 1px; background: {t.border}; margin: 4px 8px; }}
QToolBar {{
    background: {t.window}; border: none; border-bottom: 1px solid {t.border}; spacing: 2px; padding: 3px 6px;
}}
QToolBar QToolButton {{ background: transparent; border: 1px solid transparent; padding: 4px 10px; }}
QToolBar QToolButton:hover {{ background: {t.panel_alt}; border: 1px solid {t.border}; }}
QToolBar QToolButton:disabled {{ color: {t.text_dim}; }}
QToolBar::separator {{ background: {t.border}; width: 1px; margin: 4px 6px; }}
QLabel[role="heading"] {{ color: {t.text}; font-weight: 700; font-size: 13px; }}
QLabel[role="dim"] {{ color: {t.text_dim}; }}
QLabel[role="error"] {{ color: {t.error}; }}
QLabel[role="section"] {{
    color: {t.text_dim}; font-weight: 700; font-size: 10px; padding-top: 8px;
}}
QFrame[role="card"] {{ background: {t.panel}; border: 1px solid {t.border}; border-radius: 6px; }}
QCheckBox {{ color: {t.text}; spacing: 6px; }}
QCheckBox::indicator {{
    width: 14px; height: 14px; border: 1px solid {t.text_dim}; border-radius: 3px; background: {t.panel};
}}
QCheckBox::indicator:hover {{ border-color: {t.accent}; }}
QCheckBox::indicator:checked {{ background: {t.accent}; border-color: {t.accent}; image: url({check}); }}
QCheckBox::indicator:disabled {{ border-color: {t.border}; background: {t.panel_alt}; }}
"""


__all__ = ["DARK", "LIGHT", "THEMES", "Theme", "apply_theme", "current_theme", "make_palette", "stylesheet",
           "theme_named"]
