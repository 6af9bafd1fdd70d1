"""Conformance of every registered layer type with real torch.

For each type in ``all_specs()`` (so types added later are covered without editing this file)
and several parameter settings, the declaration's ``infer`` must predict exactly what torch
builds and computes on a batch of 2: output shape(s), ``parameters()`` and ``buffers()`` element
counts, and MACs as counted by ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2 per sample).
``call_function`` types (Add, Concat …) run their ``function`` and their exported ``code``.
A second table holds invalid settings: ``infer`` must refuse them with a clear message (and a
fix that cures them, where one is offered), and torch must refuse them too, except where we
refuse on purpose what torch silently accepts (marked ``ours_only`` with the reason).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from core.layers import GLOBAL, Category, LayerError, LayerSpec, Window, all_specs, get_spec
from core.layers.spec import UNKNOWN_FIELD, Scale, SequenceRule, Shape, tup

# Per type: (user params, per-sample input shapes). The first entry uses the defaults where the
# defaults are valid. Types without an entry run with their defaults on the first fitting shape
# of FALLBACK_SHAPES.
CASES: dict[str, list[tuple[dict[str, Any], list[Shape]]]] = {
    "Conv1d": [
        ({}, [(3, 20)]),
        ({"out_channels": 8, "kernel_size": 5, "stride": 2, "padding": 2, "dilation": 2, "bias": False}, [(4, 17)]),
        ({"out_channels": 6, "kernel_size": 3, "groups": 3, "padding_mode": "circular", "padding": 1}, [(6, 9)]),
    ],
    "Conv2d": [
        ({}, [(3, 8, 8)]),
        ({"out_channels": 6, "kernel_size": 5, "padding": 2}, [(1, 28, 28)]),  # LeNet's first conv
        ({"out_channels": 8, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False}, [(4, 9, 9)]),
        ({"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 8}, [(8, 6, 6)]),  # depthwise
        ({"out_channels": 6, "kernel_size": [1, 3], "stride": [2, 1], "padding": [0, 1], "groups": 2}, [(4, 7, 8)]),
        ({"out_channels": 4, "kernel_size": 3, "dilation": 2, "padding": 2, "padding_mode": "reflect"}, [(2, 6, 7)]),
        ({"out_channels": 4, "kernel_size": 1}, [(16, 5, 5)]),  # 1×1 bottleneck
    ],
    "ConvTranspose2d": [
        ({}, [(3, 5, 5)]),
        ({"out_channels": 4, "kernel_size": 2, "stride": 2}, [(8, 4, 4)]),  # U-Net up-convolution: size ×2
        ({"out_channels": 6, "kernel_size": [3, 2], "stride": [2, 3], "padding": [1, 0], "output_padding": [1, 2],
          "groups": 2, "bias": False}, [(4, 5, 3)]),
        ({"out_channels": 2, "kernel_size": 3, "dilation": 2, "output_padding": 1}, [(2, 3, 3)]),
        # d2l's bilinear upsampling ×2 (its FCN uses kernel 64, stride 32), and a depthwise one of odd kernel
        ({"out_channels": 4, "kernel_size": 4, "stride": 2, "padding": 1, "weight_init": "bilinear"}, [(4, 5, 5)]),
        ({"out_channels": 6, "kernel_size": 3, "stride": 2, "groups": 6, "bias": False, "weight_init": "bilinear"},
         [(6, 4, 4)]),
    ],
    "Conv3d": [
        ({}, [(3, 5, 6, 7)]),
        ({"out_channels": 4, "kernel_size": [1, 3, 3], "stride": [1, 2, 2], "padding": [0, 1, 1], "groups": 2,
          "bias": False}, [(2, 3, 7, 8)]),
        ({"out_channels": 2, "kernel_size": 2, "dilation": 2, "padding": 1, "padding_mode": "replicate"},
         [(1, 4, 4, 5)]),
    ],
    "Linear": [
        ({}, [(20,)]),
        ({"out_features": 120}, [(400,)]),  # LeNet's first FC
        ({"out_features": 7, "bias": False}, [(5, 12)]),  # on the last axis of a sequence
    ],
    "BatchNorm1d": [
        ({}, [(8,)]),
        ({"affine": False}, [(6, 10)]),
        ({"track_running_stats": False, "momentum": None}, [(6,)]),
        ({"bias": False, "eps": 1e-3}, [(4, 5)]),
    ],
    "BatchNorm2d": [
        ({}, [(8, 4, 4)]),
        ({"affine": False, "track_running_stats": False}, [(3, 5, 5)]),
        ({"bias": False, "momentum": 0.01}, [(5, 3, 2)]),
    ],
    "BatchNorm3d": [({}, [(4, 3, 4, 4)]), ({"affine": False, "momentum": None}, [(2, 2, 3, 3)])],
    "LayerNorm": [
        ({}, [(10,)]),
        ({}, [(4, 6, 6)]),  # last axis only
        ({"normalized_shape": [4, 6, 6]}, [(4, 6, 6)]),  # whole sample
        ({"normalized_shape": [6, 5], "elementwise_affine": False}, [(3, 6, 5)]),
        ({"normalized_shape": [7], "bias": False}, [(3, 7)]),
    ],
    "GroupNorm": [
        ({}, [(64, 4, 4)]),
        ({"num_groups": 3}, [(6, 5, 5)]),
        ({"num_groups": 2, "affine": False}, [(4, 7)]),
        ({"num_groups": 1, "bias": False}, [(8,)]),
    ],
    "LocalResponseNorm": [
        ({}, [(8, 6, 6)]),
        ({"size": 2, "alpha": 1e-3, "beta": 0.5, "k": 2.0}, [(5, 7)]),
    ],
    "Dropout": [({}, [(10,)]), ({"p": 0.0}, [(3, 4, 4)]), ({"p": 1.0, "inplace": True}, [(6,)])],
    "Dropout2d": [
        ({}, [(4, 5, 5)]),
        ({"p": 0.2}, [(4, 6)]),  # C×L: torch warns and drops channels like Dropout1d
    ],
    "ReLU": [({}, [(3, 4, 4)]), ({"inplace": True}, [(10,)])],
    "ReLU6": [({}, [(3, 4, 4)]), ({"inplace": True}, [(5, 7)])],
    "SiLU": [({}, [(3, 4, 4)]), ({"inplace": True}, [(10,)])],
    "Hardswish": [({}, [(3, 4, 4)]), ({"inplace": True}, [(10,)])],
    "Hardsigmoid": [({}, [(3, 4, 4)]), ({"inplace": True}, [(2, 2, 3, 3)])],
    "Sigmoid": [({}, [(6, 28, 28)]), ({}, [(84,)])],
    "Tanh": [({}, [(3, 4, 4)]), ({}, [(7, 9)])],
    "LeakyReLU": [({}, [(3, 4, 4)]), ({"negative_slope": 0.2, "inplace": True}, [(10,)])],
    "PReLU": [({}, [(4, 5, 5)]), ({"num_parameters": 4}, [(4, 5, 5)]), ({"num_parameters": 6, "init": 0.1}, [(6,)])],
    "ELU": [({}, [(3, 4)]), ({"alpha": 0.5}, [(5,)])],
    "GELU": [({}, [(3, 4)]), ({"approximate": "tanh"}, [(2, 3, 3)])],
    "Softmax": [({}, [(10,)]), ({"dim": -1}, [(3, 4, 5)]), ({"dim": 2}, [(3, 4, 5)])],
    "LogSoftmax": [({}, [(10,)]), ({"dim": -2}, [(3, 4)])],
    "MaxPool2d": [
        ({}, [(3, 8, 8)]),
        ({"kernel_size": 3, "stride": 2, "padding": 1}, [(3, 9, 9)]),  # ResNet's stem pool
        ({"kernel_size": [2, 3], "stride": [1, 2], "dilation": 2, "ceil_mode": True}, [(2, 9, 10)]),
        ({"kernel_size": 3, "stride": 2, "ceil_mode": True}, [(2, 2, 2)]),  # a partial window is kept
        ({"return_indices": True}, [(3, 6, 6)]),  # values and their indices, for MaxUnpool2d
    ],
    "AvgPool2d": [
        ({}, [(6, 28, 28)]),
        ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}, [(2, 6, 6)]),
        ({"kernel_size": [2, 4], "divisor_override": 2}, [(2, 6, 8)]),
    ],
    "MaxPool1d": [({}, [(3, 8)]), ({"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True},
                                   [(2, 9)])],
    "AvgPool1d": [({}, [(3, 8)]), ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                    "count_include_pad": False}, [(2, 9)])],
    "MaxPool3d": [({}, [(2, 4, 4, 4)]), ({"kernel_size": [1, 3, 3], "stride": [1, 2, 2], "padding": [0, 1, 1]},
                                        [(2, 3, 7, 6)])],
    "AvgPool3d": [({}, [(2, 4, 4, 4)]), ({"kernel_size": 3, "stride": 1, "padding": 1, "divisor_override": 4},
                                        [(2, 3, 4, 5)])],
    "AdaptiveAvgPool1d": [({}, [(4, 7)]), ({"output_size": 3}, [(2, 10)])],
    "AdaptiveMaxPool1d": [({}, [(4, 7)]), ({"output_size": 4}, [(2, 9)])],
    "AdaptiveAvgPool3d": [({}, [(4, 3, 5, 5)]), ({"output_size": [2, 3, 1]}, [(2, 5, 7, 4)])],
    "MaxUnpool2d": [({}, [(3, 4, 4), (3, 4, 4)]), ({"kernel_size": 3, "stride": 2, "padding": 1},
                                                   [(2, 4, 5), (2, 4, 5)])],
    "AdaptiveAvgPool2d": [({}, [(4, 7, 7)]), ({"output_size": [2, 3]}, [(4, 7, 9)]), ({"output_size": 6}, [(2, 4, 4)])],
    "AdaptiveMaxPool2d": [({}, [(4, 7, 7)]), ({"output_size": [3, 3]}, [(2, 10, 5)])],
    "Flatten": [
        ({}, [(3, 4, 5)]),
        ({"start_dim": 2}, [(3, 4, 5)]),
        ({"end_dim": 2}, [(3, 4, 5)]),
        ({"start_dim": -2, "end_dim": -1}, [(3, 4, 5)]),
    ],
    "Identity": [({}, [(5,)]), ({}, [(3, 4, 4)])],
    "ZeroPad2d": [
        ({}, [(3, 5, 5)]),
        ({"padding": [1, 2, 0, 3]}, [(3, 5, 6)]),
        ({"padding": -1}, [(2, 6, 6)]),  # negative padding crops
        ({"padding": 2}, [(2, 3, 5, 5)]),  # C×D×H×W: pads H and W
    ],
    "ReflectionPad2d": [({}, [(3, 5, 5)]), ({"padding": [1, 2, 0, 3]}, [(2, 4, 5)]), ({"padding": -1}, [(2, 4, 4)])],
    "ReplicationPad2d": [({}, [(3, 5, 5)]), ({"padding": [3, 0, -1, 2]}, [(2, 4, 5)])],
    "ConstantPad2d": [({"value": 1.5}, [(3, 5, 5)]), ({"padding": [1, 2, 0, 3]}, [(2, 3, 4, 5)])],
    "Softplus": [({}, [(3, 4, 4)]), ({"beta": 2.0, "threshold": 5.0}, [(10,)])],
    "Mish": [({}, [(3, 4, 4)]), ({"inplace": True}, [(10,)])],
    "Hardtanh": [({}, [(3, 4, 4)]), ({"min_val": -0.5, "max_val": 2.5}, [(10,)])],
    "Upsample": [
        ({"scale_factor": 2}, [(3, 4, 4)]),
        ({"scale_factor": 1.5, "mode": "bilinear", "align_corners": True}, [(3, 5, 7)]),
        ({"size": [7, 9], "mode": "bicubic"}, [(2, 4, 4)]),
        ({"scale_factor": [2.0, 0.5], "mode": "nearest-exact"}, [(2, 4, 6)]),
        ({"scale_factor": 3, "mode": "linear"}, [(2, 5)]),
        ({"scale_factor": 2, "mode": "trilinear"}, [(2, 3, 4, 4)]),
        ({"size": 5}, [(2, 3)]),
        ({"scale_factor": 1.7, "recompute_scale_factor": True}, [(2, 5, 7)]),
        ({"scale_factor": 0.3}, [(2, 10, 7)]),
    ],
    "ChannelShuffle": [({}, [(4, 3, 3)]), ({"groups": 3}, [(6, 5)])],
    # Importer types (shape.py) whose defaults need a matching input.
    "Reshape": [({"shape": [4, 15]}, [(3, 4, 5)]), ({"shape": [60]}, [(3, 4, 5)])],
    "Split": [({"sections": [1, 3]}, [(4, 5, 5)]), ({"sections": [2, 2, 1], "dim": -1}, [(3, 5)])],
    "Add": [({}, [(4, 5, 5), (4, 5, 5)]), ({}, [(6,), (6,), (6,)])],
    "Multiply": [({}, [(4, 5, 5), (4, 1, 1)]), ({}, [(3, 4), (3, 4), (1, 4)])],
    "Slice": [({"start": 1, "end": 3}, [(4, 5, 5)]), ({"dim": -1, "start": 1}, [(3, 7)]),
              ({"dim": 2, "start": -4, "step": 2}, [(2, 9, 3)]), ({"dim": 3, "end": -1, "start": -9}, [(2, 3, 4)])],
    "Select": [({}, [(4, 5, 5)]), ({"dim": -1, "index": -1}, [(3, 7)]), ({"dim": 2, "index": 2}, [(2, 3, 4)])],
    "Expand": [({"shape": [4, 5, 5]}, [(4, 1, 1)]), ({}, [(1, 6), (3, 6)]), ({"shape": [3, 6]}, [(1, 6), (4, 2)])],
    "Sum": [({}, [(4, 5, 5)]), ({"dim": [1], "keepdim": True}, [(3, 4)])],
    "Amax": [({}, [(4, 5, 5)]), ({"dim": [3, 2], "keepdim": True}, [(3, 4, 5)])],
    "Parameter": [({"shape": [1, 8]}, []), ({"shape": [3, 1, 1], "batch_axis": False}, [])],
    "MatMul": [({}, [(5, 4), (4, 3)]), ({}, [(4,), (4, 3)]), ({}, [(2, 5, 4), (1, 4, 6)])],
    "Subtract": [({}, [(4, 5, 5), (4, 1, 1)]), ({}, [(3, 4), (3, 4), (1, 4)])],
    "Divide": [({}, [(4, 5, 5), (1, 5, 5)]), ({}, [(6,), (6,)])],
    # Vision transformers' attention (vision.py): MaxViT's groups of P tokens form an h×w patch.
    "RelativePositionAttention": [({"head_dim": 4}, [(3, 9, 8)]), ({"head_dim": 2}, [(2, 6, 6)]),
                                  ({"head_dim": 3, "window_size": [4, 1]}, [(2, 4, 6)])],
    "ShiftedWindowAttention": [
        ({}, [(8, 12, 12)]),
        ({"window_size": [4, 3], "shift_size": [2, 1], "num_heads": 2, "qkv_bias": False}, [(9, 7, 8)]),
    ],
    "Concat": [
        ({}, [(2, 4, 4), (3, 4, 4)]),
        ({}, [(2, 4, 4), (3, 4, 4), (1, 4, 4)]),  # Inception: four paths, here three
        ({"dim": -1}, [(2, 4, 3), (2, 4, 5)]),
        ({"dim": 2}, [(2, 3), (2, 3)]),
    ],
}

# Cases that make torch warn (the warning is torch's, not ours).
WARNS = {
    ("Dropout2d", 1): "ignore:dropout2d. Received a 3D input:UserWarning",
}

FALLBACK_SHAPES: list[Shape] = [(8, 12, 12), (8, 16), (16,), (4, 6, 8, 8)]
GRAPH_ENDPOINTS = ("Input", "Output")


def required_without_default(spec: LayerSpec) -> list[str]:
    return [p.name for p in spec.params if p.default is None and not p.optional and not p.inferred]


def fallback_case(spec: LayerSpec) -> list[tuple[dict[str, Any], list[Shape]]]:
    """Defaults on the first fallback shape that ``infer`` accepts (for types without a table entry)."""
    params = spec.resolve({})
    for shape in FALLBACK_SHAPES:
        shapes = [shape] * max(spec.min_inputs, 1)
        try:
            spec.infer(params, shapes)
        except LayerError:
            continue
        return [({}, shapes)]
    return []


def _cases() -> list[Any]:
    out = []
    for spec in all_specs():
        if spec.type in GRAPH_ENDPOINTS:
            out.append(pytest.param(spec.type, {}, [], id=spec.type, marks=pytest.mark.skip(
                reason="graph endpoint: no torch module (Input is a placeholder, Output the return value)")))
            continue
        table = CASES.get(spec.type)
        if table is None:
            if required_without_default(spec):
                continue  # test_every_type_has_cases fails loudly for this type
            table = fallback_case(spec)
        for i, (params, shapes) in enumerate(table):
            marks = [pytest.mark.filterwarnings(WARNS[(spec.type, i)])] if (spec.type, i) in WARNS else []
            out.append(pytest.param(spec.type, params, shapes, id=f"{spec.type}-{i}", marks=marks))
    return out


def run_torch(spec: LayerSpec, kwargs: dict[str, Any], shapes: list[Shape]) -> tuple[Any, int, int, int]:
    """Build and run on a batch of 2: (outputs, parameter count, buffer count, FLOPs)."""
    torch.manual_seed(0)
    if spec.int_inputs:  # token ids (Embedding): integers below the table size
        xs = [torch.randint(0, int(kwargs.get("num_embeddings", 4)), (2, *s)) for s in shapes]
    else:
        xs = [torch.randn(2, *s) for s in shapes]
    if spec.type == "MaxUnpool2d" and len(shapes) == 2 and shapes[0] == shapes[1]:
        # its second input is where a MaxPool2d found each maximum: make a real pair of them
        k, s, p = kwargs["kernel_size"], kwargs["stride"], kwargs["padding"]
        size = [(n - 1) * tup(s if s is not None else k, 2)[i] - 2 * tup(p, 2)[i] + tup(k, 2)[i]
                for i, n in enumerate(shapes[0][1:])]
        pool = torch.nn.MaxPool2d(tup(k, 2), s and tup(s, 2), tup(p, 2), return_indices=True)
        xs = list(pool(torch.randn(2, shapes[0][0], *size)))
    if spec.is_module:
        assert spec.build is not None
        module = spec.build(kwargs)
        n_params = sum(p.numel() for p in module.parameters())
        n_buffers = sum(b.numel() for b in module.buffers())

        def call() -> Any:
            return module(*xs)
    else:
        fn = spec.function
        assert fn is not None
        n_params = n_buffers = 0

        def call() -> Any:
            return fn(*xs, **kwargs)
    with torch.no_grad():
        # Eagerly first: under FlopCounterMode some ops run decomposed and skip torch's checks
        # (an Upsample to size 0 passes there), so shapes and refusals come from the eager run.
        out = call()
        # With grad on: torch's module tracker inside FlopCounterMode fails on a module that returns a
        # view of its own parameter made under no_grad (a Parameter node stored without its batch axis).
        # oneDNN off while counting: on the CPU its fused LSTM kernel is one op without a FLOP formula,
        # torch's own LSTM runs as the matmuls the counter sees (conv, linear and the rest count the same).
        # Attention through torch's math kernel: the counter has no formula for the CPU's fused one.
        mkldnn = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        try:
            with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
                call()
        finally:
            torch.backends.mkldnn.enabled = mkldnn
    if not spec.is_module and spec.code is not None:
        names = [f"x{i}" for i in range(len(xs))]
        expr = spec.code(names, kwargs)
        exported = eval(expr, {"torch": torch}, dict(zip(names, xs, strict=True)))
        pairs = zip(exported, out, strict=True) if isinstance(out, (tuple, list)) else [(exported, out)]
        assert all(torch.equal(a, b) for a, b in pairs), f"{spec.type}: exported code {expr!r} computes something else"
    return out, n_params, n_buffers, counter.get_total_flops()


@pytest.mark.parametrize(("type_name", "params", "shapes"), _cases())
def test_conformance(type_name: str, params: dict[str, Any], shapes: list[Shape]) -> None:
    spec = get_spec(type_name)
    assert spec is not None
    resolved = spec.resolve(params)
    inf = spec.infer(resolved, shapes)
    out, n_params, n_buffers, flops = run_torch(spec, {**resolved, **inf.args}, shapes)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    assert len(inf.out_shapes) == spec.outputs(resolved) == len(outs)
    assert tuple(tuple(o.shape[1:]) for o in outs) == inf.out_shapes
    assert inf.params == n_params, f"{type_name}: we count {inf.params} parameters, torch {n_params}"
    assert inf.buffers == n_buffers, f"{type_name}: we count {inf.buffers} buffer elements, torch {n_buffers}"
    # FlopCounterMode counts 2 FLOPs per multiply-accumulate of conv/linear/matmul and nothing for
    # bias, norm, activation, pooling and resampling: exactly DESIGN.md §5's rule, per sample × 2.
    assert flops == 2 * 2 * inf.macs, f"{type_name}: we count {inf.macs} MACs, torch {flops / 4}"
    # The receptive-field rule has one entry per spatial axis.
    if spec.window is not None:
        rule = spec.window(resolved, shapes)
        nsp = len(shapes[0]) - 1
        if isinstance(rule, Window):
            assert len(rule.kernel) == len(rule.stride) == len(rule.padding) == len(rule.dilation) == nsp
        elif isinstance(rule, Scale):
            assert len(rule.factor) == nsp
            assert all(math.isclose(f, o / n) for f, o, n in zip(rule.factor, inf.out_shapes[0][1:], shapes[0][1:],
                                                                  strict=True))
        else:
            assert rule is None or rule is GLOBAL or rule is UNKNOWN_FIELD or isinstance(rule, SequenceRule)
    if spec.short is not None:
        assert isinstance(spec.short(resolved), str)


def test_every_type_has_cases() -> None:
    """A type needs a case table entry when its defaults can't run on any fallback shape."""
    missing = []
    for spec in all_specs():
        if spec.type in GRAPH_ENDPOINTS or spec.type in CASES:
            continue
        required = required_without_default(spec)
        if required:
            missing.append(f"{spec.type} (required without default: {', '.join(required)})")
        elif not fallback_case(spec):
            missing.append(f"{spec.type} (defaults fit none of {FALLBACK_SHAPES})")
    assert not missing, "add CASES entries in tests/core/test_layers_conformance.py for: " + "; ".join(missing)


