"""Every training option, declared once: optimizers, schedules, losses, mixed-precision modes, datasets
and the numeric settings they read.

Each declaration holds the name stored in the project's ``training`` section, the label the GUI
shows, a one-line doc (the ``-h`` text and the tooltip) and the settings it reads with their valid
ranges. :class:`~core.training.config.TrainConfig` validates against these registries, the CLI
builds its ``train`` options from them, the GUI builds its settings form from them, and the
training-memory estimate reads each optimizer's state tensors from them. Adding an optimizer is
one :class:`OptimizerOption` in the ``OPTIMIZERS`` tuple below, and likewise for the others.

Torch is imported inside the builders, not here: the CLI reads these declarations to build its
parser for every command, and ``main.py templates`` should not pay for importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import torch

    from core.training.config import TrainConfig


# ------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Range:
    """The values a number may take; ``None`` bounds are open-ended."""

    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is not allowed (a learning rate of 0)
    below_maximum: bool = False  # the maximum itself is not allowed (label smoothing of 1)

    def contains(self, value: float) -> bool:
        if self.minimum is not None and (value <= self.minimum if self.above_minimum else value < self.minimum):
            return False
        return not (self.maximum is not None
                    and (value >= self.maximum if self.below_maximum else value > self.maximum))


def _number(value: float | None) -> str:
    """A bound as the user reads it: integers in full (2**64 is 18446744073709551616, not 1.84467e+19)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e16):
        return str(int(value))  # type: ignore[arg-type]
    return f"{value:g}"


@dataclass(frozen=True)
class ParamOption:
    """One numeric training setting: a :class:`TrainConfig` field, how it is given and what it may be.

    ``kind`` is ``int``, ``float``, ``bool`` or ``tuple`` (a pair of floats, each in ``valid``).
    ``form`` is the spin box's range in the GUI (inside ``valid``; ``None``: not in the form);
    ``flag`` the command-line option (``None``: project file only); a bool's flag sets
    ``flag_value`` (``False`` for a setting that is on by default and the flag turns off).
    """

    key: str
    label: str
    doc: str
    kind: type
    valid: Range = field(default_factory=Range)
    form: tuple[float, float] | None = None
    decimals: int = 0
    flag: str | None = None
    metavar: str | None = None
    limit_reason: str = ""  # why the maximum is what it is, said when a value is over it
    flag_value: bool = True

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (``None`` when it is), in the words of the config's messages."""
        if self.kind is bool:
            # torch takes any truthy value here, and older files may hold 0/1
            return None if isinstance(value, bool | int) else f"must be true or false, got {value!r}"
        if self.kind is tuple:
            ok = (isinstance(value, list | tuple) and len(value) == 2
                  and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                          and self.valid.contains(v) for v in value))
            return None if ok else f"must be two numbers in {self._interval()}, got {value!r}"
        if self.kind is int:
            if not isinstance(value, int) or isinstance(value, bool) or not self._above(value):
                return f"must be {self._wanted()}, got {value!r}"
        elif not isinstance(value, int | float) or isinstance(value, bool) or not self._above(value):
            return f"must be {self._wanted()}, got {value!r}"
        elif not math.isfinite(value):
            # nan passes every comparison and inf every lower bound: a learning rate of inf or nan
            # would train to nan at once and the advice would quote it back ("try nan")
            return f"must be a finite number, got {value}"
        if not self.valid.contains(value):
            word = "below" if self.valid.below_maximum else "at most"
            why = f" ({self.limit_reason})" if self.limit_reason else ""
            return f"must be {word} {_number(self.valid.maximum)}{why}, got {value}"
        return None

    def _above(self, value: float) -> bool:
        return Range(self.valid.minimum, None, self.valid.above_minimum).contains(value)

    def _wanted(self) -> str:
        noun = "integer" if self.kind is int else "number"
        lo = self.valid.minimum
        if (lo == 0 and self.valid.above_minimum) or (lo == 1 and self.kind is int and not self.valid.above_minimum):
            return f"a positive {noun}"
        if lo is None:
            return f"a {noun}" if noun == "number" else "an integer"
        article = "an" if noun == "integer" else "a"
        return f"{article} {noun} {'>' if self.valid.above_minimum else '≥'} {lo:g}"

    def _interval(self) -> str:
        lo, hi = self.valid.minimum, self.valid.maximum
        return (f"{'(' if self.valid.above_minimum else '['}{'-∞' if lo is None else f'{lo:g}'}, "
                f"{'∞' if hi is None else f'{hi:g}'}{')' if self.valid.below_maximum or hi is None else ']'}")


