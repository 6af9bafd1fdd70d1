"""The training settings form: dataset (with a preview), hyperparameters, device, memory estimate.

Every value maps to one :class:`core.training.TrainConfig` field; the form starts from the
project's ``training`` section and :meth:`TrainingSettings.config` gives it back with the edits.
The dataset opens in a background thread (generating ``shapes`` or reading MNIST takes a moment)
and is cached, so the preview, the class list and the data/graph check are ready when training
starts. The training-memory estimate comes from :meth:`core.analysis.Analysis.memory` and follows
every keystroke. When the data doesn't fit the graph (:func:`core.training.check_fit`), a banner
says why and offers the fix as one undoable edit on the document.

Pretrained weights: with the document (:meth:`TrainingSettings.set_document`) the form holds the
input pipeline of the torchvision weights its project records
(:func:`core.training.weights.project_pipeline`: resize, centre crop, mean/std) and opens folder
data through it, so the preview shows what the network sees (``FolderSource.decode``). When the
Input is not the size those weights were trained at (:func:`core.training.data.check_pipeline`), a
second banner says so with a Fix that sets the Input shape; that is advice, not a reason to refuse
a run, so it never counts as the data not fitting.

The dataset, optimizer, schedule, loss and precision choices and the number fields come from their
declarations (:mod:`core.training.options`): each choice is followed by the settings its options
read, and a field is enabled when the chosen option reads it (momentum for SGD and RMSprop).

The Task chooser comes first (:data:`core.training.tasks.TASKS`): the dataset list offers the
task's datasets only, the task's own settings (temperature, generated tokens) and, for token
data, Tokens and Prompt are shown while the image-only ones (augmentation) are hidden. Token data
is previewed as a few decoded samples in text, not as a mosaic.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.project import ProjectError
from core.training import DatasetError, DataSource, TrainConfig, check_fit
from core.training.data import check_pipeline
from core.training.health import device_memory
from core.training.options import (
    AMP_MODES,
    DATASETS,
    GAN_LOSS_LABELS,
    GAN_LOSSES,
    GENERAL_PARAMS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    DataArg,
    ParamOption,
    memory_key,
    params_of,
)
from core.training.tasks import DEFAULT_TASK, TASKS, TaskOption, task_option
from core.units import human_bytes
from gui.theme import Theme, current_theme
from gui.training.form_fields import banner as _banner
from gui.training.form_fields import combo as _combo
from gui.training.form_fields import field as _field
from gui.training.form_fields import select as _select
from gui.training.images import MosaicView, chw_to_rgb
from gui.training.staged import Steps, begin
from gui.training.text_view import token_preview
from gui.training.worker import open_data

if TYPE_CHECKING:
    from core.training.weights import InputPipeline

PREVIEW = 16
TEXT_PREVIEW = 4  # decoded token samples shown in place of the mosaic
TOKENIZERS = {"char": ("Characters", "one token per character: a small vocabulary, any text"),
              "word": ("Words", "one token per word (split at white space): a larger vocabulary, shorter sequences")}


def available_devices() -> list[tuple[str, str]]:
    """(label, device) pairs of what this machine offers: GPUs with name and memory, else the CPU."""
    out: list[tuple[str, str]] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append((f"cuda:{i} — {props.name} ({props.total_memory / (1 << 30):.0f} GiB)", f"cuda:{i}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(("Apple GPU (MPS)", "mps"))
    ram = device_memory(torch.device("cpu"))
    out.append((f"CPU ({torch.get_num_threads()} threads" + (f", {human_bytes(ram)} RAM)" if ram else ")"), "cpu"))
    best = out[0][0].split(" (")[0] if out[0][1] != "cpu" else "CPU"
    return [(f"Auto — {best}", "auto"), *out]


def data_key(cfg: TrainConfig, input_shape: Any, pipeline: InputPipeline | None = None) -> tuple[Any, ...]:
    """What identifies an opened data source (a folder decodes to the Input's size, through the
    pretrained weights' ``pipeline`` when there is one: a folder opened without it is another source;
    token sequences are as long as the Input)."""
    folder = cfg.dataset.startswith("folder")
    shape = tuple(input_shape) if _sized_by_input(cfg) and input_shape is not None else None
    return (cfg.dataset, cfg.data_root, cfg.seed, cfg.train_size, cfg.val_size, cfg.val_fraction, cfg.val_folder,
            shape, pipeline if folder else None, cfg.task, cfg.tokenize)


def _sized_by_input(cfg: TrainConfig) -> bool:
    """Whether the graph's Input decides the data's size: folder images, and token sequences (T)."""
    return cfg.dataset.startswith("folder") or task_option(cfg.task).modality == "tokens"


# Data-source loaders still running, kept alive by the module rather than by a form that may close first.
_RUNNING_LOADERS: set[tuple[QThread, _Loader]] = set()


def wait_for_loaders(ms: int = 60_000) -> None:
    """Wait for every data loader still running, also those a later choice replaced: a closing window's
    process must not end with one (Qt aborts for a QThread destroyed while it runs)."""
    for thread, _loader in list(_RUNNING_LOADERS):
        thread.wait(ms)


class _Loader(QObject):
    """Opens one data source on a worker thread."""

    done = Signal(object, object, str)  # key, DataSource or None, error message

    def __init__(self, key: tuple[Any, ...], cfg: TrainConfig, shape: Any,
                 pipeline: InputPipeline | None = None) -> None:
        super().__init__()
        self.key, self.cfg, self.shape, self.pipeline = key, cfg, shape, pipeline

    def run(self) -> None:
        try:
            data = open_data(self.cfg, self.shape, pipeline=self.pipeline)
            data.preview(PREVIEW, "train")  # warm (folder sources decode here, not on the GUI thread)
            self.done.emit(self.key, data, "")
        except DatasetError as exc:
            self.done.emit(self.key, None, str(exc))
        except Exception as exc:  # an unreadable file of any kind: one line for the user
            self.done.emit(self.key, None, f"{type(exc).__name__}: {exc}")
        # Quit from here, not through a queued slot: the GUI thread may be blocked in wait_for_data().
        QThread.currentThread().quit()


class TrainingSettings(QWidget):
    """The form. ``data_changed`` fires when a data source finished opening (or failed)."""

    data_changed = Signal(object)  # DataSource | None
    changed = Signal()

    def __init__(self, apply_fixes: Callable[[list[Any], str], None] | None = None,
                 parent: QWidget | None = None, staged: bool = False) -> None:
        super().__init__(parent)
        self.apply_fixes = apply_fixes
        self.base = TrainConfig()
        self.analysis: Any = None
        self.graph: Any = None
        self.data: DataSource | None = None
        self.data_error = ""
        self.mismatch: Any = None
        # Pretrained weights: the project whose recorded weights say how images are prepared, their
        # pipeline, and the Input-size advice (a Mismatch that is only a warning).
        self.project: Any = None
        self.pipeline: InputPipeline | None = None
        self.pipeline_advice: Any = None
        self._pipeline_of: tuple[str, ...] | None = None  # what ``pipeline`` was computed from
        self._doc: Any = None
        self._cache: dict[tuple[Any, ...], DataSource] = {}
        self._loading: tuple[tuple[Any, ...], QThread, _Loader] | None = None
        self._wanted_key: tuple[Any, ...] | None = None
        self._filling = False
        self._reload = QTimer(self)
        self._reload.setSingleShot(True)
        self._reload.setInterval(250)
        self._reload.timeout.connect(self.load_data)
        self._held = self._asked = False  # hold_loading
        self.construction = begin(self._build(current_theme()), staged)  # staged: the Training panel's slices

    def _build(self, t: Theme) -> Steps:
        self.task = _combo(TASKS)
        self.dataset = _combo({name: DATASETS[name] for name in TASKS[DEFAULT_TASK].datasets})
        self.data_arg = QLineEdit()
        self.data_arg.setPlaceholderText("folder (optional for MNIST / CIFAR-10)")
        self.browse = QToolButton()
        self.browse.setText("…")
        self.browse.clicked.connect(self._browse)
        arg_row = QHBoxLayout()
        arg_row.setSpacing(4)
        arg_row.addWidget(self.data_arg, 1)
        arg_row.addWidget(self.browse)
        self.preview = MosaicView()
        self.preview.setFixedHeight(96)
        # token data: a few decoded samples in place of the mosaic
        self.text_preview = QLabel("")
        self.text_preview.setObjectName("textPreview")
        self.text_preview.setWordWrap(True)
        self.text_preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_preview.setTextFormat(Qt.TextFormat.RichText)
        self.text_preview.hide()
        self.classes = QLabel("")
        self.classes.setWordWrap(True)
        self.classes.setStyleSheet(f"color: {t.text_dim};")

        # One field per declared setting that has a form range: the general ones, then each
        # choice's (in declaration order), so a new optimizer's new setting gets its row.
        self.optimizer = _combo(OPTIMIZERS)
        self.schedule = _combo(SCHEDULES)
        self.loss = _combo(LOSSES)
        # GANs train with their own adversarial loss instead (shown in the Loss row's place)
        self.gan_loss = _combo({k: _Named(GAN_LOSS_LABELS.get(k, k), doc) for k, doc in GAN_LOSSES.items()})
        self.choices = {"optimizer": self.optimizer, "schedule": self.schedule, "loss": self.loss,
                        "gan_loss": self.gan_loss}
        self.fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        self._owners: dict[str, str] = {}  # setting → the choice whose options read it
        general = [p for p in GENERAL_PARAMS if p.form is not None]
        for param in general:
            self.fields[param.key] = _field(param)
        chosen: list[tuple[str, list[ParamOption]]] = []
        for choice, registry in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("loss", LOSSES)):
            params = [p for p in params_of(registry) if p.form is not None and p.key not in self.fields]
            for param in params:
                self.fields[param.key] = _field(param)
                self._owners[param.key] = choice
            chosen.append((choice, params))
        # the names the rest of the GUI and the tests know these fields by
        self.batch, self.epochs, self.seed = self._int("batch_size"), self._int("epochs"), self._int("seed")
        self.lr, self.momentum = self._float("lr"), self._float("momentum")
        self.weight_decay, self.warmup = self._float("weight_decay"), self._float("warmup_epochs")
        self.smoothing = self._float("label_smoothing")
        self.augment = QCheckBox("Random crop + flip")
        self.augment.setToolTip("Batched on the device: random crop with padding and horizontal flip, "
                                "as suits the dataset")
        # Token tasks: how text is split, where generated text starts, and each task's own settings.
        self.tokenize = _combo({k: _Named(label, doc) for k, (label, doc) in TOKENIZERS.items()})
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("the validation text's first words")
        self.prompt.setToolTip("Language models: the start of the text generated after each epoch")
        self.task_fields: dict[str, QSpinBox | QDoubleSpinBox] = {}
        for task in TASKS.values():
            for param in task.params:
                if param.form is not None and param.key not in self.task_fields:
                    self.task_fields[param.key] = _field(param)
        self.fields.update(self.task_fields)
        self.device = QComboBox()
        for label, value in available_devices():
            self.device.addItem(label, value)
        self.amp = _combo(AMP_MODES)
        self.memory = QLabel("")
        self.memory.setWordWrap(True)

        yield  # the fields above, the banners, the form and its first filling below: ~20 ms each
        self.banner, self.banner_text, self.fix_button = _banner(
            "fitBanner", t, "Change the graph to fit the data (one undoable edit)", self.apply_fit_fix)
        # The weights' Input size: its own banner (a run still trains; see the module docstring).
        self.weights_banner, self.weights_text, self.weights_fix = _banner(
            "weightsBanner", t, "Set the Input to the size the weights were trained at (one undoable edit)",
            self.apply_pipeline_fix)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(5)
        form.addRow("Task", self.task)
        form.addRow("Dataset", self.dataset)
        form.addRow("", arg_row)
        form.addRow(self.preview)
        form.addRow(self.text_preview)
        form.addRow(self.classes)
        form.addRow("Tokens", self.tokenize)
        form.addRow("Prompt", self.prompt)
        for key, box in self.task_fields.items():
            form.addRow(next(p.label for t in TASKS.values() for p in t.params if p.key == key), box)
        run_params = [p for p in general if p.key != "seed"]  # the seed closes the form, by the device
        for param in run_params:
            form.addRow(param.label, self.fields[param.key])
        for choice, params in chosen:
            form.addRow(choice.capitalize(), self.choices[choice])
            if choice == "loss":
                form.addRow("GAN loss", self.gan_loss)
            for param in params:
                form.addRow(param.label, self.fields[param.key])
        form.addRow("Augmentation", self.augment)
        form.addRow("Device", self.device)
        form.addRow("Mixed precision", self.amp)
        for param in general:
            if param not in run_params:
                form.addRow(param.label, self.fields[param.key])
        self.form = form
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(form)
        layout.addWidget(self.memory)
        layout.addWidget(self.banner)
        layout.addWidget(self.weights_banner)
        layout.addStretch(1)
        for combo in self.findChildren(QComboBox):  # long labels must not widen the column
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        for field in (*self.fields.values(), self.data_arg, self.prompt):
            field.setMinimumWidth(60)

        for box in self.fields.values():
            box.valueChanged.connect(self._edited)
        for combo in (self.optimizer, self.schedule, self.loss, self.gan_loss, self.device, self.amp):
            combo.currentIndexChanged.connect(self._edited)
        self.augment.toggled.connect(self._edited)
        self.prompt.textChanged.connect(self._edited)
        self.task.currentIndexChanged.connect(self._task_edited)
        self.tokenize.currentIndexChanged.connect(self._dataset_edited)
        self.dataset.currentIndexChanged.connect(self._dataset_edited)
        self.data_arg.textChanged.connect(self._dataset_edited)
        self.seed.valueChanged.connect(self._dataset_edited)
        yield
        self.set_config(self.base)

    def _int(self, key: str) -> QSpinBox:
        box = self.fields[key]
        assert isinstance(box, QSpinBox), f"{key} is declared as a whole number"
        return box

    def _float(self, key: str) -> QDoubleSpinBox:
        box = self.fields[key]
        assert isinstance(box, QDoubleSpinBox), f"{key} is declared as a number"
        return box

    # ------------------------------------------------------------------------------------ config

    def set_config(self, cfg: TrainConfig) -> None:
        """Fill the form from ``cfg`` (the project's section); keys without a widget are kept."""
        self.base = cfg
        self._filling = True
        _select(self.task, cfg.task)
        self._offer_datasets(task_option(cfg.task))
        kind, _, arg = cfg.dataset.partition(":")
        _select(self.dataset, kind)
        self.data_arg.setText(arg or (cfg.data_root or ""))
        for key, field in self.fields.items():
            field.setValue(getattr(cfg, key))
        for key, combo in self.choices.items():
            _select(combo, getattr(cfg, key))
        self.augment.setChecked(cfg.augment)
        _select(self.tokenize, cfg.tokenize)
        self.prompt.setText(cfg.prompt)
        if not _select(self.device, cfg.device):
            _select(self.device, "auto")
        _select(self.amp, cfg.amp)
        self._filling = False
        self._sync_enabled()
        self.update_memory()
        self._reload.start()

    def config(self) -> TrainConfig:
        """The form's settings on top of the project's section (raises ConfigError on a bad value)."""
        kind = str(self.dataset.currentData())
        arg = self.data_arg.text().strip()
        dataset, root = kind, self.base.data_root
        where = DATASETS[kind].arg if kind in DATASETS else DataArg.NONE
        if where in (DataArg.FOLDER, DataArg.TEXT):
            dataset = f"{kind}:{arg}" if arg else kind
        elif where is DataArg.ROOT:
            root = arg or None
        return self.base.updated(
            task=self.task.currentData(), tokenize=self.tokenize.currentData(), prompt=self.prompt.text(),
            dataset=dataset, data_root=root, augment=self.augment.isChecked(), device=self.device.currentData(),
            amp=self.amp.currentData(), **{key: field.value() for key, field in self.fields.items()},
            **{key: combo.currentData() for key, combo in self.choices.items()})

    def set_analysis(self, analysis: Any, graph: Any) -> None:
        old_shape = getattr(self.analysis, "input_shape", None)
        self.analysis, self.graph = analysis, graph
        self.update_memory()
        cfg = self.config_or_none()
        if cfg is not None and _sized_by_input(cfg) and analysis.input_shape != old_shape:
            self._reload.start()
        if not self.refresh_pipeline():  # a new pipeline re-checks the fit itself
            self.check_fit()

    # ---------------------------------------------------------------------------- pretrained weights

    def set_document(self, doc: Any) -> None:
        """Follow ``doc``'s project: the pipeline of the weights it records now, and again whenever
        the document's modified state changes (loading weights records them and marks it modified)."""
        if self._doc is not None:
            try:
                self._doc.modified_changed.disconnect(self._modified)
            except (RuntimeError, TypeError):
                pass
        self._doc = doc
        doc.modified_changed.connect(self._modified)
        self.set_project(doc.project)

    def set_project(self, project: Any) -> None:
        """The project whose recorded weights decide how folder images are prepared."""
        self.project = project
        self.refresh_pipeline()

    def _modified(self, _modified: bool) -> None:
        self.refresh_pipeline()

    def showEvent(self, event: QShowEvent) -> None:
        """Weights loaded while the panel was hidden (into an already modified document, which sends
        no modified signal): the form reads the project again when it is shown."""
        self.refresh_pipeline()
        super().showEvent(event)

    def refresh_pipeline(self) -> bool:
        """Read the project's recorded weights again; True when their pipeline changed (a folder is
        then opened again through the new one, and the advice follows)."""
        extra = getattr(self.project, "extra", None) or {}
        # what project_pipeline reads: re-resolving the weights on every edit is needless work
        source = tuple(repr(extra.get(k)) for k in ("weights", "torchvision", "imported_from"))
        if source == self._pipeline_of:
            return False
        self._pipeline_of = source
        pipeline: InputPipeline | None = None
        if self.project is not None:
            from core.training.weights import project_pipeline

            try:
                pipeline = project_pipeline(self.project)
            except ProjectError:  # a malformed entry: the project's loader names it; prepare images plainly
                pipeline = None
        if pipeline == self.pipeline:
            return False
        self.pipeline = pipeline
        cfg = self.config_or_none()
        if cfg is not None and cfg.dataset.startswith("folder"):
            self._reload.start()
        self.check_fit()
        return True

    def config_or_none(self) -> TrainConfig | None:
        try:
            return self.config()
        except Exception:  # a half-typed value: the memory line says so when it matters
            return None

    def _edited(self) -> None:
        if self._filling:
            return
        self._sync_enabled()
        self.update_memory()
        self.changed.emit()

    def _dataset_edited(self) -> None:
        if self._filling:
            return
        self._sync_enabled()
        self._reload.start()
        self.changed.emit()

    @property
    def task_option(self) -> TaskOption:
        """The chosen task's declaration."""
        return task_option(str(self.task.currentData()))

    def _task_edited(self) -> None:
        """Another task: offer its datasets (its default unless the chosen one is among them)."""
        if self._filling:
            return
        self._filling = True
        self._offer_datasets(self.task_option)
        self._filling = False
        self._dataset_edited()
        self.update_memory()

    def _offer_datasets(self, task: TaskOption) -> None:
        """Fill the dataset list with ``task``'s datasets, keeping the chosen one when it is offered."""
        current = str(self.dataset.currentData())
        self.dataset.clear()
        for name in task.datasets:
            option = DATASETS[name]
            self.dataset.addItem(option.label, name)
            self.dataset.setItemData(self.dataset.count() - 1, option.doc, Qt.ItemDataRole.ToolTipRole)
        if not _select(self.dataset, current):
            _select(self.dataset, task.default_dataset)

    def _sync_enabled(self) -> None:
        dataset = DATASETS.get(str(self.dataset.currentData()))
        where = dataset.arg if dataset is not None else DataArg.NONE
        self.data_arg.setEnabled(where is not DataArg.NONE)
        self.browse.setEnabled(where in (DataArg.FOLDER, DataArg.ROOT))
        self.browse.setToolTip("Choose the text file" if self._picks_file() else "Choose the folder")
        self.data_arg.setPlaceholderText(dataset.placeholder if dataset is not None else "")
        task = self.task_option
        tokens = task.modality == "tokens"
        self.form.setRowVisible(self.augment, not tokens)  # random crop and flip are for images
        self.form.setRowVisible(self.tokenize, task.target == "next-token")  # text is split into chars or words
        self.form.setRowVisible(self.prompt, task.target == "next-token")
        self.form.setRowVisible(self.loss, task.target != "gan")  # a GAN's loss is the adversarial one
        self.form.setRowVisible(self.gan_loss, task.target == "gan")
        own = {p.key for p in task.params}
        for key, box in self.task_fields.items():
            self.form.setRowVisible(box, key in own)
        registries: dict[str, Any] = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES}
        for key, choice in self._owners.items():
            option = registries[choice].get(str(self.choices[choice].currentData()))
            self.fields[key].setEnabled(option is not None and any(p.key == key for p in option.params))

    def _picks_file(self) -> bool:
        """Whether the dataset's argument is a file (``text:FILE``) rather than a folder."""
        return self.dataset.currentData() == "text"

    def _browse(self) -> None:
        if self._picks_file():
            path, _ = QFileDialog.getOpenFileName(self, "Choose the text file", self.data_arg.text(),
                                                  "Text files (*.txt *.md *.csv);;All files (*)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Choose the dataset folder", self.data_arg.text())
        if path:
            self.data_arg.setText(path)

    def set_theme(self, theme: Theme) -> None:
        """Restyle the class list, the fit banner and the memory line for ``theme`` (View ▸ theme)."""
        self.classes.setStyleSheet(f"color: {theme.text_dim};")
        self.banner.setStyleSheet(f"#fitBanner {{ border: 1px solid {theme.warning}; border-radius: 4px; }}")
        self.weights_banner.setStyleSheet(f"#weightsBanner {{ border: 1px solid {theme.warning}; "
                                          "border-radius: 4px; }")
        self._check_pipeline()
        self.update_memory()
        self.preview.update()

    # ------------------------------------------------------------------------------------ memory

    def update_memory(self) -> None:
        t = current_theme()
        if self.analysis is None or not getattr(self.analysis, "ok", False):
            self.memory.setText(f"<span style='color:{t.text_dim}'>Training memory: fix the graph's errors to "
                                "see the estimate.</span>")
            return
        est = self.analysis.memory(self.batch.value(), memory_key(str(self.optimizer.currentData()),
                                                                  self.momentum.value()))
        device = str(self.device.currentData())
        total = _device_total(device)
        warn = total is not None and est.total > 0.85 * total
        colour = t.error if warn else t.text
        extra = (f" — more than this device's {human_bytes(total)}: lower the batch size"
                 if warn and total is not None else (f" of {human_bytes(total)}" if total else ""))
        self.memory.setText(
            f"<span style='color:{colour}'>Training memory ≈ <b>{human_bytes(est.total)}</b>{extra}</span><br>"
            f"<span style='color:{t.text_dim}'>weights {human_bytes(est.params)} · grads {human_bytes(est.grads)}"
            f" · optimizer {human_bytes(est.optimizer_state)} · activations {human_bytes(est.activations)} "
            f"at batch {est.batch_size}</span>")

    # -------------------------------------------------------------------------------------- data

    def hold_loading(self, held: bool) -> None:
        """While ``held``, opening the data waits (the Training panel being made in slices: the loader's
        thread held the interpreter lock during them); released, it opens what was asked for meanwhile."""
        self._held = held
        if not held and self._asked:
            self._asked = False
            self._reload.start()

    def load_data(self) -> None:
        """Open the configured data source (cached; in a worker thread)."""
        if self._held:
            self._asked = True
            return
        cfg = self.config_or_none()
        if cfg is None:
            return
        self.refresh_pipeline()  # open through the weights the project records now
        shape = getattr(self.analysis, "input_shape", None)
        key = data_key(cfg, shape, self.pipeline)
        self._wanted_key = key
        if key in self._cache:
            self._set_data(self._cache[key], "")
            return
        if self._loading is not None and self._loading[0] == key:
            return
        self.classes.setText("Opening the dataset…")
        loader = _Loader(key, cfg, shape, self.pipeline)
        # No Qt parent: a thread owned by this form would be destroyed with it while still opening
        # the data (the window closed meanwhile), and Qt aborts the process for that. The module
        # keeps the pair alive until the thread has finished; a late result finds no receiver.
        thread = QThread()
        loader.moveToThread(thread)
        thread.started.connect(loader.run)
        loader.done.connect(self._loaded)
        pair = (thread, loader)
        _RUNNING_LOADERS.add(pair)
        thread.finished.connect(lambda: _RUNNING_LOADERS.discard(pair))
        thread.finished.connect(thread.deleteLater)
        self._loading = (key, thread, loader)
        thread.start()

    def _loaded(self, key: tuple[Any, ...], data: DataSource | None, error: str) -> None:
        if self._loading is not None and self._loading[0] == key:
            self._loading = None
        if data is not None:
            self._cache[key] = data
        if key != self._wanted_key:
            self.load_data()  # the user changed the dataset meanwhile
            return
        self._set_data(data, error)

    def _set_data(self, data: DataSource | None, error: str) -> None:
        t = current_theme()
        self.data, self.data_error = data, error
        tokens = data is not None and getattr(data, "modality", "image") == "tokens"
        image_task = self.task_option.modality == "image"  # a token set that failed to open: no empty mosaic
        self.preview.setVisible(not tokens and (data is not None or image_task))
        self.text_preview.setVisible(tokens)
        if data is None:
            self.preview.set_tiles(None)
            self.classes.setText(f"<span style='color:{t.error}'>{error}</span>")
        elif tokens:
            self._show_tokens(data)
        else:
            images, labels = data.preview(PREVIEW, "train")
            names = list(data.classes)
            if len(images):
                tiles = np.stack([chw_to_rgb(img.numpy()) for img in images])
                self.preview.set_tiles(tiles, 8)
                self.preview.setToolTip(", ".join(names[i] if i < len(names) else str(i) for i in labels))
            counts = data.class_counts("train")
            shape = "×".join(map(str, data.sample_shape))
            shown = ", ".join(f"{n} {c:,}" for n, c in zip(names[:12], counts[:12], strict=False))
            more = f", … ({len(names)} classes)" if len(names) > 12 else ""
            report = data.report()  # empty class folders left out, unreadable files skipped
            note = f"<br><span style='color:{t.warning}'>{html.escape(report)}</span>" if report else ""
            self.classes.setText(f"<b>{data.train_count:,}</b> train · <b>{data.val_count:,}</b> val · {shape} · "
                                 f"{len(names)} classes<br><span style='color:{t.text_dim}'>{shown}{more}</span>"
                                 f"{note}")
        self.check_fit()
        self.data_changed.emit(data)

    def _show_tokens(self, data: DataSource) -> None:
        """A few training samples decoded to text, and what the data holds where the mosaic's counts would be."""
        preview, counts = token_preview(data, current_theme(), TEXT_PREVIEW)
        self.text_preview.setText(preview)
        self.classes.setText(counts)

    def cached(self, cfg: TrainConfig, input_shape: Any) -> DataSource | None:
        """The already opened source for ``cfg`` (through the form's weights pipeline), if the preview opened it."""
        return self._cache.get(data_key(cfg, input_shape, self.pipeline))

    def wait_for_data(self, ms: int = 60_000) -> DataSource | None:
        """Block until the pending data source is open (tests and the screenshot path)."""
        if self._reload.isActive():
            self._reload.stop()
            self.load_data()
        if self._loading is not None:
            self._loading[1].wait(ms)
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.processEvents()
            QCoreApplication.processEvents()
        return self.data

    # ------------------------------------------------------------------------------------ fitting

    def check_fit(self) -> None:
        t = current_theme()
        if self.data is None or self.analysis is None or not getattr(self.analysis, "ok", False):
            self.mismatch = self.pipeline_advice = None
            self.banner.hide()
            self.weights_banner.hide()
            return
        # A GAN's canvas holds two networks that check_fit (one Input, one classifying output) cannot
        # judge: its trainer compares the discriminator's Input with the images and refuses in one
        # sentence when Start is pressed.
        gan = self.task_option.target == "gan"
        self.mismatch = None if gan else check_fit(self.data, self.analysis, self.graph)
        self._check_pipeline()
        if self.mismatch is None:
            self.banner.hide()
            return
        self.banner_text.setText(f"<span style='color:{t.warning}'><b>The data doesn't fit the network.</b></span> "
                                 f"{self.mismatch.message}.")
        fixes = [f for f in self.mismatch.fixes if f.node]
        self.fix_button.setVisible(bool(fixes))
        self.fix_button.set_label("Fix: " + "; ".join(f.label for f in fixes) if fixes else "Fix")
        self.banner.show()

    def _check_pipeline(self) -> None:
        """The weights' Input-size advice for the opened data, as the engine words its run note."""
        t = current_theme()
        ready = self.analysis is not None and getattr(self.analysis, "ok", False)
        # the source's own pipeline, as the engine asks: the form's data was opened through the
        # current one (after a change, the reload it started brings the advice)
        self.pipeline_advice = (check_pipeline(self.data, self.analysis, self.graph)
                                if ready and self.data is not None else None)
        if self.pipeline_advice is None:
            self.weights_banner.hide()
            return
        message = self.pipeline_advice.message
        self.weights_text.setText(f"<span style='color:{t.warning}'><b>Pretrained weights</b></span> — "
                                  f"{html.escape(message[:1].upper() + message[1:])}.")
        fixes = [f for f in self.pipeline_advice.fixes if f.node]
        self.weights_fix.setVisible(bool(fixes))
        self.weights_fix.set_label("Fix: " + "; ".join(f.label for f in fixes) if fixes else "Fix")
        self.weights_banner.show()

    def apply_pipeline_fix(self) -> None:
        """Set the Input to the weights' training size (one undoable edit, like the fit fix)."""
        if self.pipeline_advice is None or self.apply_fixes is None:
            return
        fixes = [f for f in self.pipeline_advice.fixes if f.node]
        if fixes:
            self.apply_fixes(fixes, "Set the Input to the pretrained weights' size")

    def apply_fit_fix(self) -> None:
        if self.mismatch is None or self.apply_fixes is None or self.data is None:
            return
        fixes = [f for f in self.mismatch.fixes if f.node]
        if fixes:
            self.apply_fixes(fixes, f"Fit the network to {self.data.name}")


class _Named:
    """A choice without a declaration of its own (the tokenizers): its label and its doc."""

    def __init__(self, label: str, doc: str) -> None:
        self.label, self.doc = label, doc


def _device_total(device: str) -> int | None:
    try:
        if device == "auto":
            dev = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        else:
            dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            return None
        return device_memory(dev)
    except (RuntimeError, ValueError, AssertionError):
        return None


__all__ = ["TrainingSettings", "available_devices", "data_key", "wait_for_loaders"]
