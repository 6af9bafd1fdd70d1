"""The Training dock's "Attention" tab for sequence tasks (gui/training/sequence_view.py).

The view is fed probe events made here with known attention weights, hidden states and gradient
norms per time step; what is asserted is what the user sees: the layer and head choosers, the
heat map's shape and values, the tokens on the axes (thinned when they would not fit), the hover
text, the captions, the sentences of the empty states, and the colours after a theme switch.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import types
from typing import Any

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPointF
from PySide6.QtGui import QHelpEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QToolTip

from core.training import ProbeData
from gui.theme import DARK, LIGHT, apply_theme
from gui.training.sequence_view import (
    BEFORE_RUN,
    MAX_UNITS,
    NO_ATTENTION,
    NO_GRADIENTS,
    NO_HIDDEN,
    WAITING,
    SequenceView,
    attention_tooltip,
    display_token,
    gradient_caption,
    label_step,
    nice_step,
)

TEXT = "abcab"  # five character tokens


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():  # type: ignore[no-untyped-def]
    yield
    gc.collect()


def probe(tokens: tuple[tuple[str, ...], ...] = (tuple(TEXT), tuple("cabca")),
          attention: dict[str, torch.Tensor] | None = None,
          activations: dict[str, torch.Tensor] | None = None,
          grads: dict[str, torch.Tensor] | None = None,
          channels: dict[str, int] | None = None) -> Any:
    """A probe event with the issue-14 fields (a ProbeData when it has them, else one built alike)."""
    n = len(tokens)
    fields: dict[str, Any] = dict(epoch=2, step=7, global_step=17, images=torch.zeros(n, 5, dtype=torch.int64),
                                  labels=(0,) * n, probabilities=torch.full((n, 3), 1 / 3),
                                  activations=activations or {}, channels=channels or {}, stats={})
    extra = dict(tokens=tokens, attention=attention or {}, time_grad_norms=grads or {})
    names = {f.name for f in dataclasses.fields(ProbeData)}
    if set(extra) <= names:
        return ProbeData(**fields, **extra)
    return types.SimpleNamespace(**fields, **extra)


def known_attention(samples: int = 2, heads: int = 2, t: int = 5) -> torch.Tensor:
    """Head 0 attends to the previous token (t-1, itself at t=0); head 1 spreads evenly over the prefix."""
    a = torch.zeros(samples, heads, t, t)
    for q in range(t):
        a[:, 0, q, max(q - 1, 0)] = 1.0
        a[:, 1, q, : q + 1] = 1.0 / (q + 1)
    return a


def shown_view(qtbot, width: int = 1000, height: int = 420) -> SequenceView:  # type: ignore[no-untyped-def]
    view = SequenceView()
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    return view


def combo_items(combo) -> list[str]:  # type: ignore[no-untyped-def]
    return [combo.itemText(i) for i in range(combo.count())]


def drawn_labels(plot, axis: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The tick texts an axis of ``plot`` paints (pyqtgraph leaves out those that do not fit)."""
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = plot.getPlotItem().getAxis(axis).generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for *_, text in specs[2]]


def hover(qtbot, heat, x: float, y: float) -> str:  # type: ignore[no-untyped-def]
    """Move the mouse over the map's point (x, y) (map units: column, row) and return the hover text."""
    qtbot.wait(30)  # pyqtgraph's scene passes on at most one mouse move per 10 ms
    vb = heat.getPlotItem().getViewBox()
    qtbot.mouseMove(heat.viewport(), heat.mapFromScene(vb.mapViewToScene(QPointF(x, y))))
    return str(heat.hover_text)


def tooltip_shown(plot, x: float, y: float) -> str:  # type: ignore[no-untyped-def]
    """The tooltip Qt shows for a rest of the mouse on the plot's point (x, y) in data units."""
    vb = plot.getPlotItem().getViewBox()
    pos = plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    QApplication.sendEvent(plot.viewport(), QHelpEvent(QEvent.Type.ToolTip, pos, plot.viewport().mapToGlobal(pos)))
    text = QToolTip.text() if QToolTip.isVisible() else ""
    QToolTip.hideText()
    return text


def test_waits_for_the_first_probe_in_words(qtbot) -> None:
    view = shown_view(qtbot)
    for section in (view.attention, view.hidden, view.gradients):
        assert section.empty and section.message.text() == WAITING
        assert section.message.isVisible()
    assert not view.layer_combo.isVisible() and not view.sample_combo.isVisible()  # no empty choosers
    assert view.info.text() == BEFORE_RUN and view.info.isVisible()


