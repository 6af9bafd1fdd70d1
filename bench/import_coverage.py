"""Benchmark: how many torchvision models the importer opens, why the others are refused, how long it takes.

Imports every model of ``torchvision.models.list_models`` for three families, built without
weights (on the meta device where torchvision allows, so nothing is allocated):

- classification (``torchvision.models``): the whole model, at its weights' crop size;
- segmentation (``torchvision.models.segmentation``): the whole model, at its weights' resize size
  (520 px);
- detection (``torchvision.models.detection``): the backbone only (``model.backbone.body`` where the
  backbone has a feature pyramid, else ``model.backbone``), at the detector's own input size
  (``model.transform.min_size``, 300 px for SSD300 …); the heads post-process boxes in Python and
  are no graph of layers;
- timm, when it is installed (it is no dependency of NetCanvas): one model per timm architecture
  module (the first name ``timm.list_models(module=…)`` gives, 98 in timm 1.0), at its
  ``pretrained_cfg`` input size: the third-party model zoo of issue 12, subclassed norms and all.

Prints one line per model (imported or refused with the importer's one-line reason, and the import
time), the totals per family, and the refusals grouped by reason (module paths and numbers taken
out, so the same cause in different places counts once).

With ``--verify``, each imported model is also built for real (random weights, BatchNorm statistics
that are not the identity) and checked against its import: parameters, ``state_dict`` keys under a
strict load, and outputs on one random input (``equal`` when identical to the bit, else the
largest difference). This allocates the weights and runs both models once: use ``--only``.

Run: ``.venv/bin/python bench/import_coverage.py [--family classification|segmentation|detection|timm]
[--only SUBSTRING] [--verify]`` (timm is included by default when it is importable).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.importer import ModelImportError, import_module, torchvision_input_shape


@dataclass
class Outcome:
    family: str
    name: str
    shape: tuple[int, ...]
    seconds: float
    reason: str | None  # None when imported
    nodes: int = 0


def _on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` on the meta device (no weights allocated); for real where an init reads its own values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return build()
        except (NotImplementedError, RuntimeError):
            return build()


def _build(name: str, **kwargs: object) -> nn.Module:
    import torchvision

    return _on_meta(lambda: torchvision.models.get_model(name, **kwargs))


def _size_from_weights(name: str, key: str, default: int) -> int:
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name)
        value = getattr(next(iter(weights)).transforms, "keywords", {}).get(key, default)
    except (ValueError, StopIteration, TypeError):
        return default
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def classification(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    model = _build(name)
    return model, torchvision_input_shape(name, model)


def segmentation(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    model = _build(name, weights=None, weights_backbone=None)
    size = _size_from_weights(name, "resize_size", 520)
    return model, (3, size, size)


def detection(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    model = _build(name, weights=None, weights_backbone=None)
    backbone = model.backbone
    body = getattr(backbone, "body", backbone)
    sizes = getattr(getattr(model, "transform", None), "min_size", (800,))
    size = int(sizes[0] if isinstance(sizes, (list, tuple)) else sizes)
    return body, (3, size, size)


def timm_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    import timm

    model = _on_meta(lambda: timm.create_model(name, pretrained=False))
    size = tuple(int(d) for d in model.pretrained_cfg.get("input_size", (3, 224, 224)))
    return model, size


FAMILIES: dict[str, tuple[str, Callable[[str], tuple[nn.Module, tuple[int, ...]]]]] = {
    "classification": ("", classification),
    "segmentation": ("segmentation", segmentation),
    "detection": ("detection", detection),
    "timm": ("", timm_model),
}


def _has_timm() -> bool:
    import importlib.util

    return importlib.util.find_spec("timm") is not None


def _names(family: str) -> list[str]:
    if family == "timm":
        import timm

        firsts = [timm.list_models(module=m) for m in timm.list_modules()]
        return sorted(names[0] for names in firsts if names)
    import torchvision

    sub = FAMILIES[family][0]
    module = getattr(torchvision.models, sub) if sub else torchvision.models
    return sorted(torchvision.models.list_models(module=module))


def run_one(family: str, name: str) -> Outcome:
    build = FAMILIES[family][1]
    model, shape = build(name)
    start = time.perf_counter()
    try:
        graph = import_module(model, shape)
    except ModelImportError as exc:
        return Outcome(family, name, shape, time.perf_counter() - start, str(exc).splitlines()[0])
    except Exception as exc:  # a crash is a finding: say it, keep going
        return Outcome(family, name, shape, time.perf_counter() - start,
                       f"CRASH {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return Outcome(family, name, shape, time.perf_counter() - start, None, len(graph.nodes))


def verify(family: str, name: str) -> str:
    """The import of ``name`` built for real, against the source: params, strict keys, outputs."""
    from core.compiler import compile_graph
    from core.importer import import_with_weights

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "timm":
            import timm

            model = timm.create_model(name, pretrained=False)
            shape = tuple(int(d) for d in model.pretrained_cfg.get("input_size", (3, 224, 224)))
        else:
            import torchvision

            model = torchvision.models.get_model(name)
            shape = torchvision_input_shape(name, model)
    for m in model.modules():  # statistics that are not the identity, so a wrong buffer shows
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    graph, state = import_with_weights(model, shape)
    compiled = compile_graph(graph)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    same_keys = sorted(compiled.state_dict()) == sorted(state) and len(state) == len(model.state_dict())
    params = (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in compiled.parameters()))
    x = torch.randn(1, *shape)
    with torch.no_grad():
        want, got = model(x), compiled(x)
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor):
        outputs = "equal" if torch.equal(want, got) else f"max difference {(want - got).abs().max().item():.3g}"
    else:
        outputs = "not compared (structured outputs)"
    return (f"params {params[0]:,} / {params[1]:,}, strict keys {'ok' if same_keys else 'DIFFER'}, "
            f"outputs {outputs}")


def _cause(reason: str) -> str:
    """A refusal without its module paths and numbers, so one cause in many places counts once."""
    text = re.sub(r"'[^']*'", "'…'", reason)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:160]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append")
    parser.add_argument("--only", default="", help="import only the models whose name contains this")
    parser.add_argument("--verify", action="store_true",
                        help="also build each imported model for real and compare its import with it")
    ns = parser.parse_args()
    torch.set_num_threads(1)
    outcomes: list[Outcome] = []
    families = ns.family or [f for f in FAMILIES if f != "timm" or _has_timm()]
    for family in families:
        for name in _names(family):
            if ns.only not in name:
                continue
            try:
                o = run_one(family, name)
            except Exception as exc:  # the zoo could not even build it here: not the importer's count
                print(f"{family:14} {name:38} not built: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
                continue
            outcomes.append(o)
            shape = "×".join(map(str, o.shape))
            verdict = f"imported ({o.nodes} nodes)" if o.reason is None else f"refused: {o.reason}"
            print(f"{family:14} {name:38} {shape:12} {o.seconds:6.2f} s  {verdict}", flush=True)
            if ns.verify and o.reason is None:
                print(f"{'':14} {name:38} verified: {verify(family, name)}", flush=True)
    print()
    for family in families:
        mine = [o for o in outcomes if o.family == family]
        if not mine:
            continue
        ok = [o for o in mine if o.reason is None]
        total = sum(o.seconds for o in ok)
        print(f"{family}: {len(ok)}/{len(mine)} imported ({len(ok) / len(mine):.0%}); "
              f"import time of the imported: {total:.1f} s in all, "
              f"{max((o.seconds for o in ok), default=0.0):.2f} s the slowest")
    causes = Counter(_cause(o.reason) for o in outcomes if o.reason is not None)
    if causes:
        print("\nrefusals by reason:")
        for cause, count in causes.most_common():
            who = ", ".join(o.name for o in outcomes if o.reason is not None and _cause(o.reason) == cause)
            print(f"  {count:3} × {cause}\n        ({who})")


if __name__ == "__main__":
    main()
