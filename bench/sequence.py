"""Benchmark: an LSTM language model through the training engine next to a bare d2l-style loop.

Same tokens (the built-in ``sentences`` set, character level, T = 35, in memory), same model
(Embedding 32 → LSTM 128 → Linear per time step, compiled from one graph; identical initial
weights), same batch size and optimizer (SGD, gradient clipping at 1 as d2l does), in one run,
interleaved round by round so machine load hits both alike. Timed: the training pass of one epoch
(validation and the generated text excluded), as tokens per second.

- **engine**: ``Trainer`` with task ``language-model``, reporting on (batch events at its 20/s
  rate, epoch events) and probes of the LSTM (hidden states and time-step gradients, every 0.5 s).
- **bare**: the same int64 tensors on the device; per step an index gather, forward, cross-entropy
  over B·T tokens, backward, clipping, SGD step; losses accumulated on the device (no per-step sync).

Budget (issue 14): engine ≥ 0.95× bare. Run: ``.venv/bin/python bench/sequence.py`` (``--rounds``,
``--train`` sequences, ``--device``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn.functional as F
from torch import nn

from core.compiler import compile_graph
from core.graph import Graph
from core.training import Callbacks, TrainConfig, Trainer
from core.training.data import open_dataset

T, BATCH, LR, CLIP = 35, 64, 1.0, 1.0


def graph(vocab: int) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [T]})
    g.add_node("Embedding", "embed", {"num_embeddings": vocab, "embedding_dim": 32})
    g.add_node("LSTM", "lstm", {"hidden_size": 128})
    g.add_node("Linear", "decoder", {"out_features": vocab})
    g.add_node("Output", "logits")
    for a, b in (("input", "embed"), ("embed", "lstm"), ("lstm", "decoder"), ("decoder", "logits")):
        g.add_edge(a, b)
    return g


def engine_epoch(data: Any, device: torch.device) -> float:
    model = compile_graph(graph(data.num_classes), seed=0)
    cfg = TrainConfig(task="language-model", dataset="sentences", epochs=1, batch_size=BATCH, lr=LR, momentum=0.0,
                      grad_clip=CLIP, device=str(device), probe_interval=0.5, generate_length=0)
    rates: list[float] = []
    trainer = Trainer(model, data, cfg, Callbacks(epoch_end=lambda m: rates.append(m.images_per_s * T),
                                                  probe=lambda _p: None))
    trainer.set_probes(["lstm"])
    summary = trainer.run()
    if summary.status != "completed":
        raise SystemExit(f"engine run {summary.status}: {summary.message}")
    return rates[0]


def bare_epoch(data: Any, device: torch.device) -> float:
    model = compile_graph(graph(data.num_classes), seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    split = data.split("train")
    x_all, y_all = split.x.to(device), split.y.to(device)
    v = data.num_classes
    gen = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    order = torch.randperm(x_all.shape[0], generator=gen).to(device)
    total = torch.zeros((), device=device)
    tokens = 0
    for i in range(0, x_all.shape[0], BATCH):
        idx = order[i:i + BATCH]
        x, y = x_all.index_select(0, idx), y_all.index_select(0, idx)
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.reshape(-1, v), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        total += loss.detach()
        tokens += y.numel()
    float(total)  # one sync at the end, as the engine's epoch end
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", type=int, default=2000, help="training sequences")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = open_dataset("sentences", task="language-model", seq_len=T, train_size=args.train, val_size=64)
    data.to(device)
    print(f"sentences: {data.train_count:,} sequences × {T} tokens, vocabulary {data.num_classes}; "
          f"batch {BATCH}; {device}; {torch.get_num_threads()} threads", flush=True)
    engine_epoch(data, device)  # warm-up (allocator, oneDNN kernels)
    bare_epoch(data, device)
    runs: dict[str, list[float]] = {"engine": [], "bare": []}
    for r in range(args.rounds):
        runs["engine"].append(engine_epoch(data, device))
        runs["bare"].append(bare_epoch(data, device))
        print(f"round {r + 1}: engine {runs['engine'][-1]:,.0f} tok/s, bare {runs['bare'][-1]:,.0f} tok/s",
              flush=True)
    engine, bare = statistics.median(runs["engine"]), statistics.median(runs["bare"])
    print(f"\n{'loop':<8}{'tokens/s (median)':>20}\n{'engine':<8}{engine:>20,.0f}\n{'bare':<8}{bare:>20,.0f}")
    print(f"engine / bare = {engine / bare:.3f} (budget ≥ 0.95)")


if __name__ == "__main__":
    main()
