"""Data sources for training: ``open_dataset(spec)`` and the dataset/graph compatibility check.

``spec`` is what ``--dataset`` and the project's ``training.dataset`` hold:

- ``shapes`` — built-in procedural 10-class 3×32×32 shapes (:mod:`.shapes`), no download;
- ``mnist[:DIR]``, ``fashion-mnist[:DIR]``, ``cifar10[:DIR]`` — torchvision file layouts (:mod:`.files`);
- ``folder:DIR`` — one subfolder per class, streamed (:mod:`.folder`);
- ``shapes-seg`` — built-in 3×64×64 scenes with a class per pixel (:mod:`.segmentation`);
- ``segfolder:DIR``, ``voc[:DIR]`` — images with masks, Pascal VOC 2012 (:mod:`.seg_files`);
- ``synthetic:C,H,W,CLASSES`` — random class-coloured noise of any shape, for throughput tests;
- ``text:FILE`` — character- or word-level language modelling on a UTF-8 text file (:mod:`.text`);
- ``sentences``, ``brackets``, ``digitsum`` — generated token sets (:mod:`.sequences`).

The image sets are ``modality == "image"``, the last four token sets (:class:`.tokens.TokenSource`);
a task (:mod:`core.training.tasks`) takes the datasets it declares and refuses the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.finetune import head_of, main_output
from core.training.data import shapes as _shapes
from core.training.data.base import Augment, BatchStream, DatasetError, DataSource, InMemorySource, Split
from core.training.data.folder import FolderSource
from core.training.data.tokens import TokenSource
from core.training.options import DATASETS, aliases, dataset_usage
from core.training.tasks import task_option

if TYPE_CHECKING:
    from core.training.weights import InputPipeline

KINDS = tuple(DATASETS)  # declared with their labels and docs in core.training.options
_ALIASES = aliases(DATASETS)
SHAPES_TRAIN, SHAPES_VAL = 20_000, 4_000
SYNTHETIC_TRAIN, SYNTHETIC_VAL = 2_048, 512
TOKEN_SETS = ("sentences", "brackets", "digitsum")  # generated token sets (no argument)
TOKEN_KINDS = ("text", *TOKEN_SETS)  # the dataset kinds whose samples are token sequences
SEG_KINDS = ("shapes-seg", "segfolder", "voc")  # images with a class per pixel (target "mask")


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``--dataset`` value: ``kind`` and its argument (a folder, or the synthetic shape)."""

    kind: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"


def parse_spec(text: str) -> DatasetSpec:
    """``"mnist:/data"`` → ``DatasetSpec("mnist", "/data")``; raises :class:`DatasetError` if unknown."""
    text = str(text).strip()
    kind, _, arg = text.partition(":")
    kind = _ALIASES.get(kind.lower(), kind.lower())
    if kind not in KINDS:
        raise DatasetError(f"unknown dataset {text!r}; use one of {dataset_usage()}")
    if kind == "folder" and not arg:
        raise DatasetError("folder needs a path: --dataset folder:DIR (one subfolder per class)")
    if kind == "segfolder" and not arg:
        raise DatasetError("segfolder needs a path: --dataset segfolder:DIR (images/ and masks/ with the same "
                           "file stems)")
    if kind == "text" and not arg:
        raise DatasetError("text needs a file: --dataset text:FILE (any UTF-8 text)")
    if kind == "synthetic":
        _synthetic_dims(arg or "")
    if kind in ("shapes", "shapes-seg", *TOKEN_SETS) and arg:
        raise DatasetError(f"{kind} takes no argument, got {text!r}")
    return DatasetSpec(kind, arg or None)


