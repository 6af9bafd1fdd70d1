"""torch modules behind the attention declarations (:mod:`core.layers.attention`).

Each is batch first (a sample is T×C, DESIGN.md §5) and, where torch has the layer, a subclass of
torch's own, so a torch model's ``state_dict`` loads unchanged (``in_proj_weight``,
``self_attn.out_proj.weight``, ``linear1.weight``, ``norm1.weight`` …). The attention of every
one of them can be watched: a module with ``keep_attention`` set (the training probes set it for
one pass) keeps its last per-head attention weights, (B, heads, T, S), in ``last_attention``.
Otherwise attention runs without materialising them (``need_weights=False``: torch's
``scaled_dot_product_attention``, fused on a GPU).

They live apart from the declarations so that importing :mod:`core.layers` never imports torch.
Each class uses only ``torch``, ``nn`` and ``F`` (and, for the Transformer layers, the attention
class above them), so the code exporter copies their source into a generated file.

Key padding masks arrive as extra positional inputs after the sequences, one per flag that is on
(``key_padding_mask``; ``src_key_padding_mask``; ``tgt_key_padding_mask`` then
``memory_key_padding_mask``): per sample (S,), bool or 0/1 ids, True where a key is padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SequenceMultiheadAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` with ``batch_first=True``, called as ``attn(query[, key[, value]][, mask])``.

    One input is self-attention; with two, the key is also the value (attending to a memory).
    ``causal`` lets position ``t`` of the query attend only to positions ``≤ t`` (the upper triangle
    of the T×S score matrix is masked). With ``key_padding_mask`` the last input is the key padding
    mask (N×S, True: ignore that key). Returns the attended values only (one output port).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, causal: bool = False,
                 key_padding_mask: bool = False) -> None:
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
        self.causal = causal
        self.key_padding_mask = key_padding_mask  # the flag: the last input is a mask
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, query: torch.Tensor, *inputs: torch.Tensor,  # type: ignore[override]
                padding: torch.Tensor | None = None) -> torch.Tensor:
        """Attention from ``query`` to the key (default: the query) and the value (default: the key),
        ignoring the keys that the padding mask (N×S) marks: the last input with ``key_padding_mask``,
        else ``padding`` (how the Transformer layers pass theirs)."""
        if self.key_padding_mask:
            padding, inputs = inputs[-1], inputs[:-1]
        key = inputs[0] if inputs else query
        value = inputs[1] if len(inputs) > 1 else key
        if padding is not None and padding.dtype != torch.bool:
            # 0/1 ids are flags; torch would add a float mask to the scores as numbers
            padding = padding != 0
        mask = None
        if self.causal:  # True above the diagonal: query t may not see keys after t
            mask = torch.ones(query.shape[1], key.shape[1], dtype=torch.bool, device=query.device).triu(1)
        if padding is not None:
            return self._padded(query, key, value, padding, mask)
        if self.keep_attention:
            out, weights = super().forward(query, key, value, attn_mask=mask, need_weights=True,
                                           average_attn_weights=False)
            self.last_attention = None if weights is None else weights.detach()
            return out
        # is_causal lets the fused kernel skip the masked half instead of reading the mask
        out, _ = super().forward(query, key, value, attn_mask=mask, need_weights=False, is_causal=self.causal)
        return out

    def _padded(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, padding: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        """Attention with a key padding mask, always through torch's scaled-dot-product path.

        A query that sees no key at all (a sample of padding only; a left-padded prompt under a
        causal mask) gets zeros there, but NaN from torch's inference fast path and from its
        weights path, which would spread through the next layers and into every gradient. So
        this calls what ``nn.MultiheadAttention`` runs outside its fast path, and the probes'
        weights are only looked at (NaN shown as no attention).
        """
        def attend(need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
            out, weights = F.multi_head_attention_forward(
                query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), self.embed_dim,
                self.num_heads, self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v,
                self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias, training=self.training,
                key_padding_mask=padding, need_weights=need_weights, attn_mask=mask,
                use_separate_proj_weight=not self._qkv_same_embed_dim, q_proj_weight=self.q_proj_weight,
                k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight, average_attn_weights=False)
            return out.transpose(0, 1), weights

        if self.keep_attention:
            with torch.no_grad():
                weights = attend(True)[1]
            self.last_attention = None if weights is None else weights.nan_to_num(0.0)
        return attend(False)[0]


class SequenceTransformerEncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (batch first) whose ``self_attn`` keeps its attention on request.

    The forward is the layer's own two residual blocks (self-attention, then the feed-forward
    network; each normalised before with ``norm_first``, else after the residual sum), always the
    path the probes can watch: torch's fused inference kernel would bypass ``self_attn``.
    With ``src_key_padding_mask`` it is called as ``layer(src, mask)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 bias: bool = True, causal: bool = False, src_key_padding_mask: bool = False) -> None:
        super().__init__(d_model, nhead, dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                         layer_norm_eps=layer_norm_eps, batch_first=True, norm_first=norm_first, bias=bias)
        self.self_attn = SequenceMultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, causal=causal)
        self.causal = causal
        self.src_key_padding_mask = src_key_padding_mask  # the flag: a second input is the mask

    def forward(self, src: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        x = src
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), padding=padding))
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self.dropout1(self.self_attn(x, padding=padding)))
        return self.norm2(x + self._feed_forward(x))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class SequenceTransformerDecoderLayer(nn.TransformerDecoderLayer):
    """``nn.TransformerDecoderLayer`` (batch first), called as ``layer(tgt, memory)``.

    Self-attention over the target (``causal``: each position sees only the ones before it), then
    attention from the target to the memory (never causal), then the feed-forward network. The
    padding masks whose flags are on follow ``memory``: the target's, then the memory's.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 bias: bool = True, causal: bool = True, tgt_key_padding_mask: bool = False,
                 memory_key_padding_mask: bool = False) -> None:
        super().__init__(d_model, nhead, dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                         layer_norm_eps=layer_norm_eps, batch_first=True, norm_first=norm_first, bias=bias)
        self.self_attn = SequenceMultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, causal=causal)
        self.multihead_attn = SequenceMultiheadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.causal = causal
        self.tgt_key_padding_mask = tgt_key_padding_mask  # the flags: which masks follow memory
        self.memory_key_padding_mask = memory_key_padding_mask

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor,  # type: ignore[override]
                *masks: torch.Tensor) -> torch.Tensor:
        queue = list(masks)
        tgt_padding = queue.pop(0) if self.tgt_key_padding_mask else None
        memory_padding = queue.pop(0) if self.memory_key_padding_mask else None
        x = tgt
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.norm1(x), padding=tgt_padding))
            x = x + self.dropout2(self.multihead_attn(self.norm2(x), memory, padding=memory_padding))
            return x + self._feed_forward(self.norm3(x))
        x = self.norm1(x + self.dropout1(self.self_attn(x, padding=tgt_padding)))
        x = self.norm2(x + self.dropout2(self.multihead_attn(x, memory, padding=memory_padding)))
        return self.norm3(x + self._feed_forward(x))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class PositionalEncoding(nn.Module):
    """Adds a position code to each time step of a T×C sequence, then dropout.

    ``sinusoidal`` (Vaswani et al. 2017, as d2l builds it): ``P[t, 2i] = sin(t / 10000^(2i/C))`` and
    ``P[t, 2i+1] = cos(t / 10000^(2i/C))``, a fixed buffer of ``max_len``×C that is not saved with
    the weights (it is recomputed from the sizes). ``learned``: a trained ``weight`` of ``max_len``×C.
    The first T rows are added to a sequence of T steps.
    """

    def __init__(self, num_features: int, mode: str = "sinusoidal", max_len: int = 1000,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if mode not in ("sinusoidal", "learned"):
            raise ValueError(f"mode must be 'sinusoidal' or 'learned', got {mode!r}")
        self.num_features, self.mode, self.max_len = num_features, mode, max_len
        self.dropout = nn.Dropout(dropout)
        if mode == "learned":
            self.weight = nn.Parameter(torch.empty(max_len, num_features))
            nn.init.normal_(self.weight, std=0.02)
        else:
            position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
            # 1 / 10000^(2i/C) for the feature pairs i
            rate = torch.pow(10000.0, -torch.arange(0, num_features, 2, dtype=torch.float32) / num_features)
            table = torch.zeros(max_len, num_features)
            table[:, 0::2] = torch.sin(position * rate)
            table[:, 1::2] = torch.cos(position * rate[: num_features // 2])
            self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code: torch.Tensor = self.weight if self.mode == "learned" else self.get_buffer("table")
        return self.dropout(x + code[: x.shape[1]])

    def extra_repr(self) -> str:
        return f"{self.num_features}, mode={self.mode!r}, max_len={self.max_len}"


__all__ = ["PositionalEncoding", "SequenceMultiheadAttention", "SequenceTransformerDecoderLayer",
           "SequenceTransformerEncoderLayer"]
