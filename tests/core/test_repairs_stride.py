"""The stride a repair proposes (core.repairs): found by bisection on big sizes, equal to a scan."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.layers.conv import conv_out_size
from core.repairs import _smallest_stride


def scan(n: int, k: int, p: int, d: int, target: int, ceil_mode: bool) -> int | None:
    return next((s for s in range(1, n + 2 * p + 1) if conv_out_size(n, k, s, p, d, ceil_mode) == target), None)


@given(n=st.integers(4000, 9000), k=st.integers(1, 7), p=st.integers(0, 3), d=st.integers(1, 2),
       target=st.integers(1, 60), ceil_mode=st.booleans())
def test_bisection_finds_the_stride_a_scan_finds(n: int, k: int, p: int, d: int, target: int,
                                                 ceil_mode: bool) -> None:
    assert _smallest_stride(n, k, p, d, target, ceil_mode) == scan(n, k, p, d, target, ceil_mode)


def test_a_padding_of_10_400_is_answered_not_scanned() -> None:
    p = 10**400
    s = _smallest_stride(32, 3, p, 1, 5, False)
    assert s is not None and conv_out_size(32, 3, s, p, 1) == 5
    assert _smallest_stride(32, 3, p, 1, 10**401, False) is None