def test_required_types_are_registered() -> None:
    names = {s.type for s in all_specs()}
    required = {
        "Input", "Output", "Conv1d", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm1d", "BatchNorm2d", "LayerNorm",
        "GroupNorm", "LocalResponseNorm", "Dropout", "Dropout2d", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU",
        "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "MaxPool2d",
        "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Flatten", "Identity", "ZeroPad2d", "Upsample",
        "ChannelShuffle", "Add", "Concat", "Multiply",
    }
    assert required <= names, f"missing: {sorted(required - names)}"


@pytest.mark.parametrize("spec", list(all_specs()), ids=lambda s: s.type)
def test_declaration_is_documented(spec: LayerSpec) -> None:
    assert isinstance(spec.category, Category)
    assert spec.doc.strip() and "\n" not in spec.doc, f"{spec.type}: needs a one-line doc"
    assert (spec.build is not None) + (spec.function is not None) <= 1
    if spec.type not in GRAPH_ENDPOINTS:
        assert spec.build is not None or spec.function is not None, f"{spec.type}: neither build nor function"
    for p in spec.params:
        assert p.doc.strip() and "\n" not in p.doc, f"{spec.type}.{p.name}: needs a one-line doc"
        if p.default is not None:
            assert p.validate(p.default) == p.default, f"{spec.type}.{p.name}: default fails its own range"
    defaults = {p.name: p.default for p in spec.params}
    assert spec.resolve({}) == defaults


