"""torch modules behind the vision transformers' own attention layers (:mod:`core.layers.vision`).

:class:`ShiftedWindowAttention` is Swin's windowed self-attention over an H×W×C map (and, with
``cosine``, Swin V2's scaled cosine attention with a continuous position bias);
:class:`RelativePositionAttention` is MaxViT's attention over groups of P tokens with a learned
relative position bias. Their parameter and buffer names are torchvision's (``qkv``, ``proj``,
``relative_position_bias_table``, ``relative_position_index``, ``logit_scale``, ``cpb_mlp``,
``to_qkv``, ``merge`` …), so torchvision's weights load into an imported model unchanged, and each
computes what torchvision's module computes, step for step, so the outputs are the same to the bit.

Like :mod:`core.layers.extra_modules`, they live apart from the declarations so that importing
:mod:`core.layers` never imports torch, and each class is self-contained (only ``torch``, ``nn``
and ``F``), so the code exporter can copy its source into a generated file that needs nothing else.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ShiftedWindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows of an H×W×C map (Swin, Liu et al. 2021).

    The map is padded to whole windows, cyclically shifted by ``shift_size`` (so that alternate
    blocks see across the previous blocks' window borders; positions that the shift brought
    together from opposite edges are masked apart), cut into windows of ``window_size``, and each
    window attends within itself with a learned bias per relative position and head. The windows
    are then put back, the shift undone and the padding cropped: the output has the input's shape.

    ``cosine`` is Swin V2: attention logits are cosine similarities times a learned per-head scale
    (``logit_scale``, at most 100), and the position bias comes from a small MLP (``cpb_mlp``) of
    log-spaced relative coordinates instead of a table; the key's bias is never used.
    """

    relative_position_index: torch.Tensor
    relative_coords_table: torch.Tensor

    def __init__(self, dim: int, window_size: int | list[int] | tuple[int, int] = 7,
                 shift_size: int | list[int] | tuple[int, int] = 0, num_heads: int = 3, qkv_bias: bool = True,
                 proj_bias: bool = True, attention_dropout: float = 0.0, dropout: float = 0.0,
                 cosine: bool = False) -> None:
        super().__init__()
        self.dim = dim
        # one int for both axes, like a convolution's kernel_size
        self.window_size = [int(w) for w in (window_size if isinstance(window_size, (list, tuple)) else
                                             (window_size, window_size))]
        self.shift_size = [int(s) for s in (shift_size if isinstance(shift_size, (list, tuple)) else
                                            (shift_size, shift_size))]
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.cosine = cosine
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        wh, ww = self.window_size
        span_h, span_w = 2 * wh - 1, 2 * ww - 1  # relative offsets along each axis
        if cosine:
            self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))
            self.cpb_mlp = nn.Sequential(nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True),
                                         nn.Linear(512, num_heads, bias=False))
            # each relative offset, scaled to ±8 and log-spaced: what the MLP turns into a bias per head
            dh = torch.arange(-(wh - 1), wh, dtype=torch.float32)
            dw = torch.arange(-(ww - 1), ww, dtype=torch.float32)
            table = torch.stack(torch.meshgrid([dh, dw], indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
            table[:, :, :, 0] /= wh - 1
            table[:, :, :, 1] /= ww - 1
            table *= 8
            table = torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / 3.0
            self.register_buffer("relative_coords_table", table)
        else:
            self.relative_position_bias_table = nn.Parameter(torch.zeros(span_h * span_w, num_heads))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # token a = (i, j) and token b = (k, l) of a window: their offset's row in the table
        rows = torch.arange(wh).repeat_interleave(ww)
        cols = torch.arange(ww).repeat(wh)
        index = (rows[:, None] - rows[None, :] + wh - 1) * span_w + (cols[:, None] - cols[None, :] + ww - 1)
        self.register_buffer("relative_position_index", index.flatten())
        for m in self.modules():  # Swin's initialisation of every linear layer
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if cosine and qkv_bias:
            with torch.no_grad():
                self.qkv.bias[dim:2 * dim].zero_()

    def position_bias(self) -> torch.Tensor:
        """The bias added to the attention logits: heads × N × N for the N tokens of a window, batch axis 1."""
        n = self.window_size[0] * self.window_size[1]
        if self.cosine:
            table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        else:
            table = self.relative_position_bias_table
        bias = table[self.relative_position_index].view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)
        return 16 * torch.sigmoid(bias) if self.cosine else bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        wh, ww = self.window_size
        pad_h, pad_w = (wh - h % wh) % wh, (ww - w % ww) % ww
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        ph, pw = h + pad_h, w + pad_w
        # a window as large as the (padded) map has nothing to shift across
        sh = 0 if wh >= ph else self.shift_size[0]
        sw = 0 if ww >= pw else self.shift_size[1]
        if sh + sw > 0:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        rows, cols, n = ph // wh, pw // ww, wh * ww
        windows = rows * cols
        x = x.view(b, rows, wh, cols, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b * windows, n, c)

        qkv_bias: torch.Tensor | None = self.qkv.bias
        if self.cosine and qkv_bias is not None:  # V2 learns no key bias: that third is always zero
            qkv_bias = qkv_bias.clone()
            qkv_bias[c:2 * c].zero_()
        heads = self.num_heads
        qkv = F.linear(x, self.qkv.weight, qkv_bias)
        qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.cosine:
            attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            attn = attn * torch.clamp(self.logit_scale, max=4.605170185988092).exp()  # log(100)
        else:
            q = q * (c // heads) ** -0.5
            attn = q.matmul(k.transpose(-2, -1))
        attn = attn + self.position_bias()
        if sh + sw > 0:
            attn = attn.view(b, windows, heads, n, n) + self.shift_mask(ph, pw, sh, sw, x.dtype, x.device)
            attn = attn.view(-1, heads, n, n)
        attn = F.softmax(attn, dim=-1)
        attn = F.dropout(attn, p=self.attention_dropout, training=self.training)

        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), c)
        x = F.linear(x, self.proj.weight, self.proj.bias)
        x = F.dropout(x, p=self.dropout, training=self.training)
        x = x.view(b, rows, cols, wh, ww, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if sh + sw > 0:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()

    def shift_mask(self, ph: int, pw: int, sh: int, sw: int, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
        """-100 where two tokens of a shifted window came from different regions of the map, else 0.

        After the shift, the last ``window`` rows (columns) hold two regions, split ``shift`` from the
        end; every position gets the number of its region, and tokens of one window attend to each
        other only when their numbers agree. Shaped 1 × windows × 1 × N × N to add to the logits.
        """
        wh, ww = self.window_size
        r = torch.arange(ph, device=device)
        q = torch.arange(pw, device=device)
        # an axis without a shift is one region (torchvision's slices then cover it whole)
        region_h = ((r >= ph - wh).long() + (r >= ph - sh).long()) * (sh > 0)
        region_w = ((q >= pw - ww).long() + (q >= pw - sw).long()) * (sw > 0)
        region = region_h[:, None] * 3 + region_w[None, :]
        region = region.view(ph // wh, wh, pw // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
        apart = region[:, None, :] != region[:, :, None]
        mask = torch.zeros(apart.shape, dtype=dtype, device=device).masked_fill(apart, -100.0)
        return mask.unsqueeze(1).unsqueeze(0)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, window_size={self.window_size}, shift_size={self.shift_size}, "
                f"num_heads={self.num_heads}, cosine={self.cosine}")


class RelativePositionAttention(nn.Module):
    """Multi-head self-attention within each of G groups of P tokens, with a learned relative position bias
    (MaxViT's block and grid attention, Tu et al. 2022).

    The P tokens of a group are a ``window_size`` patch of the map, s×s by default (MaxViT's
    window, or its grid of positions spread over the map); each head adds a learned bias per
    relative offset of two tokens, from a (2h−1)(2w−1) table. As in torchvision, the keys are
    scaled by ``feat_dim ** -0.5`` (the whole feature width, not a head's). Input and output are
    G×P×D per sample.
    """

    relative_position_index: torch.Tensor

    def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int,
                 window_size: int | list[int] | tuple[int, int] | None = None) -> None:
        super().__init__()
        if feat_dim % head_dim != 0:
            raise ValueError(f"feat_dim: {feat_dim} must be divisible by head_dim: {head_dim}")
        if window_size is None:  # the squarest patch that holds the tokens: s×s for MaxViT's s² tokens
            wh = int(max_seq_len ** 0.5 + 0.5)
            while wh * wh > max_seq_len or max_seq_len % wh:
                wh -= 1
            wh, ww = wh, max_seq_len // wh
        elif isinstance(window_size, int):
            wh = ww = window_size
        else:
            wh, ww = int(window_size[0]), int(window_size[1])
        if wh * ww != max_seq_len:
            raise ValueError(f"window_size {wh}×{ww} does not hold max_seq_len {max_seq_len} tokens")
        self.feat_dim = feat_dim
        self.n_heads = feat_dim // head_dim
        self.head_dim = head_dim
        self.max_seq_len = max_seq_len
        self.window_size = None if window_size is None else [wh, ww]
        self.to_qkv = nn.Linear(feat_dim, self.n_heads * head_dim * 3)
        self.scale_factor = feat_dim ** -0.5
        self.merge = nn.Linear(self.n_heads * head_dim, feat_dim)
        span_w = 2 * ww - 1
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * wh - 1) * span_w, self.n_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # token a = (i, j) and token b = (k, l) of a group: their offset's row in the table
        rows = torch.arange(wh).repeat_interleave(ww)
        cols = torch.arange(ww).repeat(wh)
        index = (rows[:, None] - rows[None, :] + wh - 1) * span_w + (cols[:, None] - cols[None, :] + ww - 1)
        self.register_buffer("relative_position_index", index)
        for m in (self.to_qkv, self.merge):  # MaxViT's initialisation of its linear layers
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, g, p, d = x.shape
        heads, dh = self.n_heads, self.head_dim
        q, k, v = torch.chunk(self.to_qkv(x), 3, dim=-1)
        q = q.reshape(b, g, p, heads, dh).permute(0, 1, 3, 2, 4)
        k = k.reshape(b, g, p, heads, dh).permute(0, 1, 3, 2, 4)
        v = v.reshape(b, g, p, heads, dh).permute(0, 1, 3, 2, 4)
        k = k * self.scale_factor
        scores = torch.einsum("B G H I D, B G H J D -> B G H I J", q, k)
        n = self.max_seq_len
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        scores = F.softmax(scores + bias.permute(2, 0, 1).contiguous().unsqueeze(0), dim=-1)
        out = torch.einsum("B G H I J, B G H J D -> B G H I D", scores, v)
        return self.merge(out.permute(0, 1, 3, 2, 4).reshape(b, g, p, d))

    def extra_repr(self) -> str:
        return (f"feat_dim={self.feat_dim}, head_dim={self.head_dim}, max_seq_len={self.max_seq_len}, "
                f"window_size={self.window_size}")