def test_attention_map_shows_the_chosen_layer_and_head(qtbot) -> None:
    view = shown_view(qtbot)
    att = known_attention()
    view.show_probe(probe(attention={"enc.attn": att, "dec.attn": att.flip(1)}))
    assert combo_items(view.layer_combo) == ["enc.attn", "dec.attn"]
    assert combo_items(view.head_combo) == ["mean of heads", "head 1", "head 2"]
    assert not view.attention.empty
    shown = view.attention_map.image.image
    assert shown.shape == (5, 5)  # T×S
    np.testing.assert_allclose(shown, att[0].mean(0).numpy(), atol=1e-6)  # mean of heads by default
    view.head_combo.setCurrentIndex(1)  # head 1: the previous token
    np.testing.assert_allclose(view.attention_map.image.image, att[0, 0].numpy())
    assert view.attention_map.image.image[3, 2] == 1.0
    view.layer_combo.setCurrentText("dec.attn")  # heads swapped: its head 1 is the even spread
    np.testing.assert_allclose(view.attention_map.image.image, att[0, 1].numpy())
    caption = view.attention.caption.text()
    assert "dec.attn" in caption and "head 1 of 2" in caption and "5×5" in caption and "causal" in caption
    assert view.attention_map.bar.levels()[1] == pytest.approx(1.0)


def test_the_tokens_label_the_axes_and_the_hover_says_who_attends_to_whom(qtbot) -> None:
    view = shown_view(qtbot)
    view.show_probe(probe(attention={"attn": known_attention()}))
    heat = view.attention_map
    assert heat.row_ticks == list(enumerate("abcab")) and heat.col_ticks == list(enumerate("abcab"))
    for axis in ("left", "bottom"):  # as the axes paint them: every token, the first one too
        assert drawn_labels(heat, axis) == list("abcab")
    assert heat.text_at(4, 3) == "query 'b' (t=4) → key 'a' (t=3): 0.60"  # mean of 1 and 1/5
    # The mouse over the cell (query 4, key 2) of the map reads the same way.
    assert hover(qtbot, heat, 2.5, 4.5) == "query 'b' (t=4) → key 'c' (t=2): 0.10"
    assert tooltip_shown(heat, 2.5, 4.5) == heat.hover_text  # the tooltip Qt shows when the mouse rests there
    assert hover(qtbot, heat, 2.5, 5.5) == ""  # below the map
    # The second sample's tokens, on choosing it.
    assert combo_items(view.sample_combo) == ["1 · abcab", "2 · cabca"] and view.sample_combo.isVisible()
    view.sample_combo.setCurrentIndex(1)
    assert [name for _, name in heat.row_ticks] == list("cabca")


def test_long_sequences_write_every_nth_token(qtbot) -> None:
    view = shown_view(qtbot, 700, 300)
    t = 120
    words = tuple(f"w{i}" for i in range(t))
    att = torch.softmax(torch.randn(1, 1, t, t, generator=torch.Generator().manual_seed(0)), -1)
    view.show_probe(probe(tokens=(words,), attention={"attn": att}))
    heat = view.attention_map
    rows = heat.row_ticks
    assert 2 < len(rows) < t
    step = rows[1][0] - rows[0][0]
    assert step > 1 and all(name == f"w{i}" for i, name in rows) and all(i % step == 0 for i, _ in rows)
    assert drawn_labels(heat, "left") == [name for _, name in rows]
    assert drawn_labels(heat, "bottom") == [name for _, name in heat.col_ticks]  # none overlap, none dropped
    assert combo_items(view.head_combo) == ["head 1"] and not view.head_combo.isEnabled()  # one head: nothing to choose
    # A taller view writes more of them.
    view.resize(700, 900)
    qtbot.waitUntil(lambda: len(heat.row_ticks) > len(rows))
    # Without tokens (image patches of a ViT) the positions are numbered in round steps.
    view.show_probe(probe(tokens=(), attention={"attn": att}))
    cols = heat.col_ticks
    assert cols[0] == (0, "0") and cols[1][0] in (2, 5, 10, 20) and all(name == str(i) for i, name in cols)
    assert heat.text_at(7, 3).startswith("query t=7 → key t=3: ")


def test_tokens_show_visibly_and_unknown_keys_by_position() -> None:
    assert display_token(" ") == "␣" and display_token("\n") == "↵"
    assert display_token("internationalisation") == "interna…"
    assert attention_tooltip(list("ab"), [], 1, 3, 0.004) == "query 'b' (t=1) → key t=3: 0.004"
    assert attention_tooltip([" "], ["x"], 0, 0, 0.3125) == "query '␣' (t=0) → key 'x' (t=0): 0.31"
    assert label_step(35, 14, 350) == 2 and label_step(5, 14, 350) == 1
    assert [nice_step(n) for n in (1, 2, 3, 6, 11, 30)] == [1, 2, 5, 10, 20, 50]


