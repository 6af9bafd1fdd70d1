"""Convolutions: Conv1d, Conv2d, Conv3d, ConvTranspose2d (grouped, depthwise and dilated through params).

Output size per axis (DESIGN.md §5, the d2l / CS231n formula with dilation):
``floor((n + 2p − d·(k−1) − 1) / s) + 1``; transposed:
``(n−1)·s − 2p + d·(k−1) + output_padding + 1``.
Parameters: ``k·k·C_in/groups·C_out (+ C_out bias)``. MACs: weight elements × output positions
(× input positions for the transposed convolution).

ConvTranspose2d's ``weight_init`` picks the starting weight: torch's (``default``) or d2l's bilinear
upsampling kernel (``bilinear``, FCN's upsampling layer), which builds
:class:`core.layers.conv_modules.BilinearConvTranspose2d`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import (
    Category,
    FitRole,
    Inferred,
    Kind,
    LayerError,
    LayerSpec,
    Params,
    ParamSpec,
    Shape,
    Window,
    fmt_shape,
    insert_fix,
    numel,
    set_param_fix,
    torch_builder,
    tup,
)

_AXES = {1: "L", 2: "H×W", 3: "D×H×W"}
WEIGHT_INITS = ("default", "bilinear")  # ConvTranspose2d's starting weights


def conv_out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool = False) -> int:
    """Output length of a sliding window along one axis, torch's rule (ceil_mode included)."""
    span = d * (k - 1) + 1
    num = n + 2 * p - span
    if ceil_mode:
        out = -(-num // s) + 1
        # torch: the last window must start inside the input or its left padding
        if (out - 1) * s >= n + p:
            out -= 1
        return out
    return num // s + 1


def transposed_out_size(n: int, k: int, s: int, p: int, d: int, op: int) -> int:
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def keeping_padding(k: int, d: int) -> int | None:
    """The padding that keeps the size at stride 1 (``d·(k−1)/2``), if the kernel is odd-spanned."""
    span = d * (k - 1)
    return span // 2 if span % 2 == 0 else None


def expect_spatial(type_name: str, shape: Shape, nd: int) -> None:
    """Raise a LayerError with a fix when ``shape`` is not ``C×<nd spatial axes>``."""
    if len(shape) == nd + 1:
        return
    want = f"C×{_AXES.get(nd, f'{nd} spatial axes')}"
    fix = None
    if len(shape) == 1 and nd >= 1:
        msg = (f"{type_name} needs a {want} input, but gets a flat vector of {shape[0]} "
               f"— it must come before Flatten, or feed a Linear instead")
    else:
        msg = f"{type_name} needs a {want} input, but gets {fmt_shape(shape)}"
    raise LayerError(msg, fix)


def window_sizes(type_name: str, spatial: Sequence[int], k: Sequence[int], s: Sequence[int],
                 p: Sequence[int], d: Sequence[int], ceil_mode: bool = False) -> tuple[int, ...]:
    """Output spatial sizes; raises when the kernel exceeds the padded input or the size collapses."""
    out = []
    for n, ki, si, pi, di in zip(spatial, k, s, p, d, strict=True):
        span = di * (ki - 1) + 1
        o = conv_out_size(n, ki, si, pi, di, ceil_mode)
        # Convolutions refuse a kernel larger than the padded input; pooling with ceil_mode keeps
        # one partial window instead (torch only requires an output size >= 1 there).
        if n + 2 * pi < span and not (ceil_mode and o >= 1):
            need = -(-(span - n) // 2)
            kdesc = "×".join(str(x) for x in k)
            pdesc = "×".join(str(x + 2 * y) for x, y in zip(spatial, p, strict=True))
            raise LayerError(
                f"{type_name}: kernel {kdesc}"
                + (f" (dilated span {span})" if di > 1 else "")
                + f" is larger than the padded input {pdesc}"
                + f" — use padding {need} or a smaller kernel_size",
                set_param_fix("padding", need, f"set padding to {need}"),
                param="kernel_size",
            )
        if o <= 0:
            raise LayerError(f"{type_name}: output size collapses to {o} along an axis of size {n}",
                             param="stride")
        out.append(o)
    return tuple(out)


def _conv_params(nd: int, transposed: bool) -> tuple[ParamSpec, ...]:
    ps = [
        ParamSpec("in_channels", Kind.INT, None, "Input channels C_in; inferred from the input.",
                  min=1, inferred=True),
        ParamSpec("out_channels", Kind.INT, 64 if nd == 2 else 16,
                  "Output channels C_out: the number of filters.", min=1),
        ParamSpec("kernel_size", Kind.INTS, 3, "Kernel size F (one value, or one per axis).",
                  min=1, arity=nd),
        ParamSpec("stride", Kind.INTS, 1,
                  "Stride S: step between windows; S=2 halves the size." if not transposed
                  else "Stride S: upsampling factor of the transposed convolution.",
                  min=1, arity=nd),
        ParamSpec("padding", Kind.INTS, 0,
                  "Zero padding P on each side; P=(F−1)/2 keeps the size at stride 1."
                  if not transposed else "Removes P·(dilation·(F−1)) … rows from each side of the output.",
                  min=0, arity=nd),
    ]
    if transposed:
        ps.append(ParamSpec("output_padding", Kind.INTS, 0,
                            "Extra size added to one side of the output (must be < stride or dilation).",
                            min=0, arity=nd))
    ps += [
        ParamSpec("dilation", Kind.INTS, 1,
                  "Dilation D: spacing between kernel taps; the kernel spans D·(F−1)+1.", min=1, arity=nd),
        ParamSpec("groups", Kind.INT, 1,
                  "Groups: split channels into independent groups; groups = C_in is depthwise.", min=1),
        ParamSpec("bias", Kind.BOOL, True, "Learn an additive bias per output channel "
                  "(usually off before BatchNorm)."),
    ]
    if transposed:
        ps.append(ParamSpec("weight_init", Kind.CHOICE, "default",
                            "Starting weight: torch's random one, or bilinear upsampling (d2l's FCN; needs "
                            "out_channels = in_channels).", choices=WEIGHT_INITS, constructor=False))
    if not transposed:
        ps.append(ParamSpec("padding_mode", Kind.CHOICE, "zeros", "How the border is padded.",
                            choices=("zeros", "reflect", "replicate", "circular")))
    return tuple(ps)


def _check_groups(type_name: str, c_in: int, c_out: int, g: int) -> None:
    if c_in % g:
        divisors = [x for x in range(1, c_in + 1) if c_in % x == 0 and c_out % x == 0]
        best = max((x for x in divisors if x <= g), default=1)
        raise LayerError(
            f"{type_name}: groups={g} must divide the {c_in} input channels — use groups={best}",
            set_param_fix("groups", best), param="groups")
    if c_out % g:
        # out_channels is the user's choice; round it up to a multiple of groups.
        fixed = -(-c_out // g) * g
        raise LayerError(
            f"{type_name}: groups={g} must divide out_channels={c_out} — use out_channels={fixed}",
            set_param_fix("out_channels", fixed), param="out_channels")


def without_padding_fix(exc: LayerError) -> LayerError:
    """The same kernel-too-large error, minus its padding fix (for when more padding is not allowed)."""
    value = exc.fix.value if exc.fix is not None else None
    return LayerError(exc.message.replace(f"use padding {value} or ", "use "), None, exc.param)


def _check_padding_mode(type_name: str, mode: str, spatial: Sequence[int], pad: Sequence[int]) -> None:
    """torch's limits: reflect mirrors at most n−1 rows, circular wraps around at most once."""
    if mode not in ("reflect", "circular"):
        return
    for n, pi in zip(spatial, pad, strict=True):
        limit = n - 1 if mode == "reflect" else n
        if pi > limit:
            raise LayerError(
                f"{type_name}: padding {pi} with padding_mode '{mode}' needs an input of at least "
                f"{pi + 1 if mode == 'reflect' else pi} along each axis, but one has {n} "
                f"— use padding_mode 'replicate' or 'zeros'",
                set_param_fix("padding_mode", "replicate"), param="padding")
    return


def _check_bilinear(type_name: str, p: Params, c_in: int, c_out: int) -> None:
    """Bilinear initialisation upsamples each channel onto itself (d2l's kernel is diagonal)."""
    if p["weight_init"] != "bilinear":
        return
    if c_out != c_in:
        raise LayerError(
            f"{type_name}: bilinear weight_init upsamples each channel onto itself, so it needs out_channels "
            f"= in_channels = {c_in}, but out_channels is {c_out} — use out_channels={c_in}",
            set_param_fix("out_channels", c_in), param="weight_init")
    if any(d != 1 for d in tup(p["dilation"], 2)):
        raise LayerError(f"{type_name}: bilinear weight_init is an interpolation kernel of adjacent taps, so it "
                         f"needs dilation 1 — use dilation 1", set_param_fix("dilation", 1), param="weight_init")


def _build_transposed(p: Params) -> Any:
    """``nn.ConvTranspose2d``, or its bilinear-initialised subclass for ``weight_init="bilinear"``."""
    import torch.nn as nn

    args: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items() if k != "weight_init"}
    if p.get("weight_init", "default") == "bilinear":
        from core.layers.conv_modules import BilinearConvTranspose2d

        return BilinearConvTranspose2d(**args)
    return nn.ConvTranspose2d(**args)


def _transposed_from_module(m: Any) -> dict[str, Any]:
    """The importer's reading of a transposed convolution: torch's attributes, and ``weight_init`` from
    the class (an exported file's copy of :class:`~core.layers.conv_modules.BilinearConvTranspose2d`
    says ``bilinear``; torch's own class has none, which is ``default``)."""
    return {"out_channels": m.out_channels, "kernel_size": list(m.kernel_size), "stride": list(m.stride),
            "padding": list(m.padding), "output_padding": list(m.output_padding), "dilation": list(m.dilation),
            "groups": m.groups, "bias": m.bias is not None,
            "weight_init": "bilinear" if getattr(m, "weight_init", None) == "bilinear" else "default"}


def _make_conv(nd: int, transposed: bool) -> LayerSpec:
    type_name = f"ConvTranspose{nd}d" if transposed else f"Conv{nd}d"

    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        expect_spatial(type_name, shape, nd)
        c_in, spatial = shape[0], shape[1:]
        c_out, g = p["out_channels"], p["groups"]
        k, s = tup(p["kernel_size"], nd), tup(p["stride"], nd)
        pad, d = tup(p["padding"], nd), tup(p["dilation"], nd)
        _check_groups(type_name, c_in, c_out, g)
        if transposed:
            op = tup(p["output_padding"], nd)
            allowed = [min(opi, max(si, di) - 1) for opi, si, di in zip(op, s, d, strict=True)]
            for opi, si, di, ok in zip(op, s, d, allowed, strict=True):
                if opi > ok:
                    value: Any = allowed[0] if len(set(allowed)) == 1 else allowed
                    raise LayerError(
                        f"{type_name}: output_padding {opi} must be smaller than stride ({si}) "
                        f"or dilation ({di}) — use output_padding {value}",
                        set_param_fix("output_padding", value), param="output_padding")
            out_sp = tuple(transposed_out_size(n, *a) for n, a in zip(spatial, zip(k, s, pad, d, op, strict=True),
                                                                       strict=True))
            if any(o <= 0 for o in out_sp):
                raise LayerError(f"{type_name}: output size collapses to {fmt_shape(out_sp)} "
                                 f"— reduce padding", set_param_fix("padding", 0), param="padding")
            _check_bilinear(type_name, p, c_in, c_out)
            weight = c_in * (c_out // g) * numel(k)
            macs = weight * numel(spatial)
        else:
            mode = p["padding_mode"]
            _check_padding_mode(type_name, mode, spatial, pad)
            try:
                out_sp = window_sizes(type_name, spatial, k, s, pad, d)
            except LayerError as exc:
                fix = exc.fix
                if fix is not None and fix.param == "padding" and mode in ("reflect", "circular"):
                    try:  # would the proposed padding itself break the padding mode's limit?
                        _check_padding_mode(type_name, mode, spatial, tup(fix.value, nd))
                    except LayerError:
                        raise without_padding_fix(exc) from None
                raise
            weight = c_out * (c_in // g) * numel(k)
            macs = weight * numel(out_sp)
        params = weight + (c_out if p["bias"] else 0)
        return Inferred(out_shapes=((c_out, *out_sp),), args={"in_channels": c_in}, params=params, macs=macs)

    def window(p: Params, shapes: Sequence[Shape]) -> Window:
        return Window(tup(p["kernel_size"], nd), tup(p["stride"], nd), tup(p["padding"], nd),
                      tup(p["dilation"], nd), transposed=transposed)

    def short(p: Params) -> str:
        k = tup(p["kernel_size"], nd)
        parts = ["×".join(map(str, k)), str(p["out_channels"])]
        s = tup(p["stride"], nd)
        if any(x != 1 for x in s):
            parts.append("s" + "×".join(map(str, s)) if len(set(s)) > 1 else f"s{s[0]}")
        d = tup(p["dilation"], nd)
        if any(x != 1 for x in d):
            parts.append(f"d{d[0]}" if len(set(d)) == 1 else "d" + "×".join(map(str, d)))
        if p["groups"] != 1:
            parts.append(f"g{p['groups']}")
        if transposed and p["weight_init"] == "bilinear":
            parts.append("bilinear")
        return " · ".join(parts)

    docs = {
        (1, False): "1-D convolution over sequences (C×L): learns local patterns along one axis.",
        (2, False): "2-D convolution (C×H×W): slides C_out learned F×F filters over the image.",
        (3, False): "3-D convolution (C×D×H×W): learned F×F×F filters over volumes or video clips.",
        (2, True): "Transposed 2-D convolution: learned upsampling, the gradient of a strided conv.",
    }
    return LayerSpec(
        type=type_name, category=Category.CONV, doc=docs[(nd, transposed)],
        params=_conv_params(nd, transposed), infer=infer, window=window,
        build=_build_transposed if transposed else torch_builder(type_name), short=short,
        # BilinearConvTranspose2d keeps torch's forward, so the importer takes it (and an exported file's
        # copy) as a ConvTranspose2d; from_module reads its weight_init back
        from_module=_transposed_from_module if transposed else None,
        id_stem="deconv" if transposed else "", feature_maps=True,
        fit_role=FitRole.HEAD, width_param="out_channels",  # a 1×1 conv head sets the classes too
    )


Conv1d = register(_make_conv(1, False))
Conv2d = register(_make_conv(2, False))
Conv3d = register(_make_conv(3, False))
ConvTranspose2d = register(_make_conv(2, True))

__all__ = ["WEIGHT_INITS", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "conv_out_size", "expect_spatial",
           "insert_fix", "keeping_padding", "transposed_out_size", "window_sizes", "without_padding_fix"]