EPOCHS = ParamOption("epochs", "Epochs", "passes over the training set", int, Range(1), form=(1, 100_000),
                     flag="--epochs")
BATCH_SIZE = ParamOption("batch_size", "Batch size", "global batch size (split over DDP processes)", int, Range(1),
                         form=(1, 1 << 16), flag="--batch-size")
SEED = ParamOption("seed", "Seed", "random seed of the initial weights, the data order and generated datasets",
                   int, Range(0, 2**64, below_maximum=True), form=(0, 2**31 - 1), flag="--seed",
                   limit_reason="torch accepts seeds from 0 to 2**64 - 1")
# the form's lowest learning rate is its smallest step at 6 decimals (a spin box rounds 1e-7 to 0)
LR = ParamOption("lr", "Learning rate", "learning rate", float, Range(0, above_minimum=True), form=(1e-6, 10.0),
                 decimals=6, flag="--lr")
MOMENTUM = ParamOption("momentum", "Momentum", "momentum (SGD, RMSprop; 0: none)", float, Range(0),
                       form=(0.0, 0.999), decimals=3, flag="--momentum")
NESTEROV = ParamOption("nesterov", "Nesterov", "Nesterov momentum (SGD with momentum > 0)", bool,
                       flag="--nesterov")
BETAS = ParamOption("betas", "Betas", "Adam's decay rates of the gradient's running mean and square", tuple,
                    Range(0, 1, below_maximum=True))
WEIGHT_DECAY = ParamOption("weight_decay", "Weight decay", "L2 penalty (decoupled for AdamW)", float, Range(0),
                           form=(0.0, 1.0), decimals=6, flag="--weight-decay")
WARMUP = ParamOption("warmup_epochs", "Warm-up epochs", "linear warm-up epochs", float, Range(0),
                     form=(0.0, 1000.0), decimals=2, flag="--warmup", metavar="EPOCHS")
STEP_SIZE = ParamOption("step_size", "Step size", "step schedule: epochs per decay (0: a third of the run)", int,
                        Range(0))
GAMMA = ParamOption("gamma", "Decay factor", "step and plateau schedules: factor of each decay", float, Range(0))
PLATEAU_PATIENCE = ParamOption("plateau_patience", "Plateau patience",
                               "plateau schedule: epochs without a better validation loss before a decay", int,
                               Range(0))
LABEL_SMOOTHING = ParamOption("label_smoothing", "Label smoothing", "cross-entropy label smoothing", float,
                              Range(0, 1, below_maximum=True), form=(0.0, 0.99), decimals=2,
                              flag="--label-smoothing")

# Fine-tuning: a frozen layer's BatchNorm would still update its running mean and variance in train
# mode, drifting away from the pretrained statistics the frozen weights were trained with.
FROZEN_BN_EVAL = ParamOption("frozen_bn_eval", "Frozen BatchNorm in eval mode",
                             "BatchNorm layers that are frozen keep their running statistics (eval mode) "
                             "while the rest trains", bool, flag="--train-frozen-bn", flag_value=False)

TEMPERATURE = ParamOption("temperature", "Temperature",
                          "language models: sampling temperature of the generated text (lower: safer)", float,
                          Range(0, above_minimum=True), form=(0.05, 10.0), decimals=2, flag="--temperature")
GENERATE_LENGTH = ParamOption("generate_length", "Generated tokens",
                              "language models: tokens generated after each epoch (0: none)", int, Range(0),
                              form=(0, 10_000), flag="--generate-length", metavar="TOKENS")
IGNORE_INDEX = ParamOption("ignore_index", "Ignore index",
                           "segmentation: the mask value that is no class (object borders, void); "
                           "its pixels count in neither the loss nor the metrics", int, Range(0, 255),
                           form=(0, 255), flag="--ignore-index", metavar="VALUE")
N_CRITIC = ParamOption("n_critic", "Discriminator steps",
                       "GANs: discriminator steps per generator step (WGAN-style critics take 5)", int, Range(1, 100),
                       form=(1, 100), flag="--n-critic", metavar="STEPS")