def test_hidden_states_time_by_units_capped(qtbot) -> None:
    view = shown_view(qtbot)
    h = torch.linspace(-1, 1, 2 * 5 * 100).reshape(2, 5, 100)
    view.show_probe(probe(activations={"lstm": h, "conv": torch.zeros(2, 3, 4, 4)}, channels={"lstm": 256}))
    assert combo_items(view.hidden_combo) == ["lstm"]  # the conv's maps are not a sequence
    shown = view.hidden_map.image.image
    assert shown.shape == (MAX_UNITS, 5)  # rows: units, columns: time
    np.testing.assert_allclose(shown, h[0, :, :MAX_UNITS].T.numpy())
    assert [name for _, name in view.hidden_map.col_ticks] == list("abcab")
    assert f"first {MAX_UNITS} of 256 units" in view.hidden.caption.text()
    lo, hi = view.hidden_map.bar.levels()
    assert lo == -hi  # white is zero
    assert view.hidden_map.text_at(3, 2) == f"t=2 'c' · unit 3: {h[0, 2, 3].item():.2f}"


def test_gradient_norm_captions_in_plain_words(qtbot) -> None:
    view = shown_view(qtbot)
    vanishing = torch.logspace(-6, 0, 20)
    view.show_probe(probe(grads={"rnn": vanishing}))
    x, y = view.gradient_plot.curve.getOriginalDataset()
    assert list(x) == list(range(20))
    np.testing.assert_allclose(y, vanishing.numpy(), rtol=1e-6)
    assert view.gradient_plot.getPlotItem().ctrl.logYCheck.isChecked()
    qtbot.wait(30)  # pyqtgraph's scene passes on at most one mouse move per 10 ms
    vb = view.gradient_plot.getPlotItem().getViewBox()
    qtbot.mouseMove(view.gradient_plot.viewport(),
                    view.gradient_plot.mapFromScene(vb.mapViewToScene(QPointF(3.2, math.log10(vanishing[3].item())))))
    assert view.gradient_plot.hover_text == f"t=3: ‖∂loss/∂h‖ {vanishing[3].item():.2g}"
    assert tooltip_shown(view.gradient_plot, 3.2, math.log10(vanishing[3].item())) == view.gradient_plot.hover_text
    assert view.gradients.caption.text().startswith("Gradients vanish over the sequence: earlier steps barely learn")
    view.show_probe(probe(grads={"rnn": vanishing.flip(0)}))
    assert view.gradients.caption.text().startswith("Gradients explode towards the start of the sequence")
    view.show_probe(probe(grads={"rnn": torch.linspace(0.5, 1.0, 20)}))
    assert "the whole sequence learns" in view.gradients.caption.text()
    assert "inf or NaN" in gradient_caption(np.array([1.0, np.inf]))
    assert "try shorter sequences" in gradient_caption(np.logspace(-6, 0, 20), "LSTM")


def test_empty_parts_say_why(qtbot) -> None:
    view = shown_view(qtbot)
    view.show_probe(probe(grads={"gru": torch.ones(5)}))
    assert view.attention.empty and view.attention.message.text() == NO_ATTENTION
    assert view.hidden.empty and view.hidden.message.text() == NO_HIDDEN
    assert not view.gradients.empty
    view.show_probe(probe(attention={"attn": known_attention()}))
    assert view.gradients.message.text() == NO_GRADIENTS and not view.attention.empty
    view.clear()
    assert all(s.empty and s.message.text() == WAITING for s in (view.attention, view.hidden, view.gradients))
    assert view.sample_combo.count() == 0


def test_probes_update_in_place_and_a_hidden_tab_waits(qtbot) -> None:
    view = shown_view(qtbot)
    view.show_probe(probe(attention={"attn": known_attention()}))
    image, bar = view.attention_map.image, view.attention_map.bar
    view.show_probe(probe(attention={"attn": known_attention() * 0.5}))
    assert view.attention_map.image is image and view.attention_map.bar is bar  # no rebuild per probe
    assert view.attention_map.image.image.max() == pytest.approx(0.5)
    view.hide()
    renders = view.renders
    view.show_probe(probe(attention={"attn": known_attention() * 0.25}))
    assert view.renders == renders  # nothing drawn while hidden
    view.show()
    qtbot.waitUntil(lambda: view.renders == renders + 1)
    assert view.attention_map.image.image.max() == pytest.approx(0.25)


