"""The training engine: one class that the CLI runs directly and the GUI runs in a QThread.

``Trainer(model, data, config, callbacks).run()`` trains any ``nn.Module`` on a
:class:`~core.training.data.DataSource` and returns a :class:`~core.training.events.RunSummary`;
it never raises for a training problem: failures (NaN loss, out of memory, data that doesn't fit
the graph, a bad checkpoint…) end the run with a plain-language ``failed`` event and a summary
whose status is ``failed``, leaving the process usable.

Hot-loop rules: losses and correct counts accumulate on the device; the host reads them only when
it reports (at most every 50 ms, one transfer for all steps since the last report) and at the end
of an epoch. ``stop()``, ``pause()`` and ``resume()`` may be called from any thread; the loop checks
them before every batch, so they act within one batch.
"""

from __future__ import annotations

import contextlib
import gc
import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.training import distributed as ddp
from core.training.config import TrainConfig
from core.training.data import DataSource, check_fit, check_pipeline
from core.training.data.base import Augment, Normalizer
from core.training.devices import resolve_device
from core.training.engine_eval import evaluate_epoch, output_problem
from core.training.events import BatchProgress, Callbacks, EpochMetrics, RunInfo, RunSummary
from core.training.health import (
    TrainingFailure,
    divergence_warning,
    nonfinite_message,
    oom_message,
    starvation_warning,
)
from core.training.optim import LRSchedule, build_loss, build_nll, build_optimizer, frozen_batchnorms, task_logits
from core.training.options import memory_key
from core.training.probes import ProbeCadence, Prober
from core.training.runs import (
    CHECKPOINT_FORMAT,
    RunFolder,
    RunFolderError,
    holds_run,
    load_checkpoint,
    mark_running,
    rng_state,
    set_rng_state,
    taken_message,
)
from core.training.tasks import TaskOption, task_option

REPORT_INTERVAL_S = 0.05  # ≤ 20 batch events per second


class _Stopped(Exception):
    """Raised inside the loop when stop() was requested."""


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return "CPU"


def available_devices() -> list[dict[str, Any]]:
    """What ``device`` can name here, best first: ``{"device", "name", "memory"}`` (bytes or None)."""
    from core.training.health import device_memory

    found: list[dict[str, Any]] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append({"device": f"cuda:{i}", "name": props.name, "memory": int(props.total_memory)})
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append({"device": "mps", "name": "Apple GPU (MPS)", "memory": None})
    found.append({"device": "cpu", "name": f"CPU ({torch.get_num_threads()} threads)",
                  "memory": device_memory(torch.device("cpu"))})
    return found


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): call before building the model for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def default_augment(cfg: TrainConfig, data: DataSource) -> Augment:
    """Crop/flip settings: explicit ones from the config, else what suits the dataset (token
    sequences are never cropped or flipped)."""
    if not cfg.augment or modality(data) != "image":
        return Augment()
    kind = data.name.split(":", 1)[0]
    natural = kind in ("cifar10", "folder")
    pad = cfg.crop_padding if cfg.crop_padding is not None else (4 if kind == "cifar10" else 0)
    flip = cfg.hflip if cfg.hflip is not None else natural
    return Augment(crop_padding=pad, hflip=flip)


def modality(data: DataSource) -> str:
    """What ``data``'s samples are: ``"image"`` (uint8 C×H×W) or ``"tokens"`` (int64 ids, T per sample)."""
    return str(getattr(data, "modality", "image"))


def modality_problem(task: TaskOption, data: DataSource) -> str | None:
    """The sentence that refuses ``data`` for ``task`` when their samples differ (None when they fit)."""
    have = modality(data)
    if have == task.modality and task.target == "mask" and getattr(data, "target", "class") != "mask":
        return (f"The {task.name} task needs images with masks ({', '.join(task.datasets)}), and {data.name} "
                "has one class per image: choose one of its datasets.")
    if have == task.modality:
        return None
    what = {"image": "images", "tokens": "token sequences"}
    return (f"The {task.name} task needs {what.get(task.modality, task.modality)} "
            f"({', '.join(task.datasets)}), and {data.name} is {what.get(have, have)}: choose one of its "
            f"datasets or the task that fits the data.")