# -- refusals -------------------------------------------------------------------------------------

# (type, params, input shapes, ours_only): ``infer`` must raise. ours_only is None where torch
# refuses too, else the reason we refuse what torch accepts.
REFUSED: list[tuple[str, dict[str, Any], list[Shape], str | None]] = [
    ("Conv2d", {}, [(64,)], None),
    ("Conv2d", {"out_channels": 8, "groups": 4}, [(6, 8, 8)], None),
    ("Conv2d", {"out_channels": 8, "groups": 3}, [(6, 8, 8)], None),
    ("Conv2d", {"kernel_size": 5}, [(3, 4, 4)], None),
    ("Conv2d", {"kernel_size": 3, "padding": 4, "padding_mode": "reflect"}, [(3, 4, 4)], None),
    ("ConvTranspose2d", {"stride": 2, "output_padding": 2}, [(3, 4, 4)], None),
    ("ConvTranspose2d", {"out_channels": 3, "weight_init": "bilinear"}, [(4, 5, 5)], None),
    ("ConvTranspose2d", {"out_channels": 4, "dilation": 2, "weight_init": "bilinear"}, [(4, 5, 5)],
     "a dilated kernel's taps are not adjacent pixels, so it cannot interpolate bilinearly"),
    ("Conv1d", {}, [(3, 8, 8)], None),
    ("Conv3d", {}, [(3, 8, 8)], None),
    ("Conv3d", {"kernel_size": 3}, [(3, 2, 8, 8)], None),
    ("BatchNorm3d", {}, [(4, 5, 5)], None),
    ("MaxPool1d", {"kernel_size": 4}, [(3, 3)], None),
    ("AvgPool1d", {}, [(3, 4, 4)], None),
    ("MaxPool3d", {"kernel_size": 2, "padding": 2}, [(1, 4, 4, 4)], None),
    ("AdaptiveAvgPool3d", {}, [(3, 4, 4)], "torch reads a batch of C×H×W maps as one C×D×H×W volume"),
    ("AdaptiveAvgPool1d", {}, [(3, 4, 4)], None),
    ("MaxUnpool2d", {}, [(3, 4, 4), (3, 4, 5)], None),
    ("Hardtanh", {"min_val": 2.0, "max_val": 2.0}, [(3, 4, 4)], "torch only asserts it (python -O lets it through)"),
    ("Linear", {"in_features": 48}, [(3, 4, 4)], None),
    ("BatchNorm2d", {}, [(16,)], None),
    ("BatchNorm1d", {}, [(4, 5, 5)], None),
    ("GroupNorm", {"num_groups": 4}, [(6, 5, 5)], None),
    ("LayerNorm", {"normalized_shape": [5]}, [(4, 6, 6)], None),
    ("LayerNorm", {"normalized_shape": [3, 4, 6]}, [(4, 6)], None),
    ("LocalResponseNorm", {}, [(8,)], None),
    ("Dropout2d", {}, [(16,)], "torch only warns that 2-D input to dropout2d is deprecated"),
    ("PReLU", {"num_parameters": 3}, [(4, 5, 5)], None),
    ("Softmax", {"dim": 3}, [(10,)], None),
    ("LogSoftmax", {"dim": 0}, [(10,)], "dim 0 normalizes across the batch, mixing samples"),
    ("MaxPool2d", {"kernel_size": 2, "padding": 2}, [(3, 8, 8)], None),
    ("MaxPool2d", {"kernel_size": 3}, [(3, 2, 2)], None),
    ("AvgPool2d", {"kernel_size": [3, 5], "padding": [1, 3]}, [(3, 8, 8)], None),
    ("AdaptiveAvgPool2d", {}, [(16,)], "torch reads a batch of flat vectors as one H×W image"),
    ("ZeroPad2d", {"padding": -3}, [(2, 5, 5)], None),
    ("ZeroPad2d", {}, [(16,)], "torch pads any last two axes, here the batch axis too"),
    ("ReflectionPad2d", {"padding": 5}, [(2, 5, 5)], None),
    ("ReflectionPad2d", {"padding": [0, 0, 2, 1]}, [(2, 2, 6)], None),
    ("ReflectionPad2d", {}, [(2, 3, 5, 5)], None),
    ("ReplicationPad2d", {"padding": -3}, [(2, 5, 5)], None),
    ("ReplicationPad2d", {}, [(16,)], None),
    ("ConstantPad2d", {}, [(16,)], "torch pads any last two axes, here the batch axis too"),
    ("Upsample", {}, [(3, 4, 4)], None),
    ("Upsample", {"size": 8, "scale_factor": 2.0}, [(3, 4, 4)], None),
    ("Upsample", {"scale_factor": 2.0, "mode": "bilinear"}, [(3, 8)], None),
    ("Upsample", {"scale_factor": 2.0, "align_corners": True}, [(3, 4, 4)], None),
    ("Upsample", {"scale_factor": 0.1}, [(3, 5, 5)], None),
    ("Upsample", {"scale_factor": [2.0, 2.0]}, [(3, 5)], None),
    ("Upsample", {"scale_factor": 2.0}, [(12,)], None),
    ("ChannelShuffle", {"groups": 4}, [(6, 3, 3)], None),
    ("ChannelShuffle", {}, [(6,)], None),
    ("Add", {}, [(3, 4, 4), (3, 4, 5)], None),
    ("Multiply", {}, [(4, 5, 5), (4,)], None),
    ("Subtract", {}, [(4, 5, 5), (3, 5, 5)], None),
    ("MatMul", {}, [(5, 4), (3, 6)], None),
    ("MatMul", {}, [(5, 4), (4,)], "a vector as input 1 would be multiplied across the batch"),
    ("MatMul", {}, [(2, 5, 4), (3, 4, 6)], None),
    ("MatMul", {}, [(3,), (2, 3, 5)], "a vector times a stack of matrices per sample is not declared"),
    ("Slice", {"start": 5}, [(4, 5, 5)], "torch returns an empty tensor; a size of 0 is an error here"),
    ("Slice", {"dim": 0, "end": 1}, [(3, 4)], "slicing the batch axis would drop samples"),
    ("Select", {"index": 4}, [(4, 5)], None),
    ("Select", {}, [(4,)], "a scalar per sample has no axis left for the layers after it"),
    ("Expand", {"shape": [4, 5, 5]}, [(3, 1, 1)], None),
    ("Expand", {"shape": [4, 5]}, [(4, 1, 1)], None),
    ("Expand", {}, [(4, 1, 1)], "without a second input there is no target shape"),
    ("Sum", {"dim": [2]}, [(4,)], None),
    ("Amax", {"dim": [1, 1]}, [(3, 4)], None),
    ("Divide", {}, [(4, 5, 5), (4,)], None),
    ("Concat", {}, [(2, 4, 4), (2, 5, 4)], None),
    ("Concat", {"dim": 0}, [(2, 4), (2, 4)], "dim 0 would concatenate samples of the batch"),
    ("Flatten", {"start_dim": 0}, [(3, 4)], "start_dim 0 merges the batch axis into the features"),
    ("ShiftedWindowAttention", {"num_heads": 3}, [(8, 8, 8)], None),
    ("ShiftedWindowAttention", {}, [(8, 12)], None),
    ("ShiftedWindowAttention", {"window_size": 4, "shift_size": 4, "num_heads": 2}, [(8, 8, 8)],
     "a shift of a whole window moves every window onto the next: the masks no longer match Swin's"),
    ("ShiftedWindowAttention", {"window_size": 1, "num_heads": 2, "cosine": True}, [(8, 8, 8)],
     "V2's coordinates divide by window - 1: NaN biases"),
    ("RelativePositionAttention", {"head_dim": 4}, [(2, 9, 6)], None),
    ("RelativePositionAttention", {"window_size": [2, 2]}, [(3, 6, 4)], None),
]