def test_theme_switch_recolours_everything(qtbot) -> None:
    view = shown_view(qtbot)
    view.show_probe(probe(attention={"attn": known_attention()}, grads={"rnn": torch.ones(5)}))
    try:
        apply_theme(DARK)
        view.set_theme(DARK)
        assert view.attention_map.backgroundBrush().color().name() == DARK.panel
        assert view.gradient_plot.backgroundBrush().color().name() == DARK.panel
        axis = view.attention_map.getPlotItem().getAxis("left")
        assert axis.textPen().color().name() == DARK.text_dim
        assert DARK.text_dim in view.attention.caption.styleSheet()
        assert DARK.border in view.attention.styleSheet()
        assert view.gradient_plot.curve.opts["pen"].color().name() == DARK.accent
    finally:
        apply_theme(LIGHT)
        view.set_theme(LIGHT)
    assert view.attention_map.backgroundBrush().color().name() == LIGHT.panel


def test_the_analysis_orders_and_names_the_sequence_outputs(qtbot) -> None:
    view = shown_view(qtbot)
    node = types.SimpleNamespace
    view.set_analysis(types.SimpleNamespace(nodes={"conv": node(type="Conv1d"), "lstm": node(type="LSTM"),
                                                   "enc": node(type="TransformerEncoderLayer")}))
    view.show_probe(probe(activations={"enc": torch.ones(2, 5, 8), "conv": torch.ones(2, 8, 5),
                                       "lstm": torch.ones(2, 5, 16)},
                          grads={"lstm": torch.logspace(-8, 0, 5)}))
    # The recurrent layer (it has gradients per step) comes first; a Conv1d's channels × length is no sequence.
    assert combo_items(view.hidden_combo) == ["lstm", "enc"]
    assert view.hidden.caption.text().startswith("lstm (LSTM) · 16 units")
    assert view.gradients.caption.text().endswith("try shorter sequences or gradient clipping")  # it is an LSTM


def test_a_wide_short_dock_puts_hidden_states_beside_the_gradients(qtbot) -> None:
    view = shown_view(qtbot, 1260, 300)
    view.show_probe(probe(activations={"lstm": torch.ones(2, 5, 16)}, grads={"lstm": torch.ones(5)}))
    qtbot.waitUntil(lambda: view.gradients.geometry().left() > view.hidden.geometry().right())
    assert view.hidden.width() > 150 and view.gradients.width() > 150
    view.resize(900, 600)
    qtbot.waitUntil(lambda: view.gradients.geometry().top() > view.hidden.geometry().bottom())


def test_a_real_probe_of_attention_and_an_lstm(qtbot) -> None:
    """The engine's own probe of a compiled Embedding → causal MultiheadAttention → LSTM → Linear graph."""
    from core.compiler import compile_graph
    from core.graph import Graph
    from core.training.probes import Prober

    t, vocab, samples = 10, 6, 2
    g = Graph()
    g.add_node("Input", "input", {"shape": [t]})
    g.add_node("Embedding", "embed", {"num_embeddings": vocab, "embedding_dim": 8})
    g.add_node("MultiheadAttention", "attn", {"num_heads": 2, "causal": True})
    g.add_node("LSTM", "lstm", {"hidden_size": 80})
    g.add_node("Linear", "decoder", {"out_features": vocab})
    g.add_node("Output", "logits")
    for a, b in (("input", "embed"), ("embed", "attn"), ("attn", "lstm"), ("lstm", "decoder"), ("decoder", "logits")):
        g.add_edge(a, b)
    model = compile_graph(g, seed=0)
    x = torch.randint(0, vocab, (samples, t), generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, -1, dims=1)
    prober = Prober(sequence=True)
    prober.set_nodes(["attn", "lstm"])
    ce = torch.nn.CrossEntropyLoss()
    tokens = tuple(tuple("abcdef"[i] for i in row) for row in x.tolist())
    data = prober.capture(model, x, x, (0,) * samples, 1, 3, 3, target="next-token", y=y, tokens=tokens,
                          loss=lambda out, target: ce(out.reshape(-1, vocab), target.reshape(-1)))
    view = shown_view(qtbot)
    view.show_probe(data)
    assert combo_items(view.layer_combo) == ["attn"] and combo_items(view.head_combo)[1:] == ["head 1", "head 2"]
    np.testing.assert_allclose(view.attention_map.image.image, data.attention["attn"][0].mean(0).numpy(), atol=1e-6)
    assert "causal" in view.attention.caption.text()
    assert [name for _, name in view.attention_map.row_ticks] == list(tokens[0])
    assert combo_items(view.hidden_combo) == ["lstm", "attn"]  # the recurrent layer first
    assert view.hidden_map.image.image.shape == (MAX_UNITS, t)
    assert f"first {MAX_UNITS} of 80 units" in view.hidden.caption.text()
    x_norms, _ = view.gradient_plot.curve.getOriginalDataset()
    assert len(x_norms) == t and view.gradients.caption.text()
