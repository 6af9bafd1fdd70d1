"""Parameter declarations: ranges that agree with torch's own checks, forms, and node labels."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from core.layers import ParamError, get_spec

# (type, params that our declaration refuses, whether torch's constructor refuses them too).
# Where torch accepts the value (e.g. eps = 0, BN momentum > 1) it only fails later or silently
# misbehaves; our ranges are the meaningful ones and are stated in each ParamSpec.
OUT_OF_RANGE: list[tuple[str, dict[str, Any], bool]] = [
    ("Dropout", {"p": 1.5}, True),
    ("Dropout2d", {"p": -0.1}, True),
    ("Conv2d", {"out_channels": 0}, False),  # torch builds an empty layer (and warns)
    ("Conv2d", {"kernel_size": [3, 3, 3]}, False),
    ("Conv2d", {"stride": 0}, True),
    ("Conv2d", {"padding": -1}, True),
    ("Conv2d", {"padding_mode": "mirror"}, True),
    ("Conv2d", {"dilation": [1, 0]}, True),
    ("Linear", {"out_features": 2.5}, False),
    ("BatchNorm2d", {"eps": 0}, False),
    ("BatchNorm2d", {"momentum": 1.5}, False),
    ("GroupNorm", {"num_groups": 0}, True),
    ("LocalResponseNorm", {"size": 0}, False),
    ("GELU", {"approximate": "erf"}, True),
    ("Upsample", {"mode": "area-ish"}, True),
    ("Upsample", {"scale_factor": 0}, False),
    ("Upsample", {"size": [0, 4]}, False),
    ("ZeroPad2d", {"padding": [1, 2]}, False),
    ("ChannelShuffle", {"groups": 0}, False),
    ("MaxPool2d", {"kernel_size": 0}, True),
    ("AvgPool2d", {"divisor_override": 0}, False),
    ("Softmax", {"dim": "channels"}, False),
    ("Flatten", {"start_dim": True}, False),
    ("LayerNorm", {"normalized_shape": []}, False),
    ("LayerNorm", {"normalized_shape": [4, 0]}, False),
]


@pytest.mark.parametrize(("type_name", "params", "torch_refuses"), OUT_OF_RANGE,
                         ids=[f"{t}-{next(iter(p))}-{i}" for i, (t, p, _) in enumerate(OUT_OF_RANGE)])
def test_out_of_range_is_refused(type_name: str, params: dict[str, Any], torch_refuses: bool) -> None:
    spec = get_spec(type_name)
    assert spec is not None
    name = next(iter(params))
    with pytest.raises(ParamError, match=rf"^{name}: "):
        spec.resolve(params)
    if torch_refuses:
        own = {p.name for p in spec.params if not p.constructor}  # applied by the module, not torch's argument
        kwargs = {k: v for k, v in spec.resolve({}).items() if v is not None and k not in own}
        for p in spec.params:
            if p.inferred:
                kwargs[p.name] = 4
        kwargs.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()})
        with pytest.raises((ValueError, RuntimeError, TypeError, ZeroDivisionError)):
            module = getattr(torch.nn, type_name)(**kwargs)
            module(torch.randn(2, 4, 8, 8))


@pytest.mark.parametrize(("type_name", "params"), [
    ("Dropout", {"p": 0.0}), ("Dropout", {"p": 1}), ("LeakyReLU", {"negative_slope": -0.5}),
    ("ZeroPad2d", {"padding": [-1, 0, 2, 3]}), ("Upsample", {"scale_factor": [2, 1.5]}),
    ("Conv2d", {"kernel_size": [1, 7], "padding": [0, 3]}), ("BatchNorm1d", {"momentum": None}),
    ("Concat", {"dim": -1}), ("Softmax", {"dim": -1}), ("LayerNorm", {"normalized_shape": [3, 4, 4]}),
])
def test_edge_values_are_accepted(type_name: str, params: dict[str, Any]) -> None:
    spec = get_spec(type_name)
    assert spec is not None
    resolved = spec.resolve(params)
    for k, v in params.items():
        assert resolved[k] == v


@pytest.mark.parametrize(("type_name", "params", "label"), [
    ("Conv2d", {"kernel_size": 3, "out_channels": 64, "stride": 2}, "3×3 · 64 · s2"),
    ("Dropout", {}, "p 0.5"),
    ("Dropout2d", {"p": 0.25}, "p 0.25"),
    ("LeakyReLU", {}, "slope 0.01"),
    ("ELU", {"alpha": 0.5}, "α 0.5"),
    ("GELU", {"approximate": "tanh"}, "tanh"),
    ("PReLU", {"num_parameters": 64}, "64 slopes"),
    ("Softmax", {}, "dim 1"),
    ("GroupNorm", {}, "32 groups"),
    ("LocalResponseNorm", {}, "size 5"),
    ("LayerNorm", {"normalized_shape": [64, 7, 7]}, "64×7×7"),
    ("ZeroPad2d", {}, "pad 1"),
    ("ZeroPad2d", {"padding": [1, 0, 2, 0]}, "pad 1,0,2,0"),
    ("Upsample", {"scale_factor": 2}, "×2"),
    ("Upsample", {"scale_factor": 2, "mode": "bilinear"}, "×2 · bilinear"),
    ("Upsample", {"size": [56, 56]}, "→ 56×56"),
    ("ChannelShuffle", {"groups": 3}, "3 groups"),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, "3×3 · s2"),
])
def test_short_labels(type_name: str, params: dict[str, Any], label: str) -> None:
    spec = get_spec(type_name)
    assert spec is not None and spec.short is not None
    assert spec.short(spec.resolve(params)) == label


def test_batchnorm_has_no_label_and_defaults_follow_torch() -> None:
    bn = get_spec("BatchNorm2d")
    assert bn is not None and bn.short is None
    module = torch.nn.BatchNorm2d(8)
    resolved = bn.resolve({})
    for name in ("eps", "momentum", "affine", "track_running_stats"):
        assert resolved[name] == getattr(module, name)