def guess_args(spec: LayerSpec, resolved: dict[str, Any], shapes: list[Shape]) -> dict[str, Any]:
    """Fill the input-dependent arguments the way torch users would, to let torch judge."""
    kwargs = dict(resolved)
    for p in spec.params:
        if p.inferred and kwargs.get(p.name) is None:
            kwargs[p.name] = shapes[0][-1] if p.name == "in_features" else shapes[0][0]
    return kwargs


@pytest.mark.parametrize(("type_name", "params", "shapes", "ours_only"), REFUSED,
                         ids=[f"{t}-{i}" for i, (t, *_) in enumerate(REFUSED)])
def test_refusal(type_name: str, params: dict[str, Any], shapes: list[Shape], ours_only: str | None) -> None:
    spec = get_spec(type_name)
    assert spec is not None
    resolved = spec.resolve(params)
    with pytest.raises(LayerError) as info:
        spec.infer(resolved, shapes)
    err = info.value
    assert type_name in err.message or err.param is not None, f"the message does not say where: {err.message}"
    assert len(err.message) < 240
    if ours_only is None:
        with pytest.raises((RuntimeError, ValueError, IndexError, NotImplementedError, TypeError)):
            run_torch(spec, guess_args(spec, resolved, shapes), shapes)
    fix = err.fix
    if fix is not None and fix.action == "set_param":
        # An offered fix cures the layer: applying it makes infer accept these inputs.
        fixed = {k: v for k, v in {**params, fix.param: fix.value}.items() if v is not None}
        spec.infer(spec.resolve(fixed), shapes)
        assert " — " in err.message, f"the message does not say what would fix it: {err.message}"
