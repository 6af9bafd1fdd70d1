"""Property tests: conv/pool output sizes agree with torch, and so do refusals.

For random small settings (dilation, asymmetric kernels/strides/padding, ceil_mode, padding
modes, groups, sizes that collapse), the declaration's ``infer`` and real torch must agree:
where ``infer`` gives a shape torch produces exactly that shape; where ``infer`` raises
:class:`LayerError`, torch refuses too (at construction or in the forward pass), and vice versa.
A refusal's ``set_param`` fix, applied, must cure that parameter (another one may still be off).
One deliberate difference: torch returns an *empty* tensor where a size reaches exactly 0 (a
transposed conv with large padding); we refuse that (a collapsed size is an error, DESIGN.md §5).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.layers import LayerError, get_spec
from core.layers.spec import Shape

TORCH_ERRORS = (RuntimeError, ValueError, IndexError, NotImplementedError)
EXAMPLES = 200  # ≈ 1–2 s per property on one core; the sizes are small so torch runs in microseconds


def ints(lo: int, hi: int, arity: int) -> st.SearchStrategy[Any]:
    """One int, or a list of ``arity`` ints (the two forms a project file may hold)."""
    one = st.integers(lo, hi)
    return st.one_of(one, st.lists(one, min_size=arity, max_size=arity)) if arity > 1 else one


def ours(type_name: str, params: dict[str, Any], shape: Shape) -> tuple[Shape | None, LayerError | None]:
    spec = get_spec(type_name)
    assert spec is not None
    resolved = spec.resolve(params)
    try:
        inf = spec.infer(resolved, [shape])
    except LayerError as exc:
        return None, exc
    return inf.out_shapes[0], None


def theirs(type_name: str, params: dict[str, Any], shape: Shape) -> tuple[Shape | None, str | None]:
    spec = get_spec(type_name)
    assert spec is not None
    # torch's constructor takes the arguments only (not e.g. ConvTranspose2d's weight_init, which the
    # built module applies itself)
    own = {p.name for p in spec.params if not p.constructor}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.resolve(params).items() if k not in own}
    if "in_channels" in kwargs:
        kwargs["in_channels"] = shape[0]
    try:
        module = getattr(torch.nn, type_name)(**kwargs)
        with torch.no_grad():
            out = module(torch.zeros(1, *shape))
    except TORCH_ERRORS as exc:
        return None, str(exc)
    if 0 in out.shape:
        # torch returns an empty tensor where a transposed conv's size reaches exactly 0; DESIGN.md §5
        # makes a size that collapses to <= 0 an error, so we count that as torch refusing too.
        return None, f"empty output {tuple(out.shape[1:])}"
    return tuple(out.shape[1:]), None


def check_agree(type_name: str, params: dict[str, Any], shape: Shape) -> None:
    got, err = ours(type_name, params, shape)
    want, terr = theirs(type_name, params, shape)
    where = f"{type_name}({params}) on {shape}"
    if err is None:
        assert terr is None, f"{where}: we accept with {got}, torch refuses: {terr}"
        assert got == want, f"{where}: we infer {got}, torch gives {want}"
        return
    assert terr is not None, f"{where}: we refuse ({err.message}), torch gives {want}"
    fix = err.fix
    if fix is not None:
        assert " — " in err.message, f"{where}: the message does not say what would fix it: {err.message}"
    if fix is not None and fix.action == "set_param":
        fixed = {**params, fix.param: fix.value}
        if fix.value is None:
            fixed.pop(fix.param)
        _, err2 = ours(type_name, fixed, shape)
        assert err2 is None or err2.param != fix.param, \
            f"{where}: fix {fix.label!r} still fails on the same parameter: {err2 and err2.message}"


CH = st.sampled_from([1, 2, 4])
PAD_MODES = st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"])


@settings(max_examples=EXAMPLES)
@given(n=st.integers(1, 16), c=CH, c_out=CH, k=st.integers(1, 6), s=st.integers(1, 4), p=st.integers(0, 4),
       d=st.integers(1, 3), g=st.sampled_from([1, 2]), mode=PAD_MODES)
def test_conv1d_sizes(n: int, c: int, c_out: int, k: int, s: int, p: int, d: int, g: int, mode: str) -> None:
    check_agree("Conv1d", {"out_channels": c_out, "kernel_size": k, "stride": s, "padding": p, "dilation": d,
                           "groups": g, "padding_mode": mode}, (c, n))


@settings(max_examples=EXAMPLES)
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=CH, c_out=CH, k=ints(1, 5, 2), s=ints(1, 3, 2),
       p=ints(0, 3, 2), d=ints(1, 3, 2), g=st.sampled_from([1, 2, 4]), mode=PAD_MODES, bias=st.booleans())
def test_conv2d_sizes(h: int, w: int, c: int, c_out: int, k: Any, s: Any, p: Any, d: Any, g: int, mode: str,
                      bias: bool) -> None:
    check_agree("Conv2d", {"out_channels": c_out, "kernel_size": k, "stride": s, "padding": p, "dilation": d,
                           "groups": g, "padding_mode": mode, "bias": bias}, (c, h, w))


@settings(max_examples=EXAMPLES)
@given(h=st.integers(1, 8), w=st.integers(1, 8), c=CH, c_out=CH, k=ints(1, 4, 2), s=ints(1, 3, 2),
       p=ints(0, 3, 2), op=ints(0, 2, 2), d=ints(1, 2, 2), g=st.sampled_from([1, 2]))
def test_conv_transpose2d_sizes(h: int, w: int, c: int, c_out: int, k: Any, s: Any, p: Any, op: Any, d: Any,
                                g: int) -> None:
    check_agree("ConvTranspose2d", {"out_channels": c_out, "kernel_size": k, "stride": s, "padding": p,
                                    "output_padding": op, "dilation": d, "groups": g}, (c, h, w))


STRIDE = st.one_of(st.none(), ints(1, 3, 2))
STRIDE_3 = st.one_of(st.none(), ints(1, 2, 3))


@settings(max_examples=EXAMPLES)
@given(h=st.integers(1, 10), w=st.integers(1, 10), k=ints(1, 4, 2), s=STRIDE, p=ints(0, 2, 2), d=ints(1, 3, 2),
       ceil=st.booleans())
def test_maxpool2d_sizes(h: int, w: int, k: Any, s: Any, p: Any, d: Any, ceil: bool) -> None:
    check_agree("MaxPool2d", {"kernel_size": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": ceil},
                (2, h, w))


@settings(max_examples=EXAMPLES)
@given(h=st.integers(1, 10), w=st.integers(1, 10), k=ints(1, 4, 2), s=STRIDE, p=ints(0, 2, 2), ceil=st.booleans(),
       cip=st.booleans())
def test_avgpool2d_sizes(h: int, w: int, k: Any, s: Any, p: Any, ceil: bool, cip: bool) -> None:
    check_agree("AvgPool2d", {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil,
                              "count_include_pad": cip}, (2, h, w))


@settings(max_examples=EXAMPLES)
@given(kind=st.sampled_from(["ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d"]),
       h=st.integers(1, 6), w=st.integers(1, 6), pad=ints(-4, 6, 4), depth=st.booleans())
def test_pad2d_sizes(kind: str, h: int, w: int, pad: Any, depth: bool) -> None:
    # A C×D×H×W sample: constant padding takes the last two axes, the other two refuse it.
    check_agree(kind, {"padding": pad}, (2, 3, h, w) if depth else (2, h, w))


@settings(max_examples=EXAMPLES)
@given(n=st.integers(1, 12), k=st.integers(1, 5), s=st.one_of(st.none(), st.integers(1, 3)), p=st.integers(0, 2),
       d=st.integers(1, 3), ceil=st.booleans(), kind=st.sampled_from(["MaxPool1d", "AvgPool1d"]))
def test_pool1d_sizes(n: int, k: int, s: Any, p: int, d: int, ceil: bool, kind: str) -> None:
    params = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil}
    check_agree(kind, {**params, "dilation": d} if kind == "MaxPool1d" else params, (2, n))


@settings(max_examples=EXAMPLES // 2)
@given(size=st.lists(st.integers(1, 6), min_size=3, max_size=3), k=ints(1, 3, 3), s=STRIDE_3, p=ints(0, 1, 3),
       ceil=st.booleans(), kind=st.sampled_from(["MaxPool3d", "AvgPool3d"]))
def test_pool3d_sizes(size: list[int], k: Any, s: Any, p: Any, ceil: bool, kind: str) -> None:
    check_agree(kind, {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil}, (2, *size))


@settings(max_examples=EXAMPLES // 2)
@given(size=st.lists(st.integers(1, 6), min_size=3, max_size=3), c=CH, c_out=CH, k=ints(1, 3, 3), s=ints(1, 2, 3),
       p=ints(0, 2, 3), d=ints(1, 2, 3), g=st.sampled_from([1, 2]), mode=PAD_MODES)
def test_conv3d_sizes(size: list[int], c: int, c_out: int, k: Any, s: Any, p: Any, d: Any, g: int,
                      mode: str) -> None:
    check_agree("Conv3d", {"out_channels": c_out, "kernel_size": k, "stride": s, "padding": p, "dilation": d,
                           "groups": g, "padding_mode": mode}, (c, *size))


def torch_index(shape: Shape, dim: int, item: Any) -> tuple[Shape | None, str | None]:
    """Torch's own indexing of a batch of 2 along ``dim`` (the batch axis counted); empty counts as refused."""
    x = torch.zeros(2, *shape)
    index = (slice(None),) * dim + (item,) if dim >= 0 else (Ellipsis, item) + (slice(None),) * (-dim - 1)
    try:
        out = x[index]
    except TORCH_ERRORS as exc:
        return None, str(exc)
    return (None, "empty output") if 0 in out.shape else (tuple(out.shape[1:]), None)


