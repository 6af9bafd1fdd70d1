"""The synthetic data source makes its images a block at a time (one piece held ~2 GB for 1000
ImageNet-sized classes): the images, the labels and the generator's state after them must be the
bytes the one-piece formula gives, for any image shape and count, so a run (and its resume) sees
the same data as before."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.training.data import _noisy, synthetic_source


def _one_piece(shape: tuple[int, ...], classes: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The formula in one piece (as synthetic_source made it before), and the generator's next draw."""
    gen = torch.Generator().manual_seed(seed)
    templates = torch.rand((classes, *shape), generator=gen) * 160 + 48
    labels = torch.randint(0, classes, (n,), generator=gen)
    noise = torch.randn((n, *shape), generator=gen) * 40
    return (templates[labels] + noise).clamp_(0, 255).to(torch.uint8), torch.rand(4, generator=gen)


def _blocks(shape: tuple[int, ...], classes: int, n: int, seed: int, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    templates = torch.rand((classes, *shape), generator=gen) * 160 + 48
    labels = torch.randint(0, classes, (n,), generator=gen)
    return _noisy(templates, labels, gen, rows=rows), torch.rand(4, generator=gen)


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), n=st.integers(0, 300),
       classes=st.integers(1, 5), seed=st.integers(0, 2**32), rows=st.sampled_from([16, 32, 64]))
def test_blocks_give_the_one_piece_bytes_and_leave_the_generator_where_it_left_it(shape, n, classes, seed, rows):
    images, after = _blocks(shape, classes, n, seed, rows)
    want, want_after = _one_piece(shape, classes, n, seed)
    assert images.dtype == torch.uint8 and torch.equal(images, want)
    assert torch.equal(after, want_after)


def test_a_last_block_under_16_values_joins_the_one_before():
    # 65 one-pixel images in blocks of 64: a last block of 1 value would draw another stream
    images, after = _blocks((1, 1, 1), 2, 65, 3, 64)
    want, want_after = _one_piece((1, 1, 1), 2, 65, 3)
    assert torch.equal(images, want) and torch.equal(after, want_after)


def test_synthetic_source_is_the_formula_it_always_was():
    src = synthetic_source((3, 8, 8), 4, train=100, val=30, seed=5)
    gen = torch.Generator().manual_seed(5 + 7919)
    templates = torch.rand((4, 3, 8, 8), generator=gen) * 160 + 48
    for split, n in ((src.train, 100), (src.val, 30)):
        labels = torch.randint(0, 4, (n,), generator=gen)
        noise = torch.randn((n, 3, 8, 8), generator=gen) * 40
        assert torch.equal(split.labels, labels)
        assert torch.equal(split.images, (templates[labels] + noise).clamp_(0, 255).to(torch.uint8))
