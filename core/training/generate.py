"""Text from a language model: a prompt continued token by token (after each epoch, and in the GUI).

:func:`generate` feeds the model a window of the source's ``seq_len`` tokens (the prompt, left-padded
while it is shorter), reads the logits of the last position, samples the next token from their
softmax at ``temperature`` and slides the window on. The model runs in eval mode under ``no_grad``
and its train/eval mode is restored; sampling draws only from ``generator`` (a CPU generator), so a
caller that passes its own leaves the global random state, and with it the training, untouched.

The graph's Input has a fixed length T, so every step runs a whole window (T positions) rather
than one token with a carried hidden state: simple, and cheap at the lengths shown after an epoch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

PROMPT_SHARE = 4  # an empty prompt starts from the first T // 4 tokens of the validation text


def default_prompt(source: Any) -> list[int]:
    """The first ``T // 4`` tokens (at least one) of the validation text (training text without one)."""
    split = "val" if source.count("val") else "train"
    ids, _labels = source.preview(1, split)
    if ids.shape[0] == 0:
        return []
    return [int(v) for v in ids[0, : max(1, int(source.seq_len) // PROMPT_SHARE)].tolist()]


def generate(model: nn.Module, source: Any, prompt: str, length: int, temperature: float,
             device: torch.device | str, generator: torch.Generator | None = None) -> str:
    """The prompt and ``length`` tokens sampled after it, as text (``source.decode``).

    ``source`` is a :class:`core.training.data.tokens.TokenSource` (its ``seq_len``, ``vocab``,
    ``encode`` and ``decode``); ``prompt`` ``""`` starts from the validation text's first tokens
    (:func:`default_prompt`). ``temperature`` > 0 divides the logits (lower: likelier tokens).
    """
    import torch

    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    ids = source.encode(prompt) if prompt else default_prompt(source)
    if length <= 0:
        return str(source.decode(ids))
    dev = torch.device(device)
    t = int(source.seq_len)
    vocab = list(source.vocab)
    has_pad = "<pad>" in vocab
    pad = vocab.index("<pad>") if has_pad else 0
    context = torch.full((1, t), pad, dtype=torch.int64, device=dev)
    start = ids[-t:]
    if start:
        context[0, t - len(start):] = torch.as_tensor(start, dtype=torch.int64, device=dev)
    out = list(ids)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(length):
                result = model(context)
                logits = result[0] if isinstance(result, tuple | list) else result
                last = logits[0, -1].double().cpu()
                if has_pad and last.shape[0] > 1:  # padding only fills the window: never a next token
                    last[pad] = -math.inf
                scaled = last / temperature
                if bool(torch.isfinite(scaled.max())):
                    probs = torch.softmax(scaled, dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=generator))
                else:  # a temperature so low that the logits overflow: the likeliest token
                    token = int(last.argmax())
                out.append(token)
                context = torch.roll(context, -1, dims=1)
                context[0, -1] = token
    finally:
        model.train(was_training)
    return str(source.decode(out))


__all__ = ["default_prompt", "generate"]
