"""``TrainConfig``: every training setting, read from the project's ``training`` section.

The project file stores only what differs from the defaults (``to_dict(only_changed=True)``);
unknown keys are kept in ``extra`` so a newer file round-trips. CLI options override the
section with :meth:`TrainConfig.updated`. Validation raises :class:`ConfigError` naming the key
and the accepted values; the names of the optimizers, schedules, losses and precision modes and the
ranges of the settings they read come from their declarations in :mod:`core.training.options`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.training.options import AMP_MODES, GAN_LOSSES, LOSSES, OPTIMIZERS, SCHEDULES, aliases, all_params
from core.training.tasks import task_option


class ConfigError(ValueError):
    """A training setting with a bad value; ``str()`` names the key and what is allowed."""


@dataclass
class TrainConfig:
    """Training settings (defaults match the demo: LeNet-5 on shapes with SGD)."""

    task: str = "classification"  # a core.training.tasks name: what the data, loss and metrics are
    dataset: str = "shapes"
    tokenize: str = "char"  # text datasets: "char" or "word" tokens
    prompt: str = ""  # language models: the generated text's start ("": the validation text's first tokens)
    temperature: float = 1.0
    generate_length: int = 100
    ignore_index: int = 255  # segmentation: the mask value of no class (VOC's borders)
    gan_loss: str = "bce"  # GANs: core.training.options.GAN_LOSSES
    n_critic: int = 1  # GANs: discriminator steps per generator step
    data_root: str | None = None  # where mnist/fashion-mnist/cifar10 files live (or are downloaded to)
    download: bool = True
    train_size: int | None = None  # generated size (shapes, synthetic) or cap (others)
    val_size: int | None = None
    val_fraction: float = 0.1  # folder datasets without a validation folder
    val_folder: str | None = None
    threads: int | None = None  # torch's CPU threads for the run (None: torch's default)
    workers: int | None = None  # DataLoader workers for folder datasets (None: auto)

    epochs: int = 5
    batch_size: int = 128  # global: split over the processes under DDP
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    step_size: int = 0  # step schedule: epochs per decay (0: a third of the run)
    gamma: float = 0.1  # step and plateau decay factor
    plateau_patience: int = 2
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    aux_weights: list[float] | None = None  # weights of outputs 2..n (None: 0.3 each, GoogLeNet's)
    grad_clip: float = 0.0  # max gradient norm (0: off)
    early_stopping: int = 0  # patience in epochs without a better validation accuracy (0: off)
    frozen_bn_eval: bool = True  # frozen nodes' BatchNorm stays in eval mode while training (fine-tuning)

    augment: bool = True
    crop_padding: int | None = None  # None: 4 for 32×32-ish images, else 0 (random crop)
    hflip: bool | None = None  # None: on for natural images (cifar10, folder), off otherwise

    device: str = "auto"
    amp: str = "off"
    channels_last: bool | None = None  # None: on for image inputs on CPU and CUDA (faster convs there)
    compile: bool = False
    seed: int = 0
    deterministic: bool = False

    probe_interval: float = 1.0  # seconds between feature-map probes (when nodes are probed)
    probe_samples: int = 4
    checkpoint_every: int = 1  # epochs between "last" checkpoints (best is written when it improves)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------------------------ mapping

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainConfig:
        """Build from a project ``training`` section; unknown keys go to ``extra``."""
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        extra.update(data.get("extra", {}) if isinstance(data.get("extra"), dict) else {})
        if "betas" in known and isinstance(known["betas"], list):
            known["betas"] = tuple(known["betas"])
        if isinstance(known.get("amp"), bool):
            known["amp"] = "auto" if known["amp"] else "off"
        try:
            return cls(**known, extra=extra)
        except TypeError as exc:
            raise ConfigError(f"training: {exc}") from None

    def to_dict(self, only_changed: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        default = TrainConfig()
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if only_changed and value == getattr(default, f.name):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out.update(self.extra)
        return out

    def updated(self, **overrides: Any) -> TrainConfig:
        """A copy with the given settings replaced (``None`` values are ignored: option not given)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    # --------------------------------------------------------------------------------- validation

    def validate(self) -> None:
        self.optimizer = str(self.optimizer).lower()
        schedule = str(self.schedule).lower()
        self.schedule = aliases(SCHEDULES).get(schedule, schedule)
        self.loss = str(self.loss).lower().replace("-", "_")
        self.amp = str(self.amp).lower()
        try:
            self.task = task_option(str(self.task)).name
        except KeyError as exc:
            raise ConfigError(f"training.task: {exc.args[0]}") from None
        self.tokenize = str(self.tokenize).lower()
        _choice("tokenize", self.tokenize, ("char", "word"))
        if not isinstance(self.prompt, str):
            raise ConfigError(f"training.prompt: must be text, got {self.prompt!r}")
        _choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
        _choice("schedule", self.schedule, tuple(SCHEDULES))
        _choice("loss", self.loss, tuple(LOSSES))
        _choice("amp", self.amp, tuple(AMP_MODES))
        self.gan_loss = str(self.gan_loss).lower()
        _choice("gan_loss", self.gan_loss, tuple(GAN_LOSSES))
        for param in all_params():
            problem = param.problem(getattr(self, param.key))
            if problem is not None:
                raise ConfigError(f"training.{param.key}: {problem}")
        for name in ("grad_clip", "probe_interval"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"training.{name}: must be a finite number ≥ 0, got {value!r}")
        if not isinstance(self.val_fraction, int | float) or not 0 <= self.val_fraction < 1:
            raise ConfigError(f"training.val_fraction: must be in [0, 1), got {self.val_fraction}")
        for name in ("early_stopping", "probe_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"training.{name}: must be an integer ≥ 0, got {value!r}")
        _positive_int("checkpoint_every", self.checkpoint_every)
        if self.threads is not None:
            _positive_int("threads", self.threads)
        for name in ("train_size", "val_size", "workers", "crop_padding"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ConfigError(f"training.{name}: must be an integer ≥ 0, got {value!r}")
        if self.aux_weights is not None and (
                not isinstance(self.aux_weights, list | tuple)
                or not all(isinstance(w, int | float) and math.isfinite(w) and w >= 0 for w in self.aux_weights)):
            raise ConfigError(f"training.aux_weights: must be a list of finite numbers ≥ 0, got {self.aux_weights!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"training.device: must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"training.{name}: unknown value {value!r}; use one of {', '.join(choices)}")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"training.{name}: must be a positive integer, got {value!r}")