def _synthetic_dims(arg: str) -> tuple[int, int, int, int]:
    try:
        dims = tuple(int(v) for v in arg.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 4 or min(dims) < 1 or dims[3] < 2:
        raise DatasetError(f"synthetic needs four positive integers C,H,W,CLASSES (CLASSES ≥ 2), got {arg!r}; "
                           "e.g. --dataset synthetic:3,32,32,10")
    return dims  # type: ignore[return-value]


def open_dataset(spec: str | DatasetSpec, *, root: str | Path | None = None, seed: int = 0,
                 train_size: int | None = None, val_size: int | None = None, val_fraction: float = 0.1,
                 image_shape: Sequence[int] | None = None, val_folder: str | Path | None = None,
                 download: bool = True, workers: int | None = None,
                 log: Callable[[str], None] | None = None, pipeline: InputPipeline | None = None,
                 task: str | None = "classification", seq_len: int | None = None,
                 tokenize: str = "char") -> DataSource:
    """Open a data source. ``train_size``/``val_size`` set the generated sizes (shapes, synthetic,
    sentences, brackets, digitsum) or cap the loaded ones (a class-balanced prefix is not attempted:
    the first N are taken). ``image_shape`` (C, H, W) is the size folder images are decoded to (the
    graph's Input). ``pipeline`` (the pretrained weights' resize/crop/mean/std,
    :func:`core.training.weights.project_pipeline`) makes folder images what the weights were trained
    on; the built-in sets keep their own statistics.

    ``task`` (a :mod:`core.training.tasks` name) refuses a dataset it does not take, in one sentence.
    ``seq_len`` is T of the token sets (the graph's Input length; ``None``: 35 for text and
    sentences, 32 for brackets and digitsum); ``tokenize`` (``char``/``word``) splits text and
    sentences into characters or words."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    _check_task(spec, task)
    if spec.kind in TOKEN_KINDS:
        return _token_source(spec, seed, train_size, val_size, val_fraction, seq_len, tokenize)
    folder = Path(spec.arg) if spec.arg and spec.kind not in ("synthetic",) else (Path(root) if root else None)
    source: DataSource
    if spec.kind == "shapes":
        # A GAN learns to draw the whole image: the classification set's background gradients and
        # pixel noise would be most of what its generator spends itself on, so it gets the plain shapes
        source = shapes_source(seed, train_size or SHAPES_TRAIN, val_size if val_size is not None else SHAPES_VAL,
                               plain=task == "gan")
    elif spec.kind == "shapes-seg":
        from core.training.data import segmentation as seg

        source = seg.shapes_seg_source(seed, train_size or seg.SHAPES_SEG_TRAIN,
                                       val_size if val_size is not None else seg.SHAPES_SEG_VAL)
    elif spec.kind in ("segfolder", "voc"):
        from core.training.data import seg_files

        shape = tuple(int(v) for v in image_shape) if image_shape is not None else None
        stats = (tuple(pipeline.mean), tuple(pipeline.std)) if pipeline is not None else None  # pretrained weights'
        if spec.kind == "voc":
            source = seg_files.load_voc(folder, shape, download, log, train_size, val_size, stats)
        else:
            source = seg_files.load_segfolder(Path(spec.arg or ""), shape, Path(val_folder) if val_folder else None,
                                              val_fraction, seed, train_size, val_size, log, stats)
    elif spec.kind == "synthetic":
        c, h, w, k = _synthetic_dims(spec.arg or "")
        source = synthetic_source((c, h, w), k, train_size or SYNTHETIC_TRAIN,
                                  val_size if val_size is not None else SYNTHETIC_VAL, seed)
    elif spec.kind in ("mnist", "fashion-mnist"):
        from core.training.data.files import load_idx_dataset

        source = _capped(load_idx_dataset(spec.kind, folder, download, log), train_size, val_size)
    elif spec.kind == "cifar10":
        from core.training.data.files import load_cifar10

        source = _capped(load_cifar10(folder, download, log), train_size, val_size)
    else:
        shape = tuple(int(v) for v in image_shape) if image_shape is not None else (3, 224, 224)
        if len(shape) != 3:
            raise DatasetError(f"folder datasets hold images: the graph's Input shape must be C,H,W, got {list(shape)}")
        source = FolderSource(Path(spec.arg or ""), shape, Path(val_folder) if val_folder else None,
                              val_fraction, seed, workers, pipeline)  # type: ignore[arg-type]
    return source


def _check_task(spec: DatasetSpec, task: str | None) -> None:
    """A dataset the task does not take is refused with the datasets it does take."""
    if task is None:
        return
    try:
        option = task_option(task)
    except KeyError as exc:
        raise DatasetError(str(exc.args[0])) from None
    if spec.kind in option.datasets:
        return
    has = "token sequences" if spec.kind in TOKEN_KINDS else "images"
    needs = "token data" if option.modality == "tokens" else "image data"
    if option.target == "mask":
        needs, has = "images with masks", has if spec.kind in TOKEN_KINDS else "images with a class each"
    elif spec.kind in SEG_KINDS:
        has = "images with masks (segmentation)"
    if option.modality == "tokens" and spec.kind in TOKEN_KINDS:
        needs = "text" if option.target == "next-token" else "labelled sequences"
    usages = ", ".join(DATASETS[name].usage for name in option.datasets)
    raise DatasetError(f"The {option.name} task needs {needs} ({usages}); {spec.kind} is {has}: "
                       f"choose one of those datasets or another task")


def _token_source(spec: DatasetSpec, seed: int, train_size: int | None, val_size: int | None,
                  val_fraction: float, seq_len: int | None, tokenize: str) -> DataSource:
    from core.training.data import sequences as seqs
    from core.training.data.text import text_source
    from core.training.data.tokens import check_tokenize

    check_tokenize(tokenize)
    if spec.kind == "text":
        return text_source(Path(spec.arg or ""), seq_len or seqs.TEXT_SEQ_LEN, tokenize, val_fraction,
                           train_size, val_size)
    if spec.kind == "sentences":
        return seqs.sentences_source(seed, seqs.SENTENCES_TRAIN if train_size is None else train_size,
                                     seqs.SENTENCES_VAL if val_size is None else val_size,
                                     seq_len or seqs.TEXT_SEQ_LEN, tokenize)
    if spec.kind == "brackets":
        return seqs.brackets_source(seed, seqs.BRACKETS_TRAIN if train_size is None else train_size,
                                    seqs.BRACKETS_VAL if val_size is None else val_size,
                                    seq_len or seqs.CLASS_SEQ_LEN)
    return seqs.digitsum_source(seed, seqs.DIGITSUM_TRAIN if train_size is None else train_size,
                                seqs.DIGITSUM_VAL if val_size is None else val_size, seq_len or seqs.CLASS_SEQ_LEN)


def _embedding_problems(source: DataSource, graph: Any, fixes: list[Any]) -> list[str]:
    """An Embedding fed by the Input must have a vector for every token id (0 … V−1), or the first
    batch with a high id fails inside torch ("index out of range in self")."""
    from core.layers.registry import get_spec
    from core.layers.spec import Fix, FixAction, ParamError

    vocab = len(getattr(source, "vocab", ()))
    spec = get_spec("Embedding")
    if graph is None or spec is None or not vocab:
        return []
    problems: list[str] = []
    for nid, node in graph.nodes.items():
        if node.type != "Embedding" or not any(graph.nodes[p].type == "Input" for p in graph.predecessors(nid)):
            continue
        try:
            size = int(spec.resolve(node.params)["num_embeddings"])
        except (ParamError, TypeError, ValueError):
            continue  # the analysis reports a bad parameter itself
        if size < vocab:
            problems.append(f"the dataset {source.name} has {vocab} token ids but {nid} has {size} embeddings: "
                            f"set {nid}.num_embeddings to {vocab}")
            fixes.append(Fix(f"set {nid}.num_embeddings to {vocab}", FixAction.SET_PARAM, nid, "num_embeddings",
                             vocab))
    return problems


def shapes_source(seed: int = 0, train: int = SHAPES_TRAIN, val: int = SHAPES_VAL,
                  plain: bool = False) -> InMemorySource:
    """The built-in shapes set; train and val come from different seeds (no shared images).
    ``plain``: each shape in one light colour on black (what the GAN task trains on)."""
    tx, ty = _shapes.generate(train, (seed * 2 + 1) % 2**64, plain=plain)  # torch seeds are < 2**64
    vx, vy = _shapes.generate(val, (seed * 2 + 2) % 2**64, plain=plain)
    return InMemorySource(name="shapes", classes=_shapes.CLASSES, train=Split(tx, ty), val=Split(vx, vy))


def synthetic_source(shape: tuple[int, int, int], classes: int, train: int = SYNTHETIC_TRAIN,
                     val: int = SYNTHETIC_VAL, seed: int = 0) -> InMemorySource:
    """Noise around a per-class random mean image: learnable, any shape, instant."""
    gen = torch.Generator().manual_seed((int(seed) + 7919) % 2**64)  # torch seeds are < 2**64
    templates = torch.rand((classes, *shape), generator=gen).mul_(160).add_(48)  # in place: 600 MB for ImageNet

    def make(n: int) -> Split:
        labels = torch.randint(0, classes, (n,), generator=gen)
        return Split(_noisy(templates, labels, gen), labels)

    names = tuple(f"class {i}" for i in range(classes))
    return InMemorySource(name=f"synthetic:{','.join(map(str, (*shape, classes)))}", classes=names,
                          train=make(train), val=make(val))


def _noisy(templates: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, rows: int = 64) -> torch.Tensor:
    """``uint8(clamp(templates[labels] + 40·N(0, 1), 0, 255))``, made ``rows`` images at a time: in one
    piece, 1000 ImageNet-sized classes took three float copies of the whole set (~2 GB, 10–28 s).

    The same bytes as in one piece: torch's CPU normal sampler draws in blocks of 16 values and redraws
    the last 16 of a tensor whose size is not a multiple of 16, so blocks of ``rows`` (a multiple of
    16) images draw the same stream, as long as the last block holds 16 values or more (else it joins
    the one before: tests/core/test_synthetic_data.py).
    """
    n, shape = len(labels), tuple(templates.shape[1:])
    per = max(1, math.prod(shape))
    ends = [*range(rows, n, rows), n]
    if len(ends) > 1 and (ends[-1] - ends[-2]) * per < 16:
        del ends[-2]
    out = torch.empty((n, *shape), dtype=torch.uint8)
    start = 0
    for end in ends:
        block = torch.randn((end - start, *shape), generator=gen).mul_(40).add_(templates[labels[start:end]])
        out[start:end] = block.clamp_(0, 255)  # float to uint8 truncates, as .to(torch.uint8) does
        start = end
    return out


def _capped(source: InMemorySource, train: int | None, val: int | None) -> InMemorySource:
    if train is None and val is None:
        return source
    t = Split(source.train.images[:train], source.train.labels[:train])
    v = Split(source.val.images[:val], source.val.labels[:val])
    return InMemorySource(name=source.name, classes=source.classes, train=t, val=v)


@dataclass(frozen=True)
class Mismatch:
    """Why the data doesn't fit the graph, and the parameter edits that would fix it."""

    message: str
    fixes: tuple[Any, ...] = ()  # core.layers.spec.Fix objects (set_param on Input / head)


def check_fit(source: DataSource, analysis: Any, graph: Any = None) -> Mismatch | None:
    """Compare the data (sample shape, class count) with the graph's Input and first output.

    Images: a 1-D Input whose size equals C·H·W is accepted (an MLP on flattened images); a mask
    target (segmentation) needs an output of classes×H×W with the mask's H×W. Token
    data needs an Input of shape [T]; a next-token target an output of T×V (a prediction over the
    vocabulary at every step), a class target an output of (classes,). Returns ``None`` when they
    fit, or the mismatch with its fixes (``Fix`` from :mod:`core.layers.spec`).
    """
    if getattr(source, "modality", "image") == "tokens":
        return _check_token_fit(source, analysis, graph)
    if getattr(source, "target", "class") == "mask":
        return _check_mask_fit(source, analysis, graph)
    problems: list[str] = []
    fixes: list[Any] = []
    _image_input_problem(source, analysis, graph, problems, fixes, flat_ok=True)
    outs = [s for s in analysis.output_shapes if s is not None]
    if outs:
        width = _numel(tuple(outs[0]))
        if width != source.num_classes:
            problems.append(_width_problem(source, width, graph, fixes))
    if not problems:
        return None
    return Mismatch("; and ".join(problems), tuple(fixes))


def _image_input_problem(source: DataSource, analysis: Any, graph: Any, problems: list[str], fixes: list[Any],
                         flat_ok: bool) -> None:
    """The graph's Input must take the dataset's C×H×W images (``flat_ok``: or C·H·W values)."""
    from core.layers.spec import Fix, FixAction

    data_shape = tuple(source.sample_shape)
    in_shape = tuple(analysis.input_shape) if analysis.input_shape is not None else None
    if in_shape is None or in_shape == data_shape or (flat_ok and len(in_shape) == 1
                                                      and in_shape[0] == _numel(data_shape)):
        return
    shown = "×".join(map(str, data_shape))
    problems.append(f"the dataset {source.name} gives {shown} images but the graph's Input is "
                    f"{'×'.join(map(str, in_shape))}: set the Input shape to {list(data_shape)}")
    fixes.append(Fix(f"set Input shape to {list(data_shape)}", FixAction.SET_PARAM, _input_node(graph), "shape",
                     list(data_shape)))


def _check_mask_fit(source: DataSource, analysis: Any, graph: Any) -> Mismatch | None:
    """Segmentation: the first output must be classes×H×W with the masks' H×W. A wrong class count
    is fixed on the head (the last conv's ``out_channels``); a wrong H×W by an ``Upsample`` inserted
    before the Output, bilinear, by the integer factor when there is one, else to the mask's size."""
    problems: list[str] = []
    fixes: list[Any] = []
    _image_input_problem(source, analysis, graph, problems, fixes, flat_ok=False)
    outs = [tuple(int(v) for v in s) for s in analysis.output_shapes if s is not None]
    k, h, w = source.num_classes, int(source.sample_shape[1]), int(source.sample_shape[2])
    if outs:
        out = outs[0]
        if len(out) != 3:
            problems.append(f"a segmentation network gives a class score per pixel: its output must be classes×H×W "
                            f"({k}×{h}×{w}), got {'×'.join(map(str, out))}; end it with a 1×1 Conv2d to {k} "
                            f"channels and upsample to {h}×{w} (no Flatten or Linear head)")
        else:
            if out[0] != k:
                found = head_of(graph) if graph is not None else None
                own = _class_fixes(graph, found[0], found[1], k) if found else []
                todo = " and ".join(f.label for f in own) or f"set the last convolution's out_channels to {k}"
                problems.append(f"the dataset {source.name} has {k} classes but the network's output has {out[0]} "
                                f"channels: {todo}")
                fixes += own
            # a wrong Input is fixed above: the output's size then follows the Input's (a fully
            # convolutional network), so the output is judged against the Input the graph has
            in_shape = tuple(analysis.input_shape) if analysis.input_shape is not None else ()
            ref = (int(in_shape[1]), int(in_shape[2])) if len(in_shape) == 3 else (h, w)
            if out[1:] != ref:
                problems.append(_mask_size_problem(source.name, out[1:], (h, w), ref, graph, fixes))
    if not problems:
        return None
    return Mismatch("; and ".join(problems), tuple(fixes))


def _class_fixes(graph: Any, head: str, param: str, k: int) -> list[Any]:
    """Set the head's width to ``k``; when the head is d2l's FCN upsampler (a ConvTranspose2d fed
    by a convolution giving as many channels, the class scores), that convolution too, and the
    upsampler's ``in_channels`` if it was written out."""
    from core.layers.spec import Fix, FixAction

    fixes = [Fix(f"set {head}.{param} to {k}", FixAction.SET_PARAM, head, param, k)]
    node = graph.nodes[head]
    preds = graph.predecessors(head)
    if node.type != "ConvTranspose2d" or len(preds) != 1:
        return fixes
    scores = graph.nodes[preds[0]]
    old = node.params.get("out_channels")
    if scores.type == "Conv2d" and scores.params.get("out_channels") == old and len(graph.successors(scores.id)) == 1:
        fixes.insert(0, Fix(f"set {scores.id}.out_channels to {k}", FixAction.SET_PARAM, scores.id, "out_channels", k))
        if node.params.get("in_channels") is not None:
            fixes.append(Fix(f"set {head}.in_channels to {k}", FixAction.SET_PARAM, head, "in_channels", k))
    return fixes


def _mask_size_problem(name: str, got: tuple[int, ...], want: tuple[int, int], ref: tuple[int, int], graph: Any,
                       fixes: list[Any]) -> str:
    """"the masks are 64×64 but the network predicts 2×2": an Upsample before the Output fixes it.
    ``ref`` is the H×W the output should have now (the Input's, the masks' once the Input fits)."""
    from core.layers.spec import Fix, FixAction

    gh, gw = int(got[0]), int(got[1])
    rh, rw = ref
    factor = rh // gh if gh and gw and rh % gh == 0 and rw % gw == 0 and rh // gh == rw // gw and rh > gh else None
    params: dict[str, Any] = {"mode": "bilinear"}
    if factor is not None:
        params["scale_factor"] = [float(factor), float(factor)]
        what = f"an Upsample ×{factor} (bilinear) before the Output"
    else:
        params["size"] = [want[0], want[1]]
        what = f"an Upsample to {want[0]}×{want[1]} (bilinear) before the Output"
    out_id = main_output(graph) if graph is not None else None
    if out_id is not None:
        fixes.append(Fix(f"insert {what}", FixAction.INSERT_BEFORE, out_id, layer_type="Upsample",
                         layer_params=params))
    advice = f"insert {what}" + (f", or a ConvTranspose2d with stride {factor}" if factor else "")
    if ref != want:
        return f"the network predicts {gh}×{gw} per class from its {rh}×{rw} Input, not one class per pixel: {advice}"
    return f"the masks of {name} are {want[0]}×{want[1]} but the network predicts {gh}×{gw} per class: {advice}"


def _width_problem(source: DataSource, width: int, graph: Any, fixes: list[Any]) -> str:
    """"set fc.out_features to 10", and its fix when one parameter sets the output's size."""
    from core.layers.spec import Fix, FixAction

    found = head_of(graph) if graph is not None else None
    head, param = found if found is not None else (None, "")
    where = f"{head}.{param}" if head else "the last layer's output width"
    if head:
        fixes.append(Fix(f"set {head}.{param} to {source.num_classes}", FixAction.SET_PARAM, head, param,
                         source.num_classes))
    what = "tokens in its vocabulary" if getattr(source, "target", "class") == "next-token" else "classes"
    return (f"the dataset {source.name} has {source.num_classes} {what} but the network's output has {width} "
            f"values{' per step' if what.startswith('tokens') else ''}: set {where} to {source.num_classes}")


def _check_token_fit(source: DataSource, analysis: Any, graph: Any) -> Mismatch | None:
    from core.layers.spec import Fix, FixAction

    problems: list[str] = []
    fixes: list[Any] = []
    t = int(source.sample_shape[0])
    in_shape = tuple(analysis.input_shape) if analysis.input_shape is not None else None
    if in_shape is not None and in_shape != (t,):
        problems.append(f"the dataset {source.name} gives sequences of {t} token ids but the graph's Input is "
                        f"{'×'.join(map(str, in_shape))}: set the Input shape to [{t}]")
        fixes.append(Fix(f"set Input shape to [{t}]", FixAction.SET_PARAM, _input_node(graph), "shape", [t]))
    problems += _embedding_problems(source, graph, fixes)
    outs = [tuple(s) for s in analysis.output_shapes if s is not None]
    if outs:
        out = outs[0]
        k = source.num_classes
        if getattr(source, "target", "class") == "next-token":
            if len(out) != 2:
                problems.append(f"a language model predicts a token at every step: the network's output must be "
                                f"T×V ({t}×{k}), got {'×'.join(map(str, out))}; apply the last Linear to every "
                                f"step (no Select, Mean or Flatten before it) with out_features {k}")
            elif out[1] != k:
                problems.append(_width_problem(source, int(out[1]), graph, fixes))
        elif len(out) > 1 and _numel(out) != k:
            problems.append(f"a sequence classifier gives one class per sequence but the network's output is "
                            f"{'×'.join(map(str, out))}: take the last step (Select) or the mean over time (Mean) "
                            f"before the last Linear, with out_features {k}")
        elif _numel(out) != k:
            problems.append(_width_problem(source, _numel(out), graph, fixes))
    if not problems:
        return None
    return Mismatch("; and ".join(problems), tuple(fixes))


def check_pipeline(source: DataSource, analysis: Any, graph: Any = None,
                   pipeline: InputPipeline | None = None) -> Mismatch | None:
    """A warning (never a reason to refuse a run) when the graph's Input H×W is not the size the
    pretrained weights were trained at: the network still runs, but accuracy may drop.

    ``pipeline`` defaults to the one the source applies (a folder opened with the weights'
    pipeline). Returns the advice with a fix that sets the Input shape, or ``None``.
    Kept apart from :func:`check_fit`, whose result makes the engine refuse to train.
    """
    from core.layers.spec import Fix, FixAction

    pipeline = pipeline if pipeline is not None else getattr(source, "pipeline", None)
    in_shape = tuple(analysis.input_shape) if analysis.input_shape is not None else None
    if pipeline is None or in_shape is None or len(in_shape) != 3:
        return None
    crop = int(pipeline.crop)
    if tuple(in_shape[1:]) == (crop, crop):
        return None
    wanted = [int(in_shape[0]), crop, crop]
    message = (f"the weights were trained at {crop}×{crop}; your Input is {in_shape[1]}×{in_shape[2]} — accuracy "
               f"may drop; set the Input to {'×'.join(map(str, wanted))}")
    fix = Fix(f"set Input shape to {wanted}", FixAction.SET_PARAM, _input_node(graph), "shape", wanted)
    return Mismatch(message, (fix,))


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for v in shape:
        n *= int(v)
    return n


def _input_node(graph: Any) -> str | None:
    if graph is None:
        return None
    return next((nid for nid, node in graph.nodes.items() if node.type == "Input"), None)


__all__ = [
    "KINDS", "Augment", "BatchStream", "DataSource", "DatasetError", "DatasetSpec", "FolderSource",
    "InMemorySource", "Mismatch", "Split", "TokenSource", "check_fit", "check_pipeline", "open_dataset", "parse_spec",
    "shapes_source",
    "synthetic_source",
]
