"""Adversarial training of a GAN project's two networks: :class:`GanTrainer`.

A GAN project holds a generator G and a discriminator D on one canvas
(:func:`core.gan_graph.split_gan`); :func:`build_gan_trainer` compiles each on its own and opens the
task's image dataset (labels ignored). :class:`GanTrainer` is a :class:`~core.training.engine.Trainer`
— the same ``run()`` that never raises past its documented failures, ``stop``/``pause``/``resume``/
``set_probes`` from any thread, the same run folder, events and device handling — whose loop trains
the two networks against each other:

- one **step** is ``n_critic`` discriminator updates, each on its own batch of real images (scaled to
  [-1, 1], the range of the generator's Tanh) and a fresh batch of fakes G(z), z ~ N(0, 1), then one
  generator update through D on the last of those fakes (DCGAN's loop; D's weights take no gradient
  there);
- losses (``gan_loss``): ``bce``, the non-saturating loss with logits — D: BCE(D(x), 1 − label_smoothing)
  + BCE(D(G(z)), 0), G: BCE(D(G(z)), 1) — or ``hinge`` — D: relu(1 − D(x)) + relu(1 + D(G(z))),
  G: −D(G(z));
- augmentation of the real images: the dataset's flips (cifar10, folder) but random crops only when
  ``crop_padding`` is set (zero-padded crops would teach the generator black borders);
- two optimizers with the run's settings (:func:`~core.training.optim.build_optimizer` on each network,
  its own learning-rate multipliers) and two schedules driven by the same step count.

What it reports: ``batch`` events carry the generator's loss (``loss`` and ``losses``); each epoch's
:class:`~core.training.events.EpochMetrics` has ``d_loss``, ``g_loss``, ``d_real`` = D(x) and
``d_fake`` = D(G(z)) (means of sigmoid(D's logit) over the epoch, D(G(z)) taken at the
discriminator's update), ``train_loss`` = d_loss + g_loss and ``train_acc`` = the share of real and
generated images the discriminator classifies right (logit > 0 means "real"); there is no validation
(``val_*`` are ``None``) and no best epoch (no ``best.pt``). The generator's output for a fixed noise
(seeded by the run's seed, kept in the checkpoint) is sent as :class:`~core.training.events.GanSamples`
every ``probe_interval`` seconds (held back so that it takes at most 2.5 % of the run: the
live grid is always on, probes only when asked for) and after every epoch, when it is also saved as
``RUN_DIR/samples/epoch_NNN.png``. Samples are made
in eval mode (BatchNorm's running statistics), so they never change the training state: a resumed
run is bit-exact with an uninterrupted one.

Probes: probed nodes of either network are captured — generator nodes on the first
``probe_samples`` fixed noise vectors, discriminator nodes on real probe images — and merged into
one :class:`~core.training.events.ProbeData`, whose images are the real probe images when a
discriminator node is probed, else the generated ones.

``model`` is the generator (the GUI copies it for its weights and predictions; exporting it alone is
what a GAN is for); ``discriminator`` the other. Health checks are :mod:`core.training.gan_health`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.training.config import TrainConfig
from core.training.data import DataSource
from core.training.data.base import Augment
from core.training.devices import resolve_device
from core.training.engine import REPORT_INTERVAL_S, Trainer, default_augment, device_name, modality_problem
from core.training.events import BatchProgress, Callbacks, EpochMetrics, GanSamples, ProbeData, RunInfo
from core.training.gan_health import (
    discriminator_wins_warning,
    gan_nonfinite_message,
    mean_pairwise_distance,
    mode_collapse_warning,
)
from core.training.health import TrainingFailure
from core.training.optim import LRSchedule, build_optimizer
from core.training.probes import ProbeCadence, Prober
from core.training.runs import (
    CHECKPOINT_FORMAT,
    METRIC_COLUMNS,
    RunFolder,
    RunFolderError,
    load_checkpoint,
    mark_running,
    rng_state,
    set_rng_state,
)

SAMPLE_COUNT = 64  # fixed-noise samples in the grid (8×8)
SAMPLE_HOLD = 39  # the next live grid waits 39× the last one's time: grids take ≤ 2.5 % of the run
GAN_COLUMNS = ("d_loss", "g_loss", "d_real", "d_fake")


class GanFolder(RunFolder):
    """A GAN's run folder: ``metrics.csv`` adds :data:`GAN_COLUMNS`, and ``samples/`` holds the grids."""

    def write_metrics(self, rows: Any) -> None:
        import csv
        import io

        from core.project import atomic_write_text

        columns = (*METRIC_COLUMNS, *GAN_COLUMNS)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    def sample_path(self, epoch: int) -> Path:
        return self.path / "samples" / f"epoch_{epoch:03d}.png"


