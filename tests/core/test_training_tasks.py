"""The engine under the token tasks: a language model (Embedding → LSTM → Linear) and a sequence
classifier train through the same session as images; perplexity, generated text, bit-exact
resume, the probes' attention maps and time-step gradients, and plain refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from core.graph import Graph
from core.project import Project
from core.training import Callbacks, TrainConfig, Trainer, seed_everything
from core.training.data import open_dataset, synthetic_source
from core.training.events import BatchProgress, EpochMetrics
from core.training.generate import generate
from core.training.probes import Prober
from core.training.session import TrainingSession

T = 12  # sequence length of the test models (the graph's Input)


def lm_graph(vocab: int, t: int = T, out_features: int | None = None) -> Graph:
    """Token ids → Embedding → LSTM → Linear per time step (the d2l RNN language model, tiny)."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [t]})
    g.add_node("Embedding", "embed", {"num_embeddings": vocab, "embedding_dim": 12})
    g.add_node("LSTM", "lstm", {"hidden_size": 24})
    g.add_node("Linear", "decoder", {"out_features": out_features or vocab})
    g.add_node("Output", "logits")
    g.add_edge("input", "embed")
    g.add_edge("embed", "lstm")
    g.add_edge("lstm", "decoder")
    g.add_edge("decoder", "logits")
    return g


