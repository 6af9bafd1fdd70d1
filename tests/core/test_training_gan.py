"""GAN training (core/training/gan.py): two networks of one graph trained against each other through
the session, the run folder (metrics' GAN columns, per-epoch sample grids, the checkpoint's two
networks and fixed noise), bit-exact resume, the losses, probes of either network, and the health
checks (non-finite losses, mode collapse, the discriminator winning) under constructed conditions."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from core.project import Project
from core.training.config import TrainConfig
from core.training.data import open_dataset
from core.training.events import Callbacks, EpochMetrics, GanSamples, ProbeData
from core.training.gan import GAN_COLUMNS, GanTrainer
from core.training.gan_health import (
    discriminator_wins_warning,
    mean_pairwise_distance,
    mode_collapse_warning,
)
from core.training.runs import load_checkpoint
from core.training.session import TrainingSession, build_trainer
from templates.builder import Builder, conv_params

NOISE = (8, 1, 1)


def tiny_gan(image: tuple[int, int, int] = (3, 32, 32)) -> Project:
    """A small conv GAN for ``image`` (32×32): G 8×1×1 → 4×4 → image, D image → 4×4 → one logit."""
    c, h, _ = image
    b = Builder()
    with b.group("generator", "Generator"):
        x = b.input(NOISE, "noise")
        x = b.chain(x, [("ConvTranspose2d", "g1", conv_params(16, 4, bias=False)), ("BatchNorm2d", "gbn", None),
                        ("ReLU", "grelu", None), ("ConvTranspose2d", "g2", conv_params(c, h // 4, h // 4)),
                        ("Tanh", "gtanh", None)])
        b.output(x, "fake")
    with b.group("discriminator", "Discriminator"):
        x = b.input(image, "image")
        x = b.chain(x, [("Conv2d", "d1", conv_params(8, h // 4, h // 4)),
                        ("LeakyReLU", "dact", {"negative_slope": 0.2}), ("Conv2d", "d2", conv_params(1, 4)),
                        ("Flatten", "dflat", None)])
        b.output(x, "logit")
    return b.project("tiny GAN", {})


def gan_config(**changes: Any) -> TrainConfig:
    base: dict[str, Any] = {"task": "gan", "dataset": "shapes", "train_size": 48, "val_size": 8, "batch_size": 16,
                            "epochs": 2, "optimizer": "adam", "lr": 2e-3, "betas": (0.5, 0.999), "device": "cpu",
                            "augment": False, "probe_interval": 0.0}
    base.update(changes)
    return TrainConfig(**base)


class Recorder:
    def __init__(self) -> None:
        self.epochs: list[EpochMetrics] = []
        self.samples: list[GanSamples] = []
        self.probes: list[ProbeData] = []
        self.warnings: list[str] = []
        self.failed: list[str] = []
        self.batches: list[Any] = []

    def callbacks(self) -> Callbacks:
        return Callbacks(epoch_end=self.epochs.append, samples=self.samples.append, probe=self.probes.append,
                         warning=self.warnings.append, failed=self.failed.append, batch=self.batches.append)


def test_gan_trains_through_the_session_and_writes_its_run_folder(tmp_path: Path) -> None:
    rec = Recorder()
    run = tmp_path / "run"
    session = TrainingSession(tiny_gan(), gan_config(), rec.callbacks(), run_dir=run)
    summary = session.run()
    assert summary.status == "completed", summary.message
    assert isinstance(session.trainer, GanTrainer)
    assert session.trainer.model is session.trainer.generator  # what the GUI copies: the generator
    assert [m.epoch for m in rec.epochs] == [1, 2]
    for m in rec.epochs:
        assert m.d_loss is not None and m.g_loss is not None and m.d_real is not None and m.d_fake is not None
        assert m.train_loss == pytest.approx(m.d_loss + m.g_loss)
        assert 0.0 <= m.d_real <= 1.0 and 0.0 <= m.d_fake <= 1.0 and 0.0 <= m.train_acc <= 1.0
        assert m.val_loss is None and m.val_acc is None
    # 48 images in batches of 16: three steps an epoch, each batch event's loss the generator's
    assert rec.batches[-1].steps == 3 and rec.batches[-1].loss == rec.batches[-1].losses[-1]
    # the fixed-noise grid after each epoch (and every probe_interval: 0 here, every report)
    ends = [s for s in rec.samples if s.step == 3]
    assert [s.epoch for s in ends][-2:] == [1, 2]
    assert rec.samples[-1].images.dtype == torch.uint8 and tuple(rec.samples[-1].images.shape) == (64, 3, 32, 32)
    assert (run / "samples" / "epoch_001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "samples" / "epoch_002.png").is_file()
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert set(GAN_COLUMNS) <= set(header)
    assert len((run / "metrics.csv").read_text().splitlines()) == 3
    ckpt = load_checkpoint(run)
    assert ckpt["task"] == "gan" and ckpt["epoch"] == 2
    assert {"generator", "discriminator", "opt_g", "opt_d", "fixed_noise", "rng"} <= set(ckpt)
    assert set(ckpt["generator"]) == set(session.trainer.generator.state_dict())
    assert set(ckpt["discriminator"]) == set(session.trainer.discriminator.state_dict())
    assert tuple(ckpt["fixed_noise"].shape) == (64, *NOISE)
    assert not (run / "checkpoints" / "best.pt").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert not (run / "evaluation.json").exists()  # nothing to classify


def test_samples_are_the_generators_tanh_output_for_the_fixed_noise(tmp_path: Path) -> None:
    rec = Recorder()
    session = TrainingSession(tiny_gan(), gan_config(epochs=1), rec.callbacks(), run_dir=tmp_path / "run")
    assert session.run().status == "completed"
    trainer = session.trainer
    assert isinstance(trainer, GanTrainer)
    G = trainer.generator.eval()
    with torch.no_grad():
        expected = ((G(trainer.fixed_noise) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(rec.samples[-1].images, expected)


def test_resume_is_bit_exact(tmp_path: Path) -> None:
    straight = TrainingSession(tiny_gan(), gan_config(), Callbacks(), run_dir=tmp_path / "a")
    assert straight.run().status == "completed"
    first = TrainingSession(tiny_gan(), gan_config(epochs=1), Callbacks(), run_dir=tmp_path / "b")
    assert first.run().status == "completed"
    resumed = TrainingSession(None, None, Callbacks(), run_dir=tmp_path / "b", resume_from=tmp_path / "b",
                              overrides={"epochs": 2})
    summary = resumed.run()
    assert summary.status == "completed" and summary.epochs_done == 2
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for net in ("generator", "discriminator"):
        for key, tensor in a[net].items():
            assert torch.equal(tensor, b[net][key]), f"{net}.{key} differs after resuming"
    assert torch.equal(a["fixed_noise"], b["fixed_noise"])
    assert [h["d_loss"] for h in a["history"]] == [h["d_loss"] for h in b["history"]]
    assert (tmp_path / "b" / "samples" / "epoch_002.png").read_bytes() == \
        (tmp_path / "a" / "samples" / "epoch_002.png").read_bytes()


def test_a_health_check_that_held_before_a_resume_counts_after_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # collapse "holds" at every epoch end; a warning needs two in a row: epoch 1 (first run), epoch 2 (resumed)
    monkeypatch.setattr("core.training.gan.mode_collapse_warning", lambda epoch, *_: f"collapse at {epoch}")
    first = Recorder()
    session = TrainingSession(tiny_gan(), gan_config(epochs=1), first.callbacks(), run_dir=tmp_path / "run")
    assert session.run().status == "completed" and first.warnings == []
    assert load_checkpoint(tmp_path / "run")["health"] == {"failing": ["collapse"], "warned": []}
    second = Recorder()
    resumed = TrainingSession(None, None, second.callbacks(), run_dir=tmp_path / "run",
                              resume_from=tmp_path / "run", overrides={"epochs": 3})
    assert resumed.run().status == "completed"
    assert second.warnings == ["collapse at 2"]  # said once, at the resumed run's first epoch end


def test_hinge_loss_and_n_critic_discriminator_steps(tmp_path: Path) -> None:
    rec = Recorder()
    trainer = build_trainer(tiny_gan(), gan_config(epochs=1, gan_loss="hinge", n_critic=2), rec.callbacks())
    assert trainer.run().status == "completed"
    assert rec.batches[-1].steps == 2  # 3 batches: 2 D updates + 1 G update, then 1 + 1
    assert rec.epochs[0].d_loss is not None and rec.epochs[0].d_loss >= 0  # relu terms


def test_n_critic_builds_a_graph_through_g_only_for_the_fakes_g_learns_from() -> None:
    # 3 batches of 16 with n_critic 2: step 1 has two critic steps (the first's fakes only train D,
    # so G runs without a graph), step 2 has one batch left: its no-graph fakes are made again for G.
    trainer = build_trainer(tiny_gan(), gan_config(epochs=1, n_critic=2))
    assert isinstance(trainer, GanTrainer)
    grads: list[bool] = []
    trainer.generator.register_forward_hook(lambda *_: grads.append(torch.is_grad_enabled()))
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    assert trainer.run().status == "completed"
    # grads[0] is the start's output check and the calls after the four the epoch's sample grid
    assert grads[1:5] == [False, True, False, True]
    after = list(trainer.generator.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # both G steps learned


def test_bce_losses_match_the_definitions() -> None:
    trainer = build_trainer(tiny_gan(), gan_config(label_smoothing=0.1))
    assert isinstance(trainer, GanTrainer)
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = nn.functional.binary_cross_entropy_with_logits
    d = trainer._d_loss(real, fake)
    assert d.item() == pytest.approx((bce(real, torch.full((2,), 0.9)) + bce(fake, torch.zeros(2))).item())
    assert trainer._g_loss(fake).item() == pytest.approx(bce(fake, torch.ones(2)).item())
    hinge = build_trainer(tiny_gan(), gan_config(gan_loss="hinge"))
    assert isinstance(hinge, GanTrainer)
    assert hinge._d_loss(real, fake).item() == pytest.approx((0 + 2.0) / 2 + (1.5 + 0) / 2)
    assert hinge._g_loss(fake).item() == pytest.approx(1.25)


def test_probes_capture_nodes_of_either_network(tmp_path: Path) -> None:
    rec = Recorder()
    trainer = build_trainer(tiny_gan(), gan_config(epochs=1), rec.callbacks())
    trainer.set_probes(["g1", "d1"])
    assert trainer.run().status == "completed"
    probe = rec.probes[-1]
    assert set(probe.activations) == {"g1", "d1"}
    assert tuple(probe.activations["g1"].shape) == (4, 16, 4, 4)  # on the fixed noise
    assert tuple(probe.activations["d1"].shape) == (4, 8, 4, 4)  # on the real probe images
    assert probe.images.dtype == torch.uint8 and probe.images.shape[0] == 4


def test_other_tasks_still_refuse_two_inputs() -> None:
    from core.training.health import TrainingFailure

    with pytest.raises(TrainingFailure, match="one Input"):
        build_trainer(tiny_gan(), gan_config(task="classification"))


def test_image_shape_mismatch_is_one_sentence_naming_both() -> None:
    rec = Recorder()
    trainer = build_trainer(tiny_gan((1, 32, 32)), gan_config(), rec.callbacks())
    summary = trainer.run()
    assert summary.status == "failed"
    assert "1×32×32" in summary.message and "3×32×32" in summary.message and "\n" not in summary.message


def test_a_graph_that_is_not_two_networks_is_refused() -> None:
    from core.training.health import TrainingFailure
    from templates.classic import lenet5

    with pytest.raises(TrainingFailure, match="GAN"):
        build_trainer(lenet5(), gan_config())


# ------------------------------------------------------------------------------- health checks


class _Constant(nn.Module):
    """A generator that ignores its noise: every sample the same picture (mode collapse). ``stuck``:
    the picture cannot learn either (its only parameter does nothing)."""

    def __init__(self, stuck: bool = False, grey: float = 0.0) -> None:
        super().__init__()
        image = torch.full((1, 3, 32, 32), grey)
        self.bias = nn.Parameter(torch.zeros(()))
        if stuck:
            self.register_buffer("image", image)
        else:
            self.image = nn.Parameter(image)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.image).expand(z.shape[0], -1, -1, -1) + 0 * (z.sum() + self.bias)


class _Critic(nn.Module):
    def __init__(self, poison: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 1)
        self.poison = poison

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.poison else out


def _direct(generator: nn.Module, discriminator: nn.Module, rec: Recorder, **changes: Any) -> GanTrainer:
    cfg = gan_config(**changes)
    data = open_dataset("shapes", train_size=48, val_size=8, task="gan")
    nets = SimpleNamespace(generator=None, discriminator=None, noise_shape=NOISE, image_shape=(3, 32, 32))
    return GanTrainer(generator, discriminator, nets, data, cfg, rec.callbacks())


def test_nonfinite_losses_fail_the_run_with_advice() -> None:
    rec = Recorder()
    summary = _direct(_Constant(), _Critic(poison=True), rec).run()
    assert summary.status == "failed"
    assert "discriminator's loss became NaN at epoch 1, step 1" in summary.message
    assert "0.0002" in summary.message and rec.failed == [summary.message]


def test_mode_collapse_is_said_after_two_collapsed_epochs() -> None:
    rec = Recorder()
    assert _direct(_Constant(), _Critic(), rec, epochs=3).run().status == "completed"
    collapse = [w for w in rec.warnings if w.startswith("Mode collapse")]
    assert len(collapse) == 1 and "after epoch 2" in collapse[0]  # said once, at the second collapsed epoch


def test_mode_collapse_measure() -> None:
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(16, 3, 8, 8, generator=gen) * 2 - 1
    alike = real[:1].expand(16, -1, -1, -1) + 0.01 * torch.randn(16, 3, 8, 8, generator=gen)
    assert mode_collapse_warning(2, mean_pairwise_distance(real), mean_pairwise_distance(real)) is None
    assert mode_collapse_warning(2, mean_pairwise_distance(alike), mean_pairwise_distance(real)) is not None
    assert mean_pairwise_distance(torch.ones(1, 3)) == 0.0
    two = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert mean_pairwise_distance(two) == pytest.approx(5.0)


def test_discriminator_wins_needs_a_tiny_d_fake_and_a_climbing_generator_loss() -> None:
    climbing = [2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    warning = discriminator_wins_warning(3, 0.01, climbing, None)
    assert warning is not None and warning.startswith("The discriminator is winning: at epoch 3")
    assert discriminator_wins_warning(3, 0.2, climbing, None) is None  # D is fooled often enough
    assert discriminator_wins_warning(3, 0.01, climbing[::-1], 5.0) is None  # G's loss is falling
    assert discriminator_wins_warning(3, 0.01, [4.0, 4.0, 4.0], 3.0) is not None  # above the last epoch's


def test_discriminator_wins_is_said_during_a_run() -> None:
    """A generator that cannot change its output against a critic that learns fast: D(G(z)) → 0 and
    G's loss climbs each epoch."""
    rec = Recorder()
    trainer = _direct(_Constant(stuck=True, grey=0.9), _Critic(), rec, epochs=4, lr=0.05, optimizer="sgd")
    assert trainer.run().status == "completed"
    winning = [w for w in rec.warnings if w.startswith("The discriminator is winning")]
    assert len(winning) == 1, rec.warnings  # said once, after two epochs in a row