class Trainer:
    """Trains ``model`` on ``data`` with ``config``, reporting through ``callbacks``.

    ``run_dir``: where the run folder goes (``None``: no files). ``project``: the project dict
    saved as ``graph.json``. ``analysis`` (and ``graph``): used to check the data fits the graph and
    to size out-of-memory advice. ``resume_from``: a run folder or checkpoint to continue.
    """

    def __init__(self, model: nn.Module, data: DataSource, config: TrainConfig, callbacks: Callbacks | None = None,
                 *, run_dir: str | Path | None = None, project: dict[str, Any] | None = None,
                 analysis: Any = None, graph: Any = None, resume_from: str | Path | None = None,
                 dist: ddp.DistContext | None = None, weights: Any = None) -> None:
        self.model = model
        self.data = data
        self.cfg = config
        self.cb = callbacks or Callbacks()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.project = project
        self.analysis = analysis
        self.graph = graph
        self.resume_from = Path(resume_from) if resume_from is not None else None
        self.dist = dist
        self.weights = weights  # the WeightsReport of weights loaded into the model (config.json records it)
        # Called with the summary after the run ends and before ``finished`` is emitted (the session
        # writes the run's evaluation there, so it exists when the front-ends hear ``finished``).
        self.before_finish: Callable[[RunSummary], None] | None = None
        self.task = task_option(config.task)
        self.tokens = self.task.modality == "tokens"
        self.next_token = self.task.target == "next-token"  # a language model: a prediction per time step
        self.masks = self.task.target == "mask"  # segmentation: a class per pixel, scored by mean IoU
        self.prober = Prober(sequence=self.tokens)
        self.history: list[EpochMetrics] = []
        self.mismatch: Any = None  # the data/graph Mismatch (with its fixes) when that is why the run failed
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._paused_s = 0.0

    # ------------------------------------------------------------------------------ control (any thread)

    def stop(self) -> None:
        """End the run before the next batch; the last epoch checkpoint is kept."""
        self._stop.set()
        self._go.set()

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    @property
    def paused(self) -> bool:
        return not self._go.is_set()

    def set_probes(self, node_ids: list[str]) -> None:
        """Nodes whose feature maps the ``probe`` event carries (empty: probes off)."""
        self.prober.set_nodes(node_ids)

    # ----------------------------------------------------------------------------------------- run

    def run(self) -> RunSummary:
        started = time.perf_counter()
        self._main = self.dist is None or self.dist.main
        self._folder = RunFolder(self.run_dir) if self.run_dir is not None and self._main else None
        if self._folder is not None and self.resume_from is None and holds_run(self._folder.path):
            # another run's folder: fail without touching a file of it (not even run.json)
            message = taken_message(self._folder.path)
            self._folder = None
            summary = self._summary("failed", message, 0.0)
            self._emit("failed", message)
            self._emit("finished", summary)
            return summary
        status, message = "completed", ""
        oom = False
        deterministic = torch.are_deterministic_algorithms_enabled()
        try:
            self._setup()
            status = self._loop()
        except _Stopped:
            status = "stopped"
        except TrainingFailure as exc:
            status, message = "failed", str(exc)
        except torch.cuda.OutOfMemoryError:
            status, oom = "failed", True  # handled below, once the traceback's tensors are released
        except Exception as exc:  # the user sees one plain line; the details go to error.log
            status = "failed"
            message = f"Training stopped by an unexpected error: {type(exc).__name__}: {exc}"
            self._log_error(traceback.format_exc())
        finally:
            torch.use_deterministic_algorithms(deterministic)  # a process-wide switch: leave it as found
        if oom:
            self._free_memory()
            message = oom_message(self.cfg.batch_size, self.device, self._device_name, self._estimate(), self._amp)
        summary = self._summary(status, message, time.perf_counter() - started)
        if self._folder is not None and self._folder.path.exists():
            with contextlib.suppress(OSError):
                self._folder.write_json("run.json", summary.to_dict())
        if status == "failed":
            self._emit("failed", message)
        if self.before_finish is not None:
            self.before_finish(summary)
        self._emit("finished", summary)
        return summary

    # --------------------------------------------------------------------------------------- setup

    def _setup(self) -> None:
        cfg = self.cfg
        self.device = torch.device("cpu")
        self._device_name, self._amp = "CPU", "off"
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if cfg.threads is not None:
            # A small recurrent model on a busy CPU runs several times faster on one thread than
            # on threads that wait for each other; the user chooses (process-wide, as torch has it).
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(ddp.device_for(self.dist, cfg.device))
        self._device_name = device_name(self.device)
        self.notes: list[str] = []
        self._amp = self._amp_mode()
        self.world = self.dist.world if self.dist else 1
        self.rank = self.dist.rank if self.dist else 0
        refused = modality_problem(self.task, self.data)
        if refused is not None:
            raise TrainingFailure(refused)
        if self.analysis is not None:
            self.mismatch = check_fit(self.data, self.analysis, self.graph)
            if self.mismatch is not None:
                raise TrainingFailure(f"The data doesn't fit the network: {self.mismatch.message}.")
            # Pretrained weights at another Input size still run, so this is a note, not a failure.
            advice = check_pipeline(self.data, self.analysis, self.graph)
            if advice is not None:
                self.notes.append(f"{advice.message[:1].upper()}{advice.message[1:]}.")
        self._input_view = self._flat_input()
        self._channels_last = self._use_channels_last()
        self.data.to(self.device, channels_last=self._channels_last)
        self.model.to(self.device)
        self._check_forward()  # before the layout change: it also initialises lazy modules
        if self._channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, cfg, self.graph)
        # Fine-tuning: frozen layers' BatchNorm keeps the pretrained running statistics.
        self._frozen_bn = list(frozen_batchnorms(self.model, self.graph)) if cfg.frozen_bn_eval else []
        self.augment = default_augment(cfg, self.data)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed((cfg.seed + self.rank) % 2**64)  # torch seeds are < 2**64
        self.steps = len(self.data.batches("train", cfg.batch_size, self.device, None, Augment(), self.rank,
                                           self.world, drop_last=self.world > 1))
        self.schedule = LRSchedule(self.optimizer, cfg, self.steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self._amp == "fp16")
        self.loss_fn, self.single_loss = build_loss(cfg, self.data.num_classes, self.task.target)
        self.nll = build_nll(cfg, self.task.target)  # perplexity's own cross-entropy where the loss is another
        self.start_epoch = 1
        self.best_epoch: int | None = None
        self.best_acc: float | None = None
        self.best_loss: float | None = None
        self.best_miou: float | None = None
        if self.resume_from is not None:
            self._load(self.resume_from)
        self.train_model: nn.Module = self.model
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            from core.compiler import idle_layers

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Layers that reach no Output keep their weights in the model but never run, so their
            # parameters get no gradient: DDP waits for those forever unless told to look for them
            # (a graph traversal per step, paid only by such graphs).
            self.train_model = DistributedDataParallel(self.model, device_ids=ids,
                                                       find_unused_parameters=bool(idle_layers(self.model)))
        self._eager_model = self.train_model
        self._compile_pending = False
        if cfg.compile:
            try:
                self.train_model = torch.compile(self.train_model)  # type: ignore[assignment]
                self._compile_pending = True
            except Exception as exc:  # an unsupported platform: train eagerly
                self.notes.append(f"torch.compile is not available here ({exc}); training without it.")
        self._probe_x, self._probe_images, self._probe_labels = self._probe_sample()
        # Generated text samples with its own generator, seeded per epoch: the training RNG is never
        # drawn from, so a resumed run generates (and trains) exactly as an uninterrupted one.
        self._text_seed = cfg.seed
        if self._folder is not None:
            self._folder.create()
            mark_running(self._folder)  # the runs list tells a killed run by its dead owner
            config: dict[str, Any] = {"training": cfg.to_dict(), "dataset": self.data.describe(),
                                      "device": str(self.device), "world_size": self.world}
            if self.weights is not None:
                config["weights"] = self.weights.to_dict()
            self._folder.write_json("config.json", config)
            if self.project is not None:
                self._folder.write_json("graph.json", self.project)
            self._folder.write_metrics([m.to_dict() for m in self.history])
        params = sum(p.numel() for p in self.model.parameters())
        trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self._emit("run_started", RunInfo(
            device=str(self.device), device_name=self._device_name, amp=self._amp, dataset=self.data.describe(),
            epochs=cfg.epochs, start_epoch=self.start_epoch, steps_per_epoch=self.steps, batch_size=cfg.batch_size,
            world_size=self.world, params=params, trainable_params=trainable,
            run_dir=str(self.run_dir) if self.run_dir else None, config=cfg.to_dict(), notes=tuple(self.notes)))
        for note in self.notes:
            self._warn(note)

    def _amp_mode(self) -> str:
        amp = self.cfg.amp
        if amp == "off":
            return "off"
        if self.device.type != "cuda":
            self.notes.append(f"Mixed precision needs a CUDA GPU; training in float32 on {self._device_name}.")
            return "off"
        if amp == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return amp

    def _autocast(self) -> Any:
        if self._amp == "off":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self._amp == "bf16" else torch.float16)

    def _use_channels_last(self) -> bool:
        """channels_last (NHWC) for convolutional models unless the config says otherwise: oneDNN and
        cuDNN run convolutions and pooling faster in it (LeNet-5 trains ~1.5× faster on a CPU); an
        MLP would only pay a copy at its Flatten, and Apple's MPS gains nothing."""
        if self.cfg.channels_last is not None:
            return bool(self.cfg.channels_last)
        if self.tokens:  # token ids are (B, T): there is no channel axis to move
            return False
        convs = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        return convs and self.device.type in ("cpu", "cuda") and self._input_view is None

    def _flat_input(self) -> tuple[int, ...] | None:
        """A 1-D graph Input of size C·H·W takes the images flattened (an MLP on pixels)."""
        shape = getattr(self.analysis, "input_shape", None)
        if self.tokens or shape is None or tuple(shape) == tuple(self.data.sample_shape):
            return None
        return tuple(int(v) for v in shape)

    def _hold_frozen_bn(self) -> None:
        """Frozen nodes' BatchNorm in eval mode (after every ``train()`` call, which sets them back)."""
        for module in self._frozen_bn:
            module.eval()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if self._input_view is not None:
            return x.reshape(x.shape[0], *self._input_view)
        if self._channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _inputs(self, samples: torch.Tensor) -> torch.Tensor:
        """A preview's samples as the model takes them: token ids as they are, images normalised."""
        if self.tokens:
            return samples.to(self.device)
        return self._prepare(Normalizer(self.data.mean, self.data.std, self.device)(samples.to(self.device)))

    def _check_forward(self) -> None:
        """One tiny forward pass so a shape problem is a plain message, not a traceback mid-epoch."""
        images, _ = self.data.preview(2, "train")
        noun = "sequences" if self.tokens else "images"
        if images.shape[0] == 0:
            raise TrainingFailure(f"The dataset {self.data.name} has no training {noun}.")
        x = self._inputs(images)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                out = task_logits(self.model(x), self.task.target)
        except torch.cuda.OutOfMemoryError:
            raise
        except (RuntimeError, ValueError, TypeError) as exc:
            shape = "×".join(map(str, self.data.sample_shape))
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.tokens:
                raise TrainingFailure(f"The network cannot take the dataset's sequences of {shape} token ids "
                                      f"({first}). Set the Input shape to [{shape}] and start with an Embedding "
                                      "of the vocabulary's size.") from None
            raise TrainingFailure(f"The network cannot take the dataset's {shape} images ({first}). "
                                  "Set the Input shape to the images' shape and check the layer sizes.") from None
        finally:
            self.model.train(was_training)
        problem = output_problem(out, self.data, self.task.target, self.tokens)
        if problem is not None:
            raise TrainingFailure(problem)

    def _probe_sample(self) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        split = "val" if self.data.val_count else "train"
        images, labels = self.data.preview(self.cfg.probe_samples, split)
        # segmentation: the same samples' true masks, shown under the predicted ones
        self._probe_masks: torch.Tensor | None = None
        if self.masks:  # a mask source (modality_problem checked its target) has preview_masks
            self._probe_masks = getattr(self.data, "preview_masks")(self.cfg.probe_samples, split)  # noqa: B009
        return self._inputs(images), images, tuple(labels)

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
            val = evaluate_epoch(self)
            seconds = time.perf_counter() - t0 - self._paused_s
            epoch_times.append(seconds)
            self.schedule.epoch_end(val["loss"])
            metrics = self._metrics(epoch, train, val, seconds, epoch_times)
            self.history.append(metrics)
            self._after_epoch(metrics)
            if cfg.early_stopping and self.best_epoch is not None and epoch - self.best_epoch >= cfg.early_stopping:
                if self.next_token:
                    best = perplexity(self.best_loss) if self.best_loss is not None else math.inf
                    self._warn(f"Early stopping: validation perplexity has not improved for {cfg.early_stopping} "
                               f"epochs (best {best:.2f} at epoch {self.best_epoch}).")
                elif self.masks and self.best_miou is not None:
                    self._warn(f"Early stopping: validation mean IoU has not improved for {cfg.early_stopping} "
                               f"epochs (best {self.best_miou:.3f} at epoch {self.best_epoch}).")
                else:
                    self._warn(f"Early stopping: validation accuracy has not improved for {cfg.early_stopping} "
                               f"epochs (best {self.best_acc:.2%} at epoch {self.best_epoch}).")
                return "early_stopped"
        return "completed"

    def _forward(self, x: torch.Tensor) -> Any:
        if not self._compile_pending:
            return self.train_model(x)
        # torch.compile compiles lazily, at the first call: a compiler that fails here (no C++
        # toolchain, an unsupported op) falls back to eager training instead of ending the run.
        try:
            out = self.train_model(x)
        except Exception as exc:
            import torch._dynamo

            if not isinstance(exc, torch._dynamo.exc.TorchDynamoException):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._warn(f"torch.compile failed ({first}); training without it.")
            self.train_model = self._eager_model
            out = self.train_model(x)
        self._compile_pending = False
        return out

    def _check_control(self) -> None:
        if self._stop.is_set():
            raise _Stopped
        if not self._go.is_set():
            t = time.perf_counter()
            self._emit("paused", True)
            self._go.wait()
            self._paused_s += time.perf_counter() - t
            if self._stop.is_set():
                raise _Stopped
            self._emit("paused", False)

    def _train_epoch(self, epoch: int, epoch_times: list[float]) -> dict[str, Any]:
        cfg, dev = self.cfg, self.device
        self.train_model.train()
        self._hold_frozen_bn()
        stream = self.data.batches("train", cfg.batch_size, dev, self.gen, self.augment, self.rank, self.world,
                                   drop_last=self.world > 1)
        steps = len(stream)
        step_losses = torch.zeros(steps, device=dev)
        loss_sum = torch.zeros((), device=dev)
        nll_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        seen = 0  # samples (images, sequences)
        scored = 0  # predictions: one per sample, or one per token for a language model
        pixels = torch.zeros((), device=dev, dtype=torch.int64)  # segmentation: labelled pixels (on the device)
        reported, last_report = 0, 0.0
        wait = 0.0
        start = time.perf_counter()
        cadence = ProbeCadence(cfg.probe_interval, start)  # when to probe (see its rule)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        it: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(stream)
        for step in range(steps):
            self._check_control()
            t_wait = time.perf_counter()
            try:
                x, y = next(it)
            except StopIteration:
                break
            wait += time.perf_counter() - t_wait
            x = self._prepare(x)
            lr = self.schedule.set_step(epoch, step)
            with self._autocast():
                outputs = self._forward(x)
                loss = self.loss_fn(outputs, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            detached = loss.detach().float()
            step_losses[step] = detached
            seen += int(y.shape[0])
            if self.masks:  # pixel accuracy and a loss weighted by the labelled pixels
                labelled = y != cfg.ignore_index
                count = labelled.sum()
                loss_sum += detached * count
                correct += ((task_logits(outputs, "mask").argmax(1) == y) & labelled).sum()
                pixels += count
            else:
                loss_sum += detached * y.numel()
                correct += (task_logits(outputs, self.task.target).argmax(-1) == y).sum()
                if self.nll is not None:
                    nll_sum += self.nll(task_logits(outputs, self.task.target), y)
                scored += y.numel()
            now = time.perf_counter()
            if self._main and (now - last_report >= REPORT_INTERVAL_S or step == steps - 1):
                losses = step_losses[reported:step + 1].tolist()
                if self.world == 1:
                    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
                    if bad is not None:
                        raise TrainingFailure(nonfinite_message(losses[bad], epoch, reported + bad + 1, lr, self._amp,
                                                                cfg.grad_clip))
                elapsed = max(now - start - self._paused_s, 1e-9)
                rate = seen * self.world / elapsed
                eta = (steps - step - 1) * elapsed / (step + 1) + self._eta(epoch, epoch_times, elapsed / (step + 1))
                self._emit("batch", BatchProgress(
                    epoch=epoch, epochs=cfg.epochs, step=step + 1, steps=steps,
                    global_step=(epoch - 1) * steps + step + 1, loss=losses[-1], losses=tuple(losses),
                    first_step=(epoch - 1) * steps + reported + 1, lr=lr, images_per_s=rate, eta_s=eta))
                reported, last_report = step + 1, now
                # Segmentation probes with no node probed too: the mask overlays are live. Feature
                # maps take at most a tenth of the run, the overlay alone a fiftieth (ProbeCadence).
                nodes = self.prober.nodes
                if (self.cb.probe is not None and (nodes or self.masks)
                        and cadence.due(now, bool(nodes), paused=self._paused_s)):
                    began = time.perf_counter()
                    self._probe(epoch, step + 1, (epoch - 1) * steps + step + 1)
                    cadence.done(began, time.perf_counter())
        totals = torch.stack([loss_sum, correct.to(loss_sum.dtype), pixels.to(loss_sum.dtype) + float(scored),
                              torch.tensor(float(seen), device=dev), nll_sum])
        totals = ddp.all_reduce_sum(totals) if self.world > 1 else totals
        loss_total, correct_total, n, samples, nll_total = totals.tolist()
        train_s = time.perf_counter() - start - self._paused_s
        if not math.isfinite(loss_total):
            raise TrainingFailure(nonfinite_message(loss_total, epoch, steps, self.schedule.lr, self._amp,
                                                    cfg.grad_clip))
        return {"loss": loss_total / max(n, 1), "acc": correct_total / max(n, 1), "seconds": train_s,
                "rate": samples / max(train_s, 1e-9), "wait": wait / max(train_s, 1e-9),
                "nll": (nll_total if self.nll is not None else loss_total) / max(n, 1)}

    def _eta(self, epoch: int, epoch_times: list[float], step_s: float) -> float:
        remaining = self.cfg.epochs - epoch
        per_epoch = sum(epoch_times) / len(epoch_times) if epoch_times else step_s * self.steps * 1.1
        return remaining * per_epoch

    def _metrics(self, epoch: int, train: dict[str, Any], val: dict[str, Any], seconds: float,
                 epoch_times: list[float]) -> EpochMetrics:
        acc = val["acc"] if val["acc"] is not None else train["acc"]
        loss = val["loss"] if val["loss"] is not None else train["loss"]
        miou = val.get("miou")
        if self.next_token:  # a language model's best epoch is its lowest validation perplexity
            loss = val["nll"] if val["loss"] is not None else train["nll"]
            best = self.best_loss is None or loss < self.best_loss
        elif self.masks and miou is not None:  # segmentation: the highest mean IoU (then the lowest loss)
            best = (self.best_miou is None or miou > self.best_miou
                    or (miou == self.best_miou and self.best_loss is not None and loss < self.best_loss))
        else:
            best = (self.best_acc is None or acc > self.best_acc
                    or (acc == self.best_acc and self.best_loss is not None and loss < self.best_loss))
        if best:
            self.best_epoch, self.best_acc, self.best_loss, self.best_miou = epoch, acc, loss, miou
        eta = (self.cfg.epochs - epoch) * sum(epoch_times) / len(epoch_times)
        lm: dict[str, Any] = {}
        if self.next_token:
            lm = {"train_perplexity": perplexity(train["nll"]),
                  "val_perplexity": perplexity(val["nll"]) if val["loss"] is not None else None,
                  "generated": self._generate(epoch)}
        elif self.masks:
            lm = {"val_miou": miou, "val_pixel_acc": val["pixel_acc"], "val_iou": val["iou"]}
        return EpochMetrics(epoch=epoch, epochs=self.cfg.epochs, train_loss=train["loss"], train_acc=train["acc"],
                            val_loss=val["loss"], val_acc=val["acc"], val_top5=val["top5"], lr=self.schedule.lr,
                            images_per_s=train["rate"], seconds=seconds, eta_s=eta, data_wait=train["wait"],
                            best=best, confusion=val["confusion"], **lm)

    def _generate(self, epoch: int) -> str:
        """The language model's text after ``epoch``: ``generate_length`` tokens from the prompt at the
        temperature, sampled with a generator of its own (seeded by the run's seed and the epoch)."""
        if self.cfg.generate_length <= 0 or not self._main:
            return ""
        from core.training.generate import generate

        gen = torch.Generator().manual_seed((self._text_seed * 1_000_003 + epoch) % 2**63)
        return generate(self.model, self.data, self.cfg.prompt, self.cfg.generate_length, self.cfg.temperature,
                        self.device, gen)

    def _after_epoch(self, m: EpochMetrics) -> None:
        if not self._main:
            return
        if self._folder is not None:
            self._folder.write_metrics([h.to_dict() for h in self.history])
            if m.epoch % self.cfg.checkpoint_every == 0 or m.epoch == self.cfg.epochs or m.best:
                payload = self._payload(m.epoch)
                if m.epoch % self.cfg.checkpoint_every == 0 or m.epoch == self.cfg.epochs:
                    self._emit("checkpoint_saved", str(self._folder.save_checkpoint("last.pt", payload)))
                if m.best:
                    self._emit("checkpoint_saved", str(self._folder.save_checkpoint("best.pt", payload)))
        self._emit("epoch_end", m)
        first = self.history[0].train_loss
        warning = divergence_warning(m.epoch, m.train_loss, first) if len(self.history) > 1 else None
        if warning:
            self._warn(warning)
        starving = starvation_warning(m.epoch, m.data_wait, self.data.in_memory, getattr(self.data, "workers", None))
        if starving and m.seconds > 1.0:
            self._warn(starving)
        report = self.data.report()
        if report and report != getattr(self, "_last_report", None):
            self._last_report = report
            self._warn(f"{self.data.name}: {report}")

    def _probe(self, epoch: int, step: int, global_step: int) -> None:
        if not self.tokens:
            data = self.prober.capture(self.model, self._probe_x, self._probe_images, self._probe_labels,
                                       epoch, step, global_step, target=self.task.target, masks=self._probe_masks)
        else:
            data = self.prober.capture(self.model, self._probe_x, self._probe_images, self._probe_labels,
                                       epoch, step, global_step, target=self.task.target, loss=self.loss_fn,
                                       y=self._probe_targets(), tokens=self._probe_tokens())
        self._hold_frozen_bn()  # the probe's model.train() put them back in train mode
        self._emit("probe", data)

    def _probe_targets(self) -> torch.Tensor:
        """The probe sample's targets: its class, or (next-token) each position's next token — the
        sample shifted by one, then the label the preview gives for the last position."""
        labels = torch.as_tensor(self._probe_labels, dtype=torch.int64, device=self.device)
        if not self.next_token:
            return labels
        return torch.cat([self._probe_x[:, 1:], labels[:, None]], dim=1)

    def _probe_tokens(self) -> tuple[tuple[str, ...], ...]:
        vocab = tuple(getattr(self.data, "vocab", ()))
        return tuple(tuple(vocab[i] if 0 <= i < len(vocab) else "?" for i in row)
                     for row in self._probe_images.tolist())

    # --------------------------------------------------------------------------------- checkpoints

    def _payload(self, epoch: int) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "version": 1, "epoch": epoch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_state(self.gen), "config": self.cfg.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "best": {"epoch": self.best_epoch, "acc": self.best_acc, "loss": self.best_loss, "miou": self.best_miou},
        }

    def _load(self, path: Path) -> None:
        try:
            ckpt = load_checkpoint(path)
        except RunFolderError as exc:
            raise TrainingFailure(f"Cannot resume: {exc}.") from None
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise TrainingFailure(f"Cannot resume: the checkpoint's weights do not fit this network ({first}). "
                                  "Resume with the graph the run trained (its graph.json).") from None
        self.model.to(self.device)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError) as exc:
            raise TrainingFailure(f"Cannot resume: the optimizer state doesn't match ({exc}); resume with the "
                                  f"optimizer the run used ({ckpt['config'].get('optimizer')}).") from None
        self.schedule.load_state_dict(ckpt["schedule"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"], self.gen)
        self.history = [_metrics_from_dict(d) for d in ckpt["history"]]
        best = ckpt["best"]
        self.best_epoch, self.best_acc, self.best_loss = best["epoch"], best["acc"], best["loss"]
        self.best_miou = best.get("miou")  # absent from checkpoints written before segmentation
        self.start_epoch = int(ckpt["epoch"]) + 1

    # ------------------------------------------------------------------------------------- helpers

    def _summary(self, status: str, message: str, seconds: float) -> RunSummary:
        best_loss = getattr(self, "best_loss", None)
        return RunSummary(status=status, epochs_done=self.history[-1].epoch if self.history else 0,
                          best_epoch=getattr(self, "best_epoch", None), best_val_acc=getattr(self, "best_acc", None),
                          last=self.history[-1] if self.history else None,
                          run_dir=str(self.run_dir) if self.run_dir else None, seconds=seconds, message=message,
                          best_val_perplexity=perplexity(best_loss) if self.next_token and best_loss is not None
                          else None, best_val_miou=getattr(self, "best_miou", None))

    def _estimate(self) -> Any:
        if self.analysis is None or not hasattr(self.analysis, "memory"):
            return None
        opt = memory_key(self.cfg.optimizer, self.cfg.momentum)
        return lambda b: int(self.analysis.memory(b, opt).total)

    def _free_memory(self) -> None:
        opt = getattr(self, "optimizer", None)
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _warn(self, message: str) -> None:
        self._emit("warning", message)

    def _emit(self, name: str, *args: Any) -> None:
        if self._main or name in ("failed", "finished"):
            self.cb.emit(name, *args)

    def _log_error(self, text: str) -> None:
        if self._folder is None:
            return
        with contextlib.suppress(OSError):
            self._folder.path.mkdir(parents=True, exist_ok=True)
            (self._folder.path / "error.log").write_text(text, encoding="utf-8")


def perplexity(loss: float) -> float:
    """exp(mean loss per token); infinite where that overflows a float (a diverged model)."""
    return math.exp(loss) if loss < 700 else math.inf


def _metrics_from_dict(d: dict[str, Any]) -> EpochMetrics:
    fields = dict(d)
    fields["confusion"] = tuple(tuple(row) for row in fields.get("confusion", ()))
    fields["val_iou"] = tuple(fields.get("val_iou", ()))
    return EpochMetrics(**fields)
