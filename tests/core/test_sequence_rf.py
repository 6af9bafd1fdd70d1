"""The receptive field along a sequence (issue 14 §3) and the attention maps in the memory estimate.

An Embedding's vector is one token's (1 step); a Conv1d stack widens that like any window (here
after a Transpose to C×T and back); attention and bidirectional RNNs see the whole sequence, causal
attention and forward RNNs its prefix, and no layer sees less than its input already saw. The words
are the ones the summary table, the inspector and ``main.py summary`` show.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.analysis import analyze
from core.analysis_result import DTYPE_BYTES
from core.cli.summary import format_table
from core.graph import Graph
from core.layers.spec import SequenceRule
from core.receptive_field import (
    GLOBAL_RF,
    ONE_STEP_RF,
    PREFIX_RF,
    WHOLE_SEQUENCE_RF,
    ReceptiveField,
    merge_fields,
    sequence_field,
)


def chain(*layers: tuple[str, str, dict[str, Any]], shape: list[int] | None = None) -> Graph:
    """Input (token ids of 12 steps unless ``shape``) → the layers in order → Output."""
    g = Graph()
    g.add_node("Input", "input", {"shape": shape or [12]})
    prev = "input"
    for nid, type_name, params in layers:
        g.add_node(type_name, nid, params)
        g.add_edge(prev, nid)
        prev = nid
    g.add_node("Output", "out")
    g.add_edge(prev, "out")
    return g


def fields(g: Graph) -> dict[str, str]:
    a = analyze(g)
    assert a.ok, [d.message for d in a.diagnostics]
    return {n: (a.nodes[n].rf.short() if a.nodes[n].rf is not None else "?") for n in a.order}


EMBED = ("embed", "Embedding", {"num_embeddings": 50, "embedding_dim": 16})


def test_a_conv1d_stack_after_an_embedding_counts_steps() -> None:
    g = chain(EMBED, ("to_ct", "Transpose", {"dim0": 1, "dim1": 2}),
              ("conv1", "Conv1d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
              ("conv2", "Conv1d", {"out_channels": 16, "kernel_size": 5, "padding": 2}),
              ("conv3", "Conv1d", {"out_channels": 16, "kernel_size": 3, "dilation": 2, "padding": 2}),
              ("to_tc", "Transpose", {"dim0": 1, "dim1": 2}))
    rf = fields(g)
    assert [rf[n] for n in ("embed", "to_ct", "conv1", "conv2", "conv3", "to_tc")] == [
        "1 step", "1 step", "3 steps", "7 steps", "11 steps", "11 steps"]


@pytest.mark.parametrize(("layer", "want"), [
    (("attn", "MultiheadAttention", {"num_heads": 4}), "whole sequence"),
    (("attn", "MultiheadAttention", {"num_heads": 4, "causal": True}), "prefix"),
    (("attn", "TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 32}), "whole sequence"),
    (("attn", "TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 32, "causal": True}), "prefix"),
    (("attn", "LSTM", {"hidden_size": 8}), "prefix"),
    (("attn", "GRU", {"hidden_size": 8, "bidirectional": True}), "whole sequence"),
    (("attn", "RNN", {"hidden_size": 8, "num_layers": 2}), "prefix"),
])
def test_attention_and_rnns_see_the_whole_sequence_or_its_prefix(layer: tuple[str, str, dict[str, Any]],
                                                                 want: str) -> None:
    rf = fields(chain(EMBED, ("pos", "PositionalEncoding", {}), layer, ("head", "Linear", {"out_features": 5})))
    assert (rf["pos"], rf["attn"], rf["head"]) == ("1 step", want, want)


def test_no_layer_sees_less_than_its_input_already_saw() -> None:
    rf = fields(chain(EMBED, ("bi", "LSTM", {"hidden_size": 8, "bidirectional": True}),
                      ("causal", "MultiheadAttention", {"num_heads": 2, "causal": True}),
                      ("rnn", "GRU", {"hidden_size": 8}),
                      ("mean", "Mean", {"dim": [1]})))
    assert [rf[n] for n in ("bi", "causal", "rnn", "mean")] == ["whole sequence"] * 4
    rf = fields(chain(EMBED, ("rnn", "GRU", {"hidden_size": 8}),
                      ("to_ct", "Transpose", {"dim0": 1, "dim1": 2}),
                      ("conv", "Conv1d", {"out_channels": 8, "kernel_size": 3})))
    assert (rf["rnn"], rf["conv"]) == ("prefix", "prefix")


def test_an_image_flattened_into_tokens_stays_global() -> None:
    """ViT: the patches' field is already the whole image once flattened (global), not a sequence word."""
    rf = fields(chain(("patch", "Conv2d", {"out_channels": 16, "kernel_size": 4, "stride": 4}),
                      ("flat", "Flatten", {"start_dim": 2}), ("tokens", "Transpose", {"dim0": 1, "dim1": 2}),
                      ("attn", "MultiheadAttention", {"num_heads": 2}), shape=[3, 16, 16]))
    assert (rf["patch"], rf["attn"]) == ("4×4", "global")