def test_cli_trains_the_dcgan_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    run = tmp_path / "run"
    args = ["train", "template:dcgan", "--task", "gan", "--dataset", "shapes", "--train-size", "16", "--val-size",
            "4", "--batch-size", "8", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(run)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "d_loss" in out and "g_loss" in out and "D(x)" in out and "D(G(z))" in out
    assert (run / "samples" / "epoch_001.png").is_file()
    assert load_checkpoint(run)["task"] == "gan"
    assert main(["train", "--resume", str(run), "--epochs", "2", "--json", "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["epoch"] == 2 and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(line)
    assert (run / "samples" / "epoch_002.png").is_file()


def test_trainer_steps_equal_the_dcgan_tutorial_loop() -> None:
    """Same initial weights, data order and noise: the trainer's networks after an epoch equal those of
    PyTorch's DCGAN tutorial loop written by hand (D on real and G(z).detach(), D's step, G's step
    through D on the same fakes)."""
    from core.compiler import compile_graph
    from core.gan_graph import split_gan

    cfg = gan_config(epochs=1)
    trainer = build_trainer(tiny_gan(), cfg)
    assert isinstance(trainer, GanTrainer)
    assert trainer.run().status == "completed"

    nets = split_gan(tiny_gan().graph)
    G, D = compile_graph(nets.generator, seed=cfg.seed), compile_graph(nets.discriminator, seed=cfg.seed + 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=cfg.betas)
    images = open_dataset("shapes", seed=cfg.seed, train_size=48, val_size=8, task="gan").train.images
    perm = torch.randperm(48, generator=torch.Generator().manual_seed(cfg.seed))
    torch.manual_seed(cfg.seed)
    bce = nn.functional.binary_cross_entropy_with_logits
    for i in range(0, 48, cfg.batch_size):
        real = images[perm[i:i + cfg.batch_size]].float() / 127.5 - 1
        fake = G(torch.randn(real.shape[0], *NOISE))
        d_real, d_fake = D(real).flatten(), D(fake.detach()).flatten()
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_out = D(fake).flatten()
        g_loss = bce(g_out, torch.ones_like(g_out))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    for mine, theirs in ((trainer.generator, G), (trainer.discriminator, D)):
        for (key, a), b in zip(mine.state_dict().items(), theirs.state_dict().values(), strict=True):
            assert torch.allclose(a.float(), b.float(), atol=1e-4), key
    assert trainer.history[-1].g_loss is not None