GENERAL_PARAMS = (BATCH_SIZE, EPOCHS, SEED, FROZEN_BN_EVAL)  # read by every run whatever the choices
# read by some tasks only (core.training.tasks declares which)
TASK_PARAMS = (TEMPERATURE, GENERATE_LENGTH, IGNORE_INDEX, N_CRITIC)
# GANs' adversarial losses (TrainConfig.gan_loss): the non-saturating BCE-with-logits of Goodfellow et al.
# (the generator maximises log D(G(z))) and the hinge loss of SAGAN/BigGAN
GAN_LOSSES: dict[str, str] = {
    "bce": "non-saturating BCE with logits: D learns real → 1, fake → 0; G maximises log D(G(z))",
    "hinge": "hinge: D minimises relu(1 − D(x)) + relu(1 + D(G(z))); G minimises −D(G(z))",
}
GAN_LOSS_LABELS: dict[str, str] = {"bce": "Non-saturating BCE", "hinge": "Hinge"}  # the GUI's names


# ------------------------------------------------------------------------------------ optimizers


def _sgd(params: list[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           weight_decay=cfg.weight_decay)


def _adam(params: list[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)  # type: ignore[arg-type]


def _adamw(params: list[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)  # type: ignore[arg-type]


def _rmsprop(params: list[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _adagrad(params: list[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@dataclass(frozen=True)
class OptimizerOption:
    """An optimizer. ``state_tensors``: tensors of a parameter's size it keeps per trainable
    parameter, as torch allocates them (SGD: momentum_buffer; Adam: exp_avg, exp_avg_sq);
    ``state_tensors_without_momentum``: the count when momentum 0 drops a buffer (``None``: never
    does), which the memory estimate offers as ``<name>_nomomentum``."""

    name: str
    label: str
    doc: str
    params: tuple[ParamOption, ...]
    state_tensors: int
    build: Callable[[list[Any], TrainConfig], torch.optim.Optimizer]
    state_tensors_without_momentum: int | None = None


_OPTIMIZERS = (
    OptimizerOption("sgd", "SGD", "stochastic gradient descent with momentum (Nesterov's if asked)",
                    (LR, MOMENTUM, NESTEROV, WEIGHT_DECAY), 1, _sgd, state_tensors_without_momentum=0),
    OptimizerOption("adam", "Adam", "per-weight steps from running means of the gradient and its square",
                    (LR, BETAS, WEIGHT_DECAY), 2, _adam),
    OptimizerOption("adamw", "AdamW", "Adam with decoupled weight decay", (LR, BETAS, WEIGHT_DECAY), 2, _adamw),
    OptimizerOption("rmsprop", "RMSprop", "steps scaled by a running mean of the squared gradients",
                    (LR, MOMENTUM, WEIGHT_DECAY), 2, _rmsprop, state_tensors_without_momentum=1),
    OptimizerOption("adagrad", "Adagrad", "steps scaled by the sum of the squared gradients so far",
                    (LR, WEIGHT_DECAY), 1, _adagrad),
)

NO_MOMENTUM = "_nomomentum"  # suffix of an optimizer's memory-estimate key when momentum is 0


def memory_key(optimizer: str, momentum: float) -> str:
    """The memory-estimate name of ``optimizer`` run with ``momentum`` (``sgd_nomomentum`` at 0)."""
    opt = OPTIMIZERS.get(optimizer)
    if opt is not None and opt.state_tensors_without_momentum is not None and momentum == 0:
        return optimizer + NO_MOMENTUM
    return optimizer


def memory_choices() -> list[tuple[str, str]]:
    """``(key, label)`` of every optimizer setting the memory estimate tells apart, in registry order."""
    out: list[tuple[str, str]] = []
    for opt in OPTIMIZERS.values():
        if opt.state_tensors_without_momentum is None:
            out.append((opt.name, opt.label))
        else:
            out += [(opt.name, f"{opt.label} (momentum)"), (opt.name + NO_MOMENTUM, f"{opt.label} (no momentum)")]
    return out


def state_tensors(key: str) -> int | None:
    """Optimizer state tensors per trainable parameter for a :func:`memory_key` (``None``: unknown)."""
    key = key.lower()
    opt = OPTIMIZERS.get(key)
    if opt is not None:
        return opt.state_tensors
    opt = OPTIMIZERS.get(key.removesuffix(NO_MOMENTUM)) if key.endswith(NO_MOMENTUM) else None
    return opt.state_tensors_without_momentum if opt is not None else None


# ------------------------------------------------------------------------------------- schedules


class ScheduleState(Protocol):
    """What a schedule's factor reads (:class:`core.training.optim.LRSchedule`)."""

    epochs: int
    step_size: int
    gamma: float
    plateau_factor: float


def _cos_between(start: float, end: float, t: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def _onecycle(s: ScheduleState, progress: float) -> float:
    # cosine up from lr/25 over the first 30 %, then down to lr/10⁴: the shape of torch's OneCycleLR
    t = min(progress / max(s.epochs, 1e-9), 1.0)
    return _cos_between(1 / 25, 1.0, t / 0.3) if t < 0.3 else _cos_between(1.0, 1 / 25e4, (t - 0.3) / 0.7)


@dataclass(frozen=True)
class ScheduleOption:
    """A learning-rate schedule: ``factor(state, progress)`` multiplies the learning rate at
    ``progress`` epochs since the start (warm-up is applied on top, the same for every schedule);
    ``aliases`` are other spellings the config accepts."""

    name: str
    label: str
    doc: str
    params: tuple[ParamOption, ...]
    factor: Callable[[ScheduleState, float], float]
    aliases: tuple[str, ...] = ()


_SCHEDULES = (
    ScheduleOption("constant", "Constant", "the same learning rate throughout", (WARMUP,), lambda s, p: 1.0,
                   aliases=("none",)),
    ScheduleOption("step", "Step decay", "× gamma every step_size epochs", (WARMUP, STEP_SIZE, GAMMA),
                   lambda s, p: s.gamma ** int(p // s.step_size)),
    ScheduleOption("cosine", "Cosine", "cosine decay to 0 at the end", (WARMUP,),
                   lambda s, p: 0.5 * (1 + math.cos(math.pi * min(p / max(s.epochs, 1e-9), 1.0))),
                   aliases=("cos",)),
    ScheduleOption("onecycle", "One-cycle", "up over the first 30 %, then down to lr/10⁴ (torch's OneCycleLR)",
                   (WARMUP,), _onecycle, aliases=("one_cycle", "one-cycle")),
    ScheduleOption("plateau", "Reduce on plateau",
                   "× gamma when the validation loss has not improved for plateau_patience epochs",
                   (WARMUP, GAMMA, PLATEAU_PATIENCE), lambda s, p: s.plateau_factor,
                   aliases=("reduce_on_plateau",)),
)


# ---------------------------------------------------------------------------------------- losses


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor, classes: int, cfg: TrainConfig) -> torch.Tensor:
    import torch.nn.functional as F

    return F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)


def _on_one_hot(name: str) -> Callable[[torch.Tensor, torch.Tensor, int, TrainConfig], torch.Tensor]:
    """A loss of ``torch.nn.functional.<name>`` between the logits and the one-hot labels."""

    def loss(logits: torch.Tensor, y: torch.Tensor, classes: int, cfg: TrainConfig) -> torch.Tensor:
        import torch.nn.functional as F

        return getattr(F, name)(logits, F.one_hot(y, classes).to(logits.dtype))  # type: ignore[no-any-return]

    return loss


def pixel_cross_entropy(logits: torch.Tensor, y: torch.Tensor, classes: int, cfg: TrainConfig) -> torch.Tensor:
    """Cross-entropy per pixel of (B, K, H, W) logits against (B, H, W) masks, averaged over the
    labelled pixels: those equal to ``cfg.ignore_index`` count nowhere (label smoothing as set).
    The sum over the count rather than torch's mean, so a batch without a labelled pixel is 0, not NaN."""
    import torch.nn.functional as F

    total = F.cross_entropy(logits, y, ignore_index=cfg.ignore_index, label_smoothing=cfg.label_smoothing,
                            reduction="sum")
    return total / (y != cfg.ignore_index).sum().clamp(min=1)


def _soft_dice(logits: torch.Tensor, y: torch.Tensor, classes: int, cfg: TrainConfig) -> torch.Tensor:
    """1 − the mean over the K classes of the soft Dice coefficient (2·Σ p·g + 1) / (Σ p + Σ g + 1),
    p the softmax probability of the class and g its one-hot truth, summed over the batch (and the
    pixels of (B, K, H, W) logits, where pixels equal to ``cfg.ignore_index`` count nowhere). The +1
    keeps a class absent from truth and prediction at Dice ≈ 1 instead of 0/0."""
    import torch

    probs = torch.softmax(logits.float(), dim=1)
    if logits.ndim > 2:
        valid = (y != cfg.ignore_index).unsqueeze(1).to(probs.dtype)
        target = torch.where(y == cfg.ignore_index, torch.zeros_like(y), y)
    else:
        valid, target = torch.ones_like(probs[:, :1]), y
    truth = torch.zeros_like(probs).scatter_(1, target.unsqueeze(1), 1.0) * valid
    probs = probs * valid
    dims = [0, *range(2, probs.ndim)]
    inter = (probs * truth).sum(dims)
    dice = (2 * inter + 1) / (probs.sum(dims) + truth.sum(dims) + 1)
    return 1 - dice.mean()


def _ce_dice(logits: torch.Tensor, y: torch.Tensor, classes: int, cfg: TrainConfig) -> torch.Tensor:
    """Cross-entropy (per pixel, ignoring ``cfg.ignore_index``, for (B, K, H, W) logits) plus soft Dice."""
    import torch.nn.functional as F

    ce = (pixel_cross_entropy(logits, y, classes, cfg) if logits.ndim > 2
          else F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing))
    return ce + _soft_dice(logits, y, classes, cfg)


@dataclass(frozen=True)
class LossOption:
    """A loss between a (B, K) output and class labels: ``fn(logits, labels, classes, config)``."""

    name: str
    label: str
    doc: str
    params: tuple[ParamOption, ...]
    fn: Callable[[torch.Tensor, torch.Tensor, int, TrainConfig], torch.Tensor]


_LOSSES = (
    LossOption("cross_entropy", "Cross-entropy", "softmax cross-entropy (with optional label smoothing)",
               (LABEL_SMOOTHING,), _cross_entropy),
    LossOption("bce_with_logits", "BCE with logits", "binary cross-entropy of each class against the one-hot label",
               (), _on_one_hot("binary_cross_entropy_with_logits")),
    LossOption("mse", "MSE (L2)", "mean squared error against the one-hot label", (), _on_one_hot("mse_loss")),
    LossOption("l1", "L1", "mean absolute error against the one-hot label", (), _on_one_hot("l1_loss")),
    LossOption("huber", "Huber", "Huber loss against the one-hot label (L2 near 0, L1 beyond 1)", (),
               _on_one_hot("huber_loss")),
    LossOption("dice", "Dice", "1 − mean soft Dice over the classes (softmax; segmentation: ignore-index pixels "
               "left out)", (), _soft_dice),
    LossOption("ce_dice", "Cross-entropy + Dice", "cross-entropy plus soft Dice (segmentation: both leave out "
               "ignore-index pixels)", (LABEL_SMOOTHING,), _ce_dice),
)


# ----------------------------------------------------------------------------------- precision


@dataclass(frozen=True)
class AmpOption:
    """A mixed-precision mode (CUDA only; elsewhere every mode trains in float32)."""

    name: str
    label: str
    doc: str


_AMP_MODES = (
    AmpOption("off", "Off (float32)", "float32 throughout"),
    AmpOption("auto", "Auto (bf16 or fp16)", "bf16 where the GPU supports it, else fp16 with a grad scaler"),
    AmpOption("bf16", "bfloat16", "bfloat16 autocast"),
    AmpOption("fp16", "float16", "float16 autocast with a grad scaler"),
)


# -------------------------------------------------------------------------------------- datasets


class DataArg(Enum):
    """What follows ``NAME:`` in a dataset spec, and where the GUI's field puts it."""

    NONE = "none"  # nothing (generated in memory)
    ROOT = "root"  # an optional folder with the files: data_root
    FOLDER = "folder"  # a required folder, part of the spec
    TEXT = "text"  # a required value typed in, part of the spec


@dataclass(frozen=True)
class DatasetOption:
    """A data source kind (opened by :func:`core.training.data.open_dataset`). ``usage`` is how the
    CLI writes it; ``placeholder`` the hint in the GUI's argument field."""

    name: str
    label: str
    doc: str
    arg: DataArg
    usage: str
    placeholder: str
    aliases: tuple[str, ...] = ()


_FILES = "folder with the files (downloaded if missing)"
_DATASETS = (
    DatasetOption("shapes", "Shapes (built-in)",
                  "procedural 10-class 3×32×32 shapes, no download (for GANs drawn plain: one light colour on black)",
                  DataArg.NONE,
                  "shapes", "generated in memory"),
    DatasetOption("mnist", "MNIST", "handwritten digits, 1×28×28", DataArg.ROOT, "mnist[:DIR]", _FILES),
    DatasetOption("fashion-mnist", "Fashion-MNIST", "clothing images, 1×28×28", DataArg.ROOT,
                  "fashion-mnist[:DIR]", _FILES, aliases=("fashion_mnist", "fashionmnist")),
    DatasetOption("cifar10", "CIFAR-10", "10-class natural images, 3×32×32", DataArg.ROOT, "cifar10[:DIR]", _FILES,
                  aliases=("cifar-10", "cifar")),
    DatasetOption("folder", "Image folder…", "your images, one subfolder per class", DataArg.FOLDER, "folder:DIR",
                  "folder with one subfolder per class", aliases=("imagefolder",)),
    DatasetOption("text", "Text file…", "any UTF-8 text, split into character or word tokens (language models)",
                  DataArg.FOLDER, "text:FILE", "UTF-8 text file", aliases=("txt",)),
    DatasetOption("sentences", "Sentences (built-in)",
                  "simple English sentences from a small grammar (language models), no download",
                  DataArg.NONE, "sentences", "generated in memory"),
    DatasetOption("brackets", "Brackets (built-in)",
                  "generated bracket strings: balanced or not (sequence classification), no download",
                  DataArg.NONE, "brackets", "generated in memory"),
    DatasetOption("digitsum", "Digit sums (built-in)",
                  "generated digit strings: their sum modulo 10 (sequence classification), no download",
                  DataArg.NONE, "digitsum", "generated in memory"),
    DatasetOption("shapes-seg", "Shapes with masks (built-in)",
                  "procedural 3×64×64 scenes of several shapes with a class per pixel (segmentation), no download",
                  DataArg.NONE, "shapes-seg", "generated in memory", aliases=("shapes_seg", "shapesseg")),
    DatasetOption("segfolder", "Segmentation folder…",
                  "your images and masks: images/ and masks/ with the same file stems (segmentation)",
                  DataArg.FOLDER, "segfolder:DIR", "folder with images/ and masks/", aliases=("seg-folder",)),
    DatasetOption("voc", "Pascal VOC 2012", "21-class segmentation (VOC2012 layout)", DataArg.ROOT, "voc[:DIR]",
                  _FILES, aliases=("pascal-voc", "voc2012")),
    DatasetOption("synthetic", "Synthetic tensors", "class-coloured noise of any shape, for throughput tests",
                  DataArg.TEXT, "synthetic:C,H,W,CLASSES", "C,H,W,CLASSES  e.g. 3,32,32,10"),
)


def dataset_usage() -> str:
    """Every dataset as the CLI writes it: ``shapes, mnist[:DIR], …``."""
    return ", ".join(d.usage for d in DATASETS.values())


# ------------------------------------------------------------------------------------ registries

_O = TypeVar("_O", OptimizerOption, ScheduleOption, LossOption, AmpOption, DatasetOption)


def _registry(options: Iterable[_O]) -> dict[str, _O]:
    return {o.name: o for o in options}


OPTIMIZERS: dict[str, OptimizerOption] = _registry(_OPTIMIZERS)
SCHEDULES: dict[str, ScheduleOption] = _registry(_SCHEDULES)
LOSSES: dict[str, LossOption] = _registry(_LOSSES)
AMP_MODES: dict[str, AmpOption] = _registry(_AMP_MODES)
DATASETS: dict[str, DatasetOption] = _registry(_DATASETS)


def aliases(registry: dict[str, ScheduleOption] | dict[str, DatasetOption]) -> dict[str, str]:
    """Other spelling → name, for the registries whose options declare ``aliases``."""
    return {alias: o.name for o in registry.values() for alias in o.aliases}


def params_of(registry: dict[str, OptimizerOption] | dict[str, ScheduleOption] | dict[str, LossOption]
              ) -> list[ParamOption]:
    """The settings the options of ``registry`` read, each once, in declaration order."""
    seen: dict[str, ParamOption] = {}
    for option in registry.values():
        for p in option.params:
            seen.setdefault(p.key, p)
    return list(seen.values())


def all_params() -> Iterator[ParamOption]:
    """Every declared setting once: the general ones, then those of the optimizers, schedules, losses
    and tasks."""
    seen: set[str] = set()
    for p in (*GENERAL_PARAMS, *params_of(OPTIMIZERS), *params_of(SCHEDULES), *params_of(LOSSES), *TASK_PARAMS):
        if p.key not in seen:
            seen.add(p.key)
            yield p