def test_sequence_fields_combine_by_the_widest() -> None:
    window = ReceptiveField((5,), (1,), (2,), "steps")
    assert sequence_field(window, SequenceRule.PREFIX) == PREFIX_RF
    assert sequence_field(PREFIX_RF, SequenceRule.WHOLE) == WHOLE_SEQUENCE_RF
    assert sequence_field(WHOLE_SEQUENCE_RF, SequenceRule.PREFIX) == WHOLE_SEQUENCE_RF
    assert sequence_field(GLOBAL_RF, SequenceRule.WHOLE) == GLOBAL_RF
    assert sequence_field(WHOLE_SEQUENCE_RF, SequenceRule.STEP) == ONE_STEP_RF
    assert merge_fields([window, PREFIX_RF], keep_local=False)[0] == PREFIX_RF
    assert merge_fields([PREFIX_RF, WHOLE_SEQUENCE_RF], keep_local=False)[0] == WHOLE_SEQUENCE_RF
    assert merge_fields([WHOLE_SEQUENCE_RF, GLOBAL_RF], keep_local=False)[0] == GLOBAL_RF
    merged, _ = merge_fields([window, ReceptiveField((9,), (1,), (4,), "steps")], keep_local=False)
    assert merged is not None and merged.short() == "9 steps"


def test_json_and_cli_say_the_same_words() -> None:
    g = chain(EMBED, ("attn", "MultiheadAttention", {"num_heads": 4, "causal": True}))
    a = analyze(g)
    assert a.nodes["embed"].to_dict()["receptive_field"] == {"size": [1], "stride": [1], "padding": [0],
                                                             "sequence": "steps"}
    assert a.nodes["attn"].to_dict()["receptive_field"] == {"size": None, "stride": None, "padding": None,
                                                            "sequence": "prefix"}
    rows = {line.split()[0]: line for line in format_table(a).splitlines() if line.strip()}
    assert rows["embed"].rstrip().endswith("1 step") and rows["attn"].rstrip().endswith("prefix")
    # image fields keep their exact JSON form (no "sequence" key)
    conv = analyze(chain(("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3}), shape=[3, 8, 8]))
    assert conv.nodes["conv"].to_dict()["receptive_field"] == {"size": [3, 3], "stride": [1, 1], "padding": [0, 0]}


def test_memory_estimate_counts_the_attention_maps() -> None:
    """B·heads·T·S attention weights are kept for backward: per sample heads·T·S elements more than the
    output, for the layer alone and in the training-memory estimate (× batch)."""
    t, e, heads = 12, 16, 4
    g = chain(EMBED, ("attn", "MultiheadAttention", {"num_heads": heads}))
    a = analyze(g)
    assert a.nodes["attn"].activation_bytes == (t * e + heads * t * t) * DTYPE_BYTES
    without = analyze(chain(EMBED))
    batch = 8
    grown = a.memory(batch).activations - without.memory(batch).activations
    assert grown == batch * (t * e + heads * t * t) * DTYPE_BYTES  # both graphs end in a 12×16 Output
    encoder = analyze(chain(EMBED, ("enc", "TransformerEncoderLayer", {"nhead": heads, "dim_feedforward": 32})))
    # its attention maps, q/k/v/context and the feed-forward hidden units, besides its output
    assert encoder.nodes["enc"].activation_bytes == (t * e + heads * t * t + 4 * t * e + 2 * t * 32) * DTYPE_BYTES