def classifier_graph(vocab: int, classes: int, t: int) -> Graph:
    """Token ids → Embedding → LSTM, whose last hidden state (h_n) is flattened into a Linear head."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [t]})
    g.add_node("Embedding", "embed", {"num_embeddings": vocab, "embedding_dim": 8})
    g.add_node("LSTM", "lstm", {"hidden_size": 16})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "head", {"out_features": classes})
    g.add_node("Output", "out")
    g.add_edge("input", "embed")
    g.add_edge("embed", "lstm")
    g.add_edge("lstm", "flat", from_port=1)
    g.add_edge("flat", "head")
    g.add_edge("head", "out")
    return g


def lm_config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"task": "language-model", "dataset": "sentences", "train_size": 192, "val_size": 48,
                            "epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "device": "cpu",
                            "generate_length": 15}
    base.update(kw)
    return TrainConfig(**base)


def sentences(seed: int = 0) -> Any:
    return open_dataset("sentences", task="language-model", seq_len=T, train_size=192, val_size=48, seed=seed)


def events() -> tuple[dict[str, list[Any]], Callbacks]:
    ev: dict[str, list[Any]] = {k: [] for k in ("epoch_end", "warning", "failed", "finished", "probe", "batch")}
    return ev, Callbacks(**{k: v.append for k, v in ev.items()})


def test_language_model_trains_with_falling_perplexity(tmp_path: Path) -> None:
    vocab = sentences().num_classes
    ev, callbacks = events()
    session = TrainingSession(Project(graph=lm_graph(vocab), name="lm", training={}), lm_config(epochs=3),
                              callbacks, run_dir=tmp_path / "run")
    summary = session.run()
    assert summary.status == "completed", ev["failed"]
    epochs: list[EpochMetrics] = ev["epoch_end"]
    ppl = [m.val_perplexity for m in epochs]
    assert all(p is not None for p in ppl)
    assert ppl[2] < ppl[1] < ppl[0] < vocab  # better than guessing uniformly, and better each epoch
    assert epochs[-1].val_perplexity == pytest.approx(torch.tensor(epochs[-1].val_loss).exp().item())
    assert epochs[0].train_perplexity is not None and epochs[0].confusion == ()
    assert summary.best_val_perplexity == pytest.approx(ppl[2]) and summary.best_epoch == 3
    val_ids, _ = sentences().preview(1, "val")
    prompt = sentences().decode(val_ids[0, : T // 4])  # no prompt given: the validation text's first tokens
    for m in epochs:  # the prompt and 15 tokens (characters, or the 5 of an "<unk>")
        assert m.generated.startswith(prompt) and len(m.generated) >= len(prompt) + 15
        line = m.json_line()
        assert line["val_perplexity"] == pytest.approx(m.val_perplexity, rel=1e-6)
        assert line["generated"] == m.generated
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").read_text().splitlines()))
    assert [float(r["val_perplexity"]) for r in rows] == pytest.approx(ppl)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["task"] == "language-model" and config["dataset"]["seq_len"] == T
    assert not (tmp_path / "run" / "evaluation.json").exists()  # no class table for a language model


def test_language_model_resume_after_stop_is_bit_exact(tmp_path: Path) -> None:
    vocab = sentences().num_classes
    config = lm_config(epochs=3, seed=5, optimizer="sgd", lr=0.5)
    from core.compiler import compile_graph

    def model() -> nn.Module:
        return compile_graph(lm_graph(vocab), seed=5)

    seed_everything(5)
    ev_full, cb = events()
    Trainer(model(), sentences(), config, cb, run_dir=tmp_path / "full").run()

    seed_everything(5)
    holder: list[Trainer] = []

    def stop_in_epoch_2(p: BatchProgress) -> None:
        if p.epoch == 2 and p.step >= 2:
            holder[0].stop()

    trainer = Trainer(model(), sentences(), config, Callbacks(batch=stop_in_epoch_2), run_dir=tmp_path / "part")
    holder.append(trainer)
    assert trainer.run().status == "stopped"

    seed_everything(999)  # resuming must restore every random state it needs
    ev_res, cb = events()
    resumed = Trainer(model(), sentences(), config, cb, run_dir=tmp_path / "part", resume_from=tmp_path / "part")
    assert resumed.run().status == "completed"

    def key(m: EpochMetrics) -> tuple[Any, ...]:
        return m.epoch, m.train_loss, m.val_loss, m.val_acc, m.val_perplexity, m.generated

    assert [key(m) for m in ev_res["epoch_end"]] == [key(m) for m in ev_full["epoch_end"][1:]]


def test_sequence_classifier_trains_on_brackets() -> None:
    data = open_dataset("brackets", task="sequence-classification", seq_len=16, train_size=256, val_size=64)
    project = Project(graph=classifier_graph(data.vocab_size, data.num_classes, 16), name="seq", training={})
    config = TrainConfig(task="sequence-classification", dataset="brackets", train_size=256, val_size=64, epochs=2,
                         batch_size=32, optimizer="adam", lr=0.01, device="cpu")
    ev, callbacks = events()
    summary = TrainingSession(project, config, callbacks, data=data).run()
    assert summary.status == "completed", ev["failed"]
    last: EpochMetrics = ev["epoch_end"][-1]
    k = data.num_classes
    assert last.val_perplexity is None and last.generated == ""
    assert len(last.confusion) == k and sum(map(sum, last.confusion)) == 64
    assert sum(last.confusion[i][i] for i in range(k)) == round(last.val_acc * 64)


def test_wrong_modality_is_refused_in_one_sentence() -> None:
    images = synthetic_source((1, 6, 6), 4, train=32, val=8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4))
    _ev, callbacks = events()
    summary = Trainer(model, images, lm_config(), callbacks).run()
    assert summary.status == "failed"
    assert summary.message == ("The language-model task needs token sequences (sentences, text), and "
                               "synthetic:1,6,6,4 is images: choose one of its datasets or the task that fits "
                               "the data.")
    _ev, callbacks = events()
    summary = Trainer(nn.Linear(T, 4), sentences(), TrainConfig(device="cpu"), callbacks).run()
    assert summary.status == "failed" and summary.message.startswith("The classification task needs images")


def test_output_that_is_not_t_by_v_says_what_a_language_model_needs() -> None:
    from core.compiler import compile_graph

    data = sentences()
    v = data.num_classes
    _ev, callbacks = events()
    summary = Trainer(compile_graph(lm_graph(v, out_features=10)), data, lm_config(), callbacks).run()
    assert summary.status == "failed"
    assert summary.message == (f"The network's output is {T}×10 values per sequence but a language model needs "
                               f"T×V = {T}×{v} (a Linear applied per time step with out_features {v}).")


class KeepsAttention(nn.Module):
    """A stand-in for an attention layer that keeps its weights when asked (``keep_attention``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.proj(x) @ x.transpose(1, 2) / x.shape[-1] ** 0.5
        weights = scores.softmax(-1)
        if self.keep_attention:
            self.last_attention = weights[:, None].detach()  # (B, heads=1, T, S)
        return weights @ x


class TinyLM(nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.attn = KeepsAttention(8)
        self.lstm = nn.LSTM(8, 10, batch_first=True)
        self.decoder = nn.Linear(10, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.attn(self.embed(x)))
        return self.decoder(out)


def test_probe_returns_attention_hidden_states_and_time_grad_norms() -> None:
    torch.manual_seed(0)
    vocab, samples = 7, 3
    model = TinyLM(vocab)
    x = torch.randint(0, vocab, (samples, T))
    y = torch.randint(0, vocab, (samples, T))
    prober = Prober(sequence=True)
    prober.set_nodes(["lstm", "attn"])
    loss = nn.CrossEntropyLoss()
    data = prober.capture(model, x, x, tuple(y[:, -1].tolist()), 1, 1, 1, target="next-token",
                          loss=lambda out, target: loss(out.reshape(-1, vocab), target.reshape(-1)), y=y,
                          tokens=(("a",) * T,) * samples)
    assert data.attention["attn"].shape == (samples, 1, T, T)
    assert data.attention["attn"].sum(-1) == pytest.approx(torch.ones(samples, 1, T))
    assert model.attn.keep_attention is False and model.attn.last_attention is None  # only for the probe pass
    grads = data.time_grad_norms["lstm"]
    assert grads.shape == (T,) and grads.dtype == torch.float32 and bool((grads > 0).all())
    assert all(p.grad is None for p in model.parameters())  # the optimizer's gradients are not touched
    assert data.activations["lstm"].shape == (samples, T, 10) and data.channels["lstm"] == 10
    assert data.probabilities.shape == (samples, vocab)  # the last position's next-token distribution
    assert data.tokens[0] == ("a",) * T
    # the gradient per step matches the one computed by hand through the LSTM's output
    out, _ = model.lstm(model.attn(model.embed(x)))
    out.retain_grad()
    model.eval()
    loss(model.decoder(out).reshape(-1, vocab), y.reshape(-1)).backward()
    assert grads == pytest.approx(out.grad.pow(2).sum(dim=(0, 2)).sqrt(), rel=1e-4)


def test_engine_probes_a_language_model_with_tokens_and_time_gradients() -> None:
    from core.compiler import compile_graph

    data = sentences()
    ev, callbacks = events()
    trainer = Trainer(compile_graph(lm_graph(data.num_classes)), data, lm_config(epochs=1, probe_interval=0.0,
                                                                               probe_samples=2), callbacks)
    trainer.set_probes(["lstm", "decoder"])
    assert trainer.run().status == "completed"
    probe = ev["probe"][-1]
    assert probe.images.dtype == torch.int64 and probe.images.shape == (2, T)
    assert len(probe.tokens) == 2 and "".join(probe.tokens[0]) == data.decode(probe.images[0])
    assert probe.time_grad_norms["lstm"].shape == (T,)
    assert probe.activations["lstm"].shape == (2, T, 24)
    assert probe.probabilities.shape == (2, data.num_classes)


def test_generate_is_repeatable_and_leaves_the_global_random_state() -> None:
    from core.compiler import compile_graph

    data = sentences()
    model = compile_graph(lm_graph(data.num_classes), seed=0)
    state = torch.get_rng_state()
    a = generate(model, data, "the ", 20, 0.8, "cpu", torch.Generator().manual_seed(3))
    b = generate(model, data, "the ", 20, 0.8, "cpu", torch.Generator().manual_seed(3))
    assert a == b and a.startswith("the ") and len(a) >= 24  # 20 characters (an "<unk>" reads as 5)
    assert torch.equal(torch.get_rng_state(), state)
    assert generate(model, data, "the", 0, 1.0, "cpu") == "the"
    with pytest.raises(ValueError, match="temperature"):
        generate(model, data, "the", 5, 0.0, "cpu")
    # a temperature whose scaled logits overflow picks the likeliest token, as the limit T → 0 does
    cold = [generate(model, data, "the ", 8, t, "cpu", torch.Generator().manual_seed(s)) for t, s in
            ((1e-300, 1), (1e-300, 2), (1e-320, 3))]
    assert cold[0] == cold[1] == cold[2] and cold[0].startswith("the ")


def test_language_model_early_stopping_speaks_of_perplexity() -> None:
    """The best epoch of a language model is its lowest validation loss: weights that do not move
    (a learning rate far below float precision) never improve on epoch 1."""
    from core.compiler import compile_graph

    data = sentences()
    ev, callbacks = events()
    config = lm_config(epochs=4, optimizer="sgd", momentum=0.0, lr=1e-30, early_stopping=2, generate_length=0)
    summary = Trainer(compile_graph(lm_graph(data.num_classes)), data, config, callbacks).run()
    assert summary.status == "early_stopped" and summary.best_epoch == 1 and summary.epochs_done == 3
    (warning,) = [w for w in ev["warning"] if w.startswith("Early stopping")]
    ppl = ev["epoch_end"][0].val_perplexity
    assert warning == (f"Early stopping: validation perplexity has not improved for 2 epochs "
                       f"(best {ppl:.2f} at epoch 1).")
    assert all(m.generated == "" for m in ev["epoch_end"])  # generate_length 0: no text


def test_perplexity_is_of_the_plain_cross_entropy_under_label_smoothing() -> None:
    """Label smoothing raises the loss the model trains on, not the perplexity it reaches: that is
    exp of the plain cross-entropy, as main.py evaluate measures it."""
    from core.compiler import compile_graph
    from core.training.evaluate import evaluate_tokens

    data = sentences()
    ev, callbacks = events()
    trainer = Trainer(compile_graph(lm_graph(data.num_classes)), data, lm_config(epochs=1, label_smoothing=0.3,
                                                                                generate_length=0), callbacks)
    assert trainer.run().status == "completed"
    m: EpochMetrics = ev["epoch_end"][0]
    assert m.val_loss is not None and m.val_perplexity is not None
    assert m.val_perplexity < torch.tensor(m.val_loss).exp().item()
    assert m.val_perplexity == pytest.approx(evaluate_tokens(trainer.model, data).perplexity, rel=1e-5)