class GanTrainer(Trainer):
    """Trains ``generator`` against ``discriminator`` on ``data``'s images (see the module docstring).

    ``networks`` is the :class:`core.gan_graph.GanNetworks` of the graph (its two sub-graphs give each
    optimizer its learning-rate multipliers and tell the probes which network a node is in).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, networks: Any, data: DataSource,
                 config: TrainConfig, callbacks: Callbacks | None = None, *, run_dir: str | Path | None = None,
                 project: dict[str, Any] | None = None, graph: Any = None,
                 resume_from: str | Path | None = None, dist: Any = None) -> None:
        super().__init__(generator, data, config, callbacks, run_dir=run_dir, project=project, analysis=None,
                         graph=graph, resume_from=resume_from, dist=dist)
        self.generator = generator
        self.discriminator = discriminator
        self.networks = networks
        self.noise_shape = tuple(int(v) for v in networks.noise_shape)
        self._warned: set[str] = set()
        self._failing: set[str] = set()  # the health checks that held at the last epoch's end

    # ------------------------------------------------------------------------------------ setup

    def _setup(self) -> None:
        cfg = self.cfg
        if self._folder is not None:  # the engine opened a plain one: a GAN's has its own columns and samples
            self._folder = GanFolder(self._folder.path)
        if self.dist is not None and self.dist.world > 1:
            raise TrainingFailure("GAN training runs in one process: start it without torchrun.")
        self.device = torch.device("cpu")
        self._device_name, self._amp = "CPU", "off"
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self._device_name = device_name(self.device)
        self.notes: list[str] = []
        self._amp = self._amp_mode()
        self.world, self.rank = 1, 0
        refused = modality_problem(self.task, self.data)
        if refused is not None:
            raise TrainingFailure(refused)
        image = tuple(int(v) for v in self.networks.image_shape)
        have = tuple(int(v) for v in self.data.sample_shape)
        if image != have:
            raise TrainingFailure(
                f"The discriminator's Input takes {'×'.join(map(str, image))} images but {self.data.name}'s are "
                f"{'×'.join(map(str, have))}: set the discriminator's Input (and the generator's output) to "
                f"[{', '.join(map(str, have))}], or choose a dataset of {'×'.join(map(str, image))} images.")
        if cfg.compile:
            self.notes.append("torch.compile is not used for GANs; training without it.")
        self._input_view = None
        self._channels_last = self._use_channels_last()
        self.data.to(self.device, channels_last=self._channels_last)
        G, D = self.generator.to(self.device), self.discriminator.to(self.device)
        # Real images in [-1, 1]: the stream normalises with the data's mean/std, and one
        # multiply-add per channel maps that to u/127.5 − 1 (the source is not changed: the GUI
        # may keep it for another run).
        mean = torch.tensor(self.data.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.data.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._scale, self._shift = 2 * std, 2 * mean - 1
        self.fixed_noise = torch.randn((SAMPLE_COUNT, *self.noise_shape),
                                       generator=torch.Generator().manual_seed(cfg.seed + 1)).to(self.device)
        self._check_forward()
        if self._channels_last:
            G.to(memory_format=torch.channels_last)
            D.to(memory_format=torch.channels_last)
        self.opt_g = build_optimizer(G, cfg, self.networks.generator)
        self.opt_d = build_optimizer(D, cfg, self.networks.discriminator)
        self.optimizer = self.opt_g  # what the engine's helpers (out-of-memory cleanup) read
        self._d_params = [p for p in D.parameters() if p.requires_grad]
        aug = default_augment(cfg, self.data)
        # Zero-padded random crops would teach the generator black borders: only flips by default.
        self.augment = Augment(crop_padding=(cfg.crop_padding or 0) if cfg.augment else 0, hflip=aug.hflip)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self._batches = len(self.data.batches("train", cfg.batch_size, self.device, None, Augment()))
        self.steps = math.ceil(self._batches / cfg.n_critic)
        self.schedule_g = LRSchedule(self.opt_g, cfg, self.steps)
        self.schedule_d = LRSchedule(self.opt_d, cfg, self.steps)
        self.schedule = self.schedule_g
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self._amp == "fp16")
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self._amp == "fp16")
        self.start_epoch = 1
        self.best_epoch, self.best_acc, self.best_loss = None, None, None
        self.best_miou: float | None = None
        if self.resume_from is not None:
            self._load(self.resume_from)
        split = "val" if self.data.val_count else "train"
        images, labels = self.data.preview(cfg.probe_samples, split)
        self._probe_images, self._probe_labels = images, tuple(labels)
        self._probe_x = self._real_from_uint8(images)
        reals, _ = self.data.preview(SAMPLE_COUNT, "train")
        self._real_spread = mean_pairwise_distance(reals.float() / 127.5 - 1)
        if self._folder is not None:
            self._folder.create()
            mark_running(self._folder)
            self._folder.write_json("config.json", {"training": cfg.to_dict(), "dataset": self.data.describe(),
                                                    "device": str(self.device), "world_size": 1})
            if self.project is not None:
                self._folder.write_json("graph.json", self.project)
            self._folder.write_metrics([m.to_dict() for m in self.history])
        params = sum(p.numel() for m in (G, D) for p in m.parameters())
        trainable = sum(p.numel() for m in (G, D) for p in m.parameters() if p.requires_grad)
        self._emit("run_started", RunInfo(
            device=str(self.device), device_name=self._device_name, amp=self._amp, dataset=self.data.describe(),
            epochs=cfg.epochs, start_epoch=self.start_epoch, steps_per_epoch=self.steps, batch_size=cfg.batch_size,
            world_size=1, params=params, trainable_params=trainable,
            run_dir=str(self.run_dir) if self.run_dir else None, config=cfg.to_dict(), notes=tuple(self.notes)))
        for note in self.notes:
            self._warn(note)

    def _use_channels_last(self) -> bool:
        if self.cfg.channels_last is not None:
            return bool(self.cfg.channels_last)
        convs = (nn.Conv2d, nn.ConvTranspose2d)
        has = any(isinstance(m, convs) for net in (self.generator, self.discriminator) for m in net.modules())
        return has and self.device.type == "cuda"

    def _real_from_uint8(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device).float() / 127.5 - 1
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last and x.ndim == 4 else x

    def _real(self, x: torch.Tensor) -> torch.Tensor:
        """A normalised batch from the stream → [-1, 1] (see :meth:`_setup`)."""
        return torch.addcmul(self._shift, x, self._scale)

    def _check_forward(self) -> None:
        """G on two noise vectors and D on two real images, so a shape problem is one sentence."""
        images, _ = self.data.preview(2, "train")
        if images.shape[0] == 0:
            raise TrainingFailure(f"The dataset {self.data.name} has no training images.")
        G, D = self.generator, self.discriminator
        G.eval()
        D.eval()
        try:
            with torch.no_grad(), self._autocast():
                try:
                    fake = _first(G(self.fixed_noise[:2]))
                except (RuntimeError, ValueError, TypeError) as exc:
                    raise TrainingFailure(f"The generator cannot take noise of shape "
                                          f"{'×'.join(map(str, self.noise_shape))} ({_line(exc)}).") from None
                image = tuple(self.networks.image_shape)
                if tuple(fake.shape[1:]) != image:
                    raise TrainingFailure(
                        f"The generator makes {'×'.join(map(str, fake.shape[1:]))} images but the discriminator "
                        f"takes {'×'.join(map(str, image))}: make the generator's output that shape.")
                try:
                    out = _first(D(self._real_from_uint8(images)))
                except (RuntimeError, ValueError, TypeError) as exc:
                    raise TrainingFailure(f"The discriminator cannot take the dataset's "
                                          f"{'×'.join(map(str, image))} images ({_line(exc)}).") from None
        finally:
            G.train()
            D.train()
        if out.numel() != out.shape[0]:
            raise TrainingFailure(f"The discriminator answers {'×'.join(map(str, out.shape[1:]))} values per image; "
                                  "it must answer one (a logit): end it in a Linear with out_features 1.")

    # ---------------------------------------------------------------------------------------- loop

    def _loop(self) -> str:
        cfg = self.cfg
        if self.start_epoch > cfg.epochs:
            self._warn(f"This run already trained {self.start_epoch - 1} epochs; raise epochs to continue it.")
            return "completed"
        epoch_times: list[float] = []
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            t0 = time.perf_counter()
            self._paused_s = 0.0
            train = self._train_epoch(epoch, epoch_times)
            seconds = time.perf_counter() - t0 - self._paused_s
            epoch_times.append(seconds)
            eta = (cfg.epochs - epoch) * sum(epoch_times) / len(epoch_times)
            m = EpochMetrics(epoch=epoch, epochs=cfg.epochs, train_loss=train["d_loss"] + train["g_loss"],
                             train_acc=train["acc"], val_loss=None, val_acc=None, val_top5=None,
                             lr=self.schedule_g.lr, images_per_s=train["rate"], seconds=seconds, eta_s=eta,
                             data_wait=train["wait"], d_loss=train["d_loss"], g_loss=train["g_loss"],
                             d_real=train["d_real"], d_fake=train["d_fake"])
            previous = self.history[-1].g_loss if self.history else None
            self.history.append(m)
            self._after_gan_epoch(m, train["g_losses"], previous)
        return "completed"

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.cfg.gan_loss == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        target = torch.full_like(real, 1.0 - self.cfg.label_smoothing)
        return (F.binary_cross_entropy_with_logits(real, target)
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def _g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.cfg.gan_loss == "hinge":
            return -fake.mean()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: Any) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.cfg.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], self.cfg.grad_clip)
        scaler.step(opt)
        scaler.update()

    def _train_epoch(self, epoch: int, epoch_times: list[float]) -> dict[str, Any]:
        cfg, dev = self.cfg, self.device
        G, D = self.generator, self.discriminator
        G.train()
        D.train()
        stream = self.data.batches("train", cfg.batch_size, dev, self.gen, self.augment)
        steps = math.ceil(len(stream) / cfg.n_critic)
        # per step: d_loss, g_loss, D(x), D(G(z)) — on the device, read once per report
        stats = torch.zeros(steps, 4, device=dev)
        right = torch.zeros((), device=dev, dtype=torch.int64)
        judged = seen = 0
        reported, last_report, last_sample = 0, 0.0, time.perf_counter()
        sample_gap = cfg.probe_interval
        wait = 0.0
        start = time.perf_counter()
        cadence = ProbeCadence(cfg.probe_interval, start)
        it: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(stream)
        done = 0
        lr = self.schedule_g.lr
        for step in range(steps):
            self._check_control()
            lr = self.schedule_g.set_step(epoch, step)
            self.schedule_d.set_step(epoch, step)
            fake: torch.Tensor | None = None
            for critic in range(cfg.n_critic):
                t_wait = time.perf_counter()
                try:
                    x, _y = next(it)
                except StopIteration:
                    break
                wait += time.perf_counter() - t_wait
                real = self._real(x)
                b = int(real.shape[0])
                z = torch.randn((b, *self.noise_shape), device=dev)
                # Only the last critic step's fakes train G: the others need no graph through G
                with self._autocast(), torch.set_grad_enabled(critic == cfg.n_critic - 1):
                    fake = _first(G(z))
                with self._autocast():
                    d_real = _first(D(real)).flatten().float()
                    d_fake = _first(D(fake.detach())).flatten().float()
                    d_loss = self._d_loss(d_real, d_fake)
                self._update(d_loss, self.opt_d, self.scaler_d)
                right += (d_real > 0).sum() + (d_fake < 0).sum()
                judged += 2 * b
                seen += b
            if fake is None:
                break
            if not fake.requires_grad:  # the epoch's data ended before the last critic step
                with self._autocast():
                    fake = _first(G(z))
            for p in self._d_params:  # G's update needs D's input gradient only
                p.requires_grad_(False)
            try:
                with self._autocast():
                    g_loss = self._g_loss(_first(D(fake)).flatten().float())
                self._update(g_loss, self.opt_g, self.scaler_g)
            finally:
                for p in self._d_params:
                    p.requires_grad_(True)
            with torch.no_grad():
                stats[step] = torch.stack([d_loss.detach(), g_loss.detach(), torch.sigmoid(d_real).mean(),
                                           torch.sigmoid(d_fake).mean()])
            done = step + 1
            now = time.perf_counter()
            if self._main and (now - last_report >= REPORT_INTERVAL_S or step == steps - 1):
                rows = stats[reported:done].tolist()
                self._check_finite(rows, epoch, reported, lr)
                elapsed = max(now - start - self._paused_s, 1e-9)
                eta = (steps - done) * elapsed / done + self._eta(epoch, epoch_times, elapsed / done)
                g_losses = tuple(r[1] for r in rows)
                self._emit("batch", BatchProgress(
                    epoch=epoch, epochs=cfg.epochs, step=done, steps=steps, global_step=(epoch - 1) * steps + done,
                    loss=g_losses[-1], losses=g_losses, first_step=(epoch - 1) * steps + reported + 1, lr=lr,
                    images_per_s=seen / elapsed, eta_s=eta))
                reported, last_report = done, now
                global_step = (epoch - 1) * steps + done
                if self.cb.probe is not None and self.prober.nodes and cadence.due(now, True):
                    began = time.perf_counter()  # feature maps: at most a tenth of the run, as the engine's
                    self._probe(epoch, done, global_step)
                    cadence.done(began, time.perf_counter())
                now = time.perf_counter()
                if self.cb.samples is not None and now - last_sample >= sample_gap and step < steps - 1:
                    self._emit_samples(epoch, done, global_step)
                    last_sample = time.perf_counter()
                    if cfg.probe_interval > 0:
                        sample_gap = max(cfg.probe_interval, SAMPLE_HOLD * (last_sample - now))
        rows = stats[:done].tolist()
        self._check_finite(rows[reported:], epoch, reported, lr)
        totals = torch.stack([right.float(), torch.tensor(float(judged), device=dev)]).tolist()
        train_s = time.perf_counter() - start - self._paused_s
        n = max(len(rows), 1)
        return {"d_loss": sum(r[0] for r in rows) / n, "g_loss": sum(r[1] for r in rows) / n,
                "d_real": sum(r[2] for r in rows) / n, "d_fake": sum(r[3] for r in rows) / n,
                "acc": totals[0] / max(totals[1], 1), "rate": seen / max(train_s, 1e-9),
                "wait": wait / max(train_s, 1e-9), "g_losses": [r[1] for r in rows], "steps": done}

    def _check_finite(self, rows: list[list[float]], epoch: int, first: int, lr: float) -> None:
        for i, row in enumerate(rows):
            for which, value in (("discriminator", row[0]), ("generator", row[1])):
                if not math.isfinite(value):
                    raise TrainingFailure(gan_nonfinite_message(which, value, epoch, first + i + 1, lr, self._amp,
                                                                self.cfg.grad_clip))

    # ----------------------------------------------------------------------------- samples, probes

    def _fake(self, noise: torch.Tensor) -> torch.Tensor:
        """G(noise) in [-1, 1] (float, on the device), in eval mode: BatchNorm's running statistics
        are used and left as they are, so sampling never changes the training."""
        G = self.generator
        was = G.training
        G.eval()
        try:
            with torch.no_grad(), self._autocast():
                return _first(G(noise)).float()
        finally:
            G.train(was)

    def _emit_samples(self, epoch: int, step: int, global_step: int,
                      generated: torch.Tensor | None = None) -> torch.Tensor:
        from core.training.gan_sample import to_uint8

        if generated is None:
            generated = self._fake(self.fixed_noise)
        images = to_uint8(generated).cpu()
        self._emit("samples", GanSamples(epoch=epoch, step=step, global_step=global_step, images=images))
        return images

    def _probe(self, epoch: int, step: int, global_step: int) -> None:
        nodes = self.prober.nodes
        g_ids = [n for n in nodes if n in self.networks.generator.nodes]
        d_ids = [n for n in nodes if n in self.networks.discriminator.nodes]
        k = max(1, self.cfg.probe_samples)
        parts: list[ProbeData] = []
        for ids, net, x in ((g_ids, self.generator, self.fixed_noise[:k]), (d_ids, self.discriminator, self._probe_x)):
            if not ids:
                continue
            prober = Prober()
            prober.set_nodes(ids)
            parts.append(prober.capture(net, x, self._probe_images, self._probe_labels, epoch, step, global_step))
        if not parts:
            return
        from core.training.gan_sample import to_uint8

        images = self._probe_images if d_ids else to_uint8(self._fake(self.fixed_noise[:k])).cpu()
        labels = self._probe_labels if d_ids else tuple(0 for _ in range(images.shape[0]))
        merged = dataclasses.replace(parts[-1], images=images, labels=labels,
                                     activations={k2: v for p in parts for k2, v in p.activations.items()},
                                     channels={k2: v for p in parts for k2, v in p.channels.items()},
                                     stats={k2: v for p in parts for k2, v in p.stats.items()})
        self._emit("probe", merged)

    # ------------------------------------------------------------------------------- epoch's end

    def _after_gan_epoch(self, m: EpochMetrics, g_losses: list[float], previous_g: float | None) -> None:
        generated = self._fake(self.fixed_noise)
        found = {"wins": discriminator_wins_warning(m.epoch, m.d_fake or 0.0, g_losses, previous_g),
                 "collapse": mode_collapse_warning(m.epoch, mean_pairwise_distance(generated), self._real_spread)}
        # Said when they hold at two epoch ends in a row: early in a run the discriminator usually
        # wins for a while, and a generator a few steps old makes near-identical images. Once per
        # run: a state. Decided before the checkpoint, which keeps it for a resumed run.
        before, self._failing = self._failing, {k for k, w in found.items() if w is not None}
        due = [w for k, w in found.items() if w is not None and k in before and k not in self._warned]
        self._warned |= {k for k, w in found.items() if w is not None and k in before}
        if self._folder is not None:
            from core.training.gan_sample import save_grid, to_uint8

            self._folder.write_metrics([h.to_dict() for h in self.history])
            assert isinstance(self._folder, GanFolder)
            save_grid(to_uint8(generated).cpu(), self._folder.sample_path(m.epoch))
            if m.epoch % self.cfg.checkpoint_every == 0 or m.epoch == self.cfg.epochs:
                path = self._folder.save_checkpoint("last.pt", self._payload(m.epoch))
                self._emit("checkpoint_saved", str(path))
        self._emit_samples(m.epoch, self.steps, m.epoch * self.steps, generated)
        self._emit("epoch_end", m)
        for warning in due:
            self._warn(warning)
        report = self.data.report()
        if report and report != getattr(self, "_last_report", None):
            self._last_report = report
            self._warn(f"{self.data.name}: {report}")

    # --------------------------------------------------------------------------------- checkpoints

    def _payload(self, epoch: int) -> dict[str, Any]:
        g_state = self.generator.state_dict()
        return {
            "format": CHECKPOINT_FORMAT, "version": 1, "task": "gan", "epoch": epoch,
            # "model" is the generator too (the same tensors, saved once): readers of any run's
            # weights (carrying them into the canvas) get the network a GAN is trained for.
            "generator": g_state, "model": g_state, "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "schedule_g": self.schedule_g.state_dict(), "schedule_d": self.schedule_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
            "fixed_noise": self.fixed_noise.detach().cpu(), "noise_shape": list(self.noise_shape),
            "rng": rng_state(self.gen), "config": self.cfg.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "best": {"epoch": None, "acc": None, "loss": None},
            # the health checks' state: a warning needs two epoch ends in a row, and is said once a run
            "health": {"failing": sorted(self._failing), "warned": sorted(self._warned)},
        }

    def _load(self, path: Path) -> None:
        try:
            ckpt = load_checkpoint(path)
        except RunFolderError as exc:
            raise TrainingFailure(f"Cannot resume: {exc}.") from None
        if ckpt.get("task") != "gan" or not isinstance(ckpt.get("generator"), dict):
            raise TrainingFailure(f"Cannot resume: {path} is not a GAN run's checkpoint; resume it with its own "
                                  "task, or start a new GAN run.")
        for name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            try:
                net.load_state_dict(ckpt[name])
            except RuntimeError as exc:
                first = str(exc).splitlines()[0]
                raise TrainingFailure(f"Cannot resume: the checkpoint's {name} weights do not fit this {name} "
                                      f"({first}). Resume with the graph the run trained (its graph.json).") from None
            net.to(self.device)
        for key, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            try:
                opt.load_state_dict(ckpt[key])
            except (ValueError, KeyError) as exc:
                raise TrainingFailure(f"Cannot resume: the optimizer state doesn't match ({exc}); resume with the "
                                      f"optimizer the run used ({ckpt['config'].get('optimizer')}).") from None
        self.schedule_g.load_state_dict(ckpt["schedule_g"])
        self.schedule_d.load_state_dict(ckpt["schedule_d"])
        for key, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if ckpt.get(key):
                scaler.load_state_dict(ckpt[key])
        noise = ckpt.get("fixed_noise")
        if isinstance(noise, torch.Tensor) and tuple(noise.shape[1:]) == self.noise_shape:
            self.fixed_noise = noise.to(self.device)
        set_rng_state(ckpt["rng"], self.gen)
        self.history = [_epoch_from_dict(d) for d in ckpt["history"]]
        self.start_epoch = int(ckpt["epoch"]) + 1
        health = ckpt.get("health")  # absent from checkpoints written before it was kept
        if isinstance(health, dict):
            self._failing = {str(k) for k in health.get("failing", ())}
            self._warned = {str(k) for k in health.get("warned", ())}

    def _free_memory(self) -> None:
        for opt in (getattr(self, "opt_g", None), getattr(self, "opt_d", None)):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        super()._free_memory()


def build_gan_trainer(project: Any, config: TrainConfig, callbacks: Callbacks | None = None, *,
                      run_dir: str | Path | None = None, resume_from: str | Path | None = None, dist: Any = None,
                      log: Any = None, data: DataSource | None = None) -> GanTrainer:
    """Split ``project``'s graph (a copy) into its generator and discriminator, compile each with the
    run's seed, open the task's dataset (or use ``data``) and wire the run folder. Problems are
    :class:`TrainingFailure` (the graph, compiling) or :class:`~core.training.data.DatasetError`."""
    from core.analysis import analyze
    from core.compiler import CompileError, compile_graph
    from core.gan_graph import GanGraphError, split_gan
    from core.project import Project, project_to_dict
    from core.training.engine import seed_everything
    from core.training.run_inputs import open_shared_data

    graph = project.graph.copy()
    try:
        nets = split_gan(graph)
    except GanGraphError as exc:
        raise TrainingFailure(f"This graph cannot train as a GAN: {exc}.") from None
    seed_everything(config.seed)
    models = []
    for offset, (name, sub) in enumerate((("generator", nets.generator), ("discriminator", nets.discriminator))):
        analysis = analyze(sub)
        if not analysis.ok:
            lines = "; ".join(d.message for d in analysis.errors[:3])
            raise TrainingFailure(f"The {name} has errors to fix before training: {lines}.")
        try:
            models.append(compile_graph(sub, seed=config.seed + offset, analysis=analysis))
        except CompileError as exc:
            raise TrainingFailure(str(exc)) from None
    if data is None:
        data = open_shared_data(config, nets.image_shape, dist, log)
    trained = Project(graph=graph, name=project.name, training=dict(project.training), extra=dict(project.extra))
    project_dict = project_to_dict(trained)
    project_dict["training"] = config.to_dict(only_changed=True)
    return GanTrainer(models[0], models[1], nets, data, config, callbacks, run_dir=run_dir, project=project_dict,
                      graph=graph, resume_from=resume_from, dist=dist)


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple | list) else out


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _epoch_from_dict(d: dict[str, Any]) -> EpochMetrics:
    fields = dict(d)
    fields["confusion"] = tuple(tuple(row) for row in fields.get("confusion", ()))
    fields["val_iou"] = tuple(fields.get("val_iou", ()))
    return EpochMetrics(**fields)


__all__ = ["GAN_COLUMNS", "SAMPLE_COUNT", "GanFolder", "GanTrainer", "build_gan_trainer"]
