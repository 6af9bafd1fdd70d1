"""A small reader for ``.safetensors`` files, so that the ``safetensors`` package is not a dependency.

The format (huggingface/safetensors, "format" section of its README): an unsigned 64-bit
little-endian header length ``N``, then ``N`` bytes of UTF-8 JSON mapping each tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the byte buffer that follows
the header; an optional ``"__metadata__"`` entry holds strings), then the buffer. Tensors are
little-endian and C-contiguous. Nothing in the file is executed: it is read as numbers only.

Every check that fails raises :class:`SafetensorsError` with one line naming the file and the
tensor, so a truncated or hostile file is refused rather than read out of bounds.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import torch

# The format's dtype names → torch dtypes (the 8-bit floats need a torch that has them).
_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        _DTYPES[_name] = getattr(torch, _attr)

# A header is JSON describing tensors; the reference implementation refuses more than 100 MB.
MAX_HEADER_BYTES = 100_000_000


class SafetensorsError(ValueError):
    """A ``.safetensors`` file that cannot be read; ``str()`` names the file and the problem."""


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of the file at ``path``, on the CPU, in the file's order."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SafetensorsError(f"cannot read {p}: {exc.strerror or exc}") from None
    return parse_safetensors(data, str(p))


def parse_safetensors(data: bytes, where: str = "<bytes>") -> dict[str, torch.Tensor]:
    """The tensors held by ``data``, the bytes of a ``.safetensors`` file (``where`` names it in errors)."""
    if len(data) < 8:
        raise SafetensorsError(f"{where} is not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(data):
        raise SafetensorsError(f"{where} is not a safetensors file or is truncated (header of {n} bytes "
                               f"in a file of {len(data)})")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsError(f"{where}: the safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: the safetensors header is not a JSON object")
    buffer = memoryview(data)[8 + n:]
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        out[name] = _tensor(buffer, name, info, where)
    return out


def _tensor(buffer: memoryview, name: str, info: object, where: str) -> torch.Tensor:
    at = f"{where}: tensor {name!r}"
    if not isinstance(info, dict):
        raise SafetensorsError(f"{at}: its entry is not an object")
    dtype = _DTYPES.get(str(info.get("dtype")))
    if dtype is None:
        raise SafetensorsError(f"{at}: unknown dtype {info.get('dtype')!r} (known: {', '.join(_DTYPES)})")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise SafetensorsError(f"{at}: shape must be a list of non-negative integers, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise SafetensorsError(f"{at}: data_offsets must be [begin, end], got {offsets!r}")
    begin, end = offsets
    itemsize = torch.empty((), dtype=dtype).element_size()
    expected = math.prod(shape) * itemsize
    if not 0 <= begin <= end <= len(buffer) or end - begin != expected:
        raise SafetensorsError(f"{at}: data_offsets {offsets} do not hold {expected} bytes of {shape} "
                               f"{info.get('dtype')} within the {len(buffer)}-byte buffer")
    if expected == 0:
        return torch.empty(shape, dtype=dtype)
    # bytearray: a writable copy (frombuffer warns on read-only memory, and the tensor must own it)
    flat = torch.frombuffer(bytearray(buffer[begin:end]), dtype=dtype)
    if sys.byteorder == "big" and itemsize > 1:
        flat = flat.view(torch.uint8).view(-1, itemsize).flip(1).reshape(-1).view(dtype)
    return flat.reshape(shape)


__all__ = ["MAX_HEADER_BYTES", "SafetensorsError", "parse_safetensors", "read_safetensors"]