@settings(max_examples=EXAMPLES)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), dim=st.integers(-3, 3), start=st.integers(-8, 8),
       end=st.one_of(st.none(), st.integers(-8, 8)), step=st.integers(1, 3), select=st.booleans())
def test_slice_and_select_sizes(shape: list[int], dim: int, start: int, end: Any, step: int, select: bool) -> None:
    # out of range or the batch axis: refused by the shared axis rule, tested in conformance
    assume(-len(shape) - 1 < dim <= len(shape) and dim != 0)
    if select:
        got, err = ours("Select", {"dim": dim, "index": start}, tuple(shape))
        want, terr = torch_index(tuple(shape), dim, start)
        if len(shape) == 1 and terr is None:
            assert err is not None  # a scalar per sample: refused on purpose
            return
    else:
        got, err = ours("Slice", {"dim": dim, "start": start, "end": end, "step": step}, tuple(shape))
        want, terr = torch_index(tuple(shape), dim, slice(start, end, step))
    assert (err is None) == (terr is None), f"{shape} dim {dim}: ours {err and err.message}, torch {terr}"
    assert got == want


# Hand-picked edge cases that random draws hit only rarely.
EDGES = [
    ("Conv2d", {"kernel_size": 3}, (1, 2, 2)),  # kernel larger than the input
    ("Conv2d", {"kernel_size": 3, "padding": 1, "stride": 2}, (1, 32, 32)),  # 32 → 16, the d2l exercise
    ("Conv2d", {"kernel_size": 3, "dilation": 4}, (1, 8, 9)),  # dilated span 9 vs 8 rows
    ("Conv2d", {"kernel_size": [1, 7], "padding": [0, 3]}, (1, 5, 5)),  # Inception's asymmetric kernel
    ("Conv2d", {"kernel_size": 3, "padding": 3, "padding_mode": "reflect"}, (1, 3, 3)),
    ("Conv2d", {"kernel_size": 3, "padding": 3, "padding_mode": "circular"}, (1, 3, 3)),
    ("Conv2d", {"kernel_size": 3, "padding": 4, "padding_mode": "circular"}, (1, 3, 3)),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": True}, (1, 2, 2)),  # partial window kept
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "ceil_mode": False}, (1, 2, 2)),
    ("MaxPool2d", {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}, (1, 5, 5)),
    ("MaxPool2d", {"kernel_size": 3, "padding": 2, "dilation": 2}, (1, 9, 9)),  # pad > k//2 despite dilation
    ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}, (1, 6, 6)),
    ("AvgPool2d", {"kernel_size": 2, "padding": 2}, (1, 8, 8)),
    ("ConvTranspose2d", {"kernel_size": 2, "stride": 2}, (1, 4, 4)),  # U-Net upsampling doubles
    ("ConvTranspose2d", {"kernel_size": 1, "padding": 1}, (1, 2, 2)),  # size collapses to 0
    ("ConvTranspose2d", {"kernel_size": 3, "stride": 2, "output_padding": 2}, (1, 4, 4)),
    ("Conv1d", {"kernel_size": 5, "padding": 2, "dilation": 2}, (1, 3)),
]


@pytest.mark.parametrize(("type_name", "params", "shape"), EDGES, ids=[f"{t}-{i}" for i, (t, _, _) in
                                                                         enumerate(EDGES)])
def test_size_edges(type_name: str, params: dict[str, Any], shape: Shape) -> None:
    params = dict(params)
    if type_name.startswith("Conv"):
        params.setdefault("out_channels", 1)
    check_agree(type_name, params, shape)
