"""When the engine probes (ProbeCadence): the segmentation overlay's mask-only probes stay within
their share of an epoch, refresh at least once per epoch, and follow the interval when they are
cheap; feature-map probes keep their rule (a tenth of the run). Fake clocks throughout: no timing."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

import core.training.engine as engine
from core.training import Callbacks, TrainConfig, Trainer, seed_everything
from core.training.data.segmentation import SHAPES_SEG_CLASSES, shapes_seg_source
from core.training.probes import FEATURE_PROBE_WAIT, MASK_PROBE_SHARE, ProbeCadence, Prober


def simulate(steps: int, step_s: float, probe_s: float, interval: float = 1.0,
             feature_maps: bool = False) -> tuple[ProbeCadence, list[float], float]:
    """One epoch of ``steps`` steps of ``step_s`` seconds, a report after each, on a fake clock.
    Returns the cadence, when each probe ended and the epoch's length."""
    now = 0.0
    cadence = ProbeCadence(interval, start=now)
    ends: list[float] = []
    for _ in range(steps):
        now += step_s
        if cadence.due(now, feature_maps):
            cadence.done(now, now + probe_s)
            now += probe_s
            ends.append(now)
    return cadence, ends, now


def test_slow_mask_probes_take_at_most_their_share_of_the_epoch() -> None:
    # a loaded CPU: 0.1 s steps, 0.3 s probes (three steps each), for 1000 steps
    cadence, ends, epoch = simulate(1000, 0.1, 0.3)
    assert cadence.spent <= MASK_PROBE_SHARE * epoch + 0.3  # the budget, plus the epoch's first probe
    assert cadence.count >= int(MASK_PROBE_SHARE * epoch / 0.3) - 1  # and the budget is used: still live
    # after the first probe's own wait, one probe per probe/share seconds (15 s here), not fewer
    gaps = [b - a for a, b in itertools.pairwise(ends[1:])]
    assert gaps and max(gaps) < 0.3 / MASK_PROBE_SHARE + 0.3 + 0.1 + 1e-9


def test_probes_whose_cost_jumps_cannot_exceed_the_budget() -> None:
    """A cheap probe followed by expensive ones (another process takes the cores) is held by the
    seconds already spent, not only by the last probe's cost."""
    now, cadence = 0.0, ProbeCadence(1.0, start=0.0)
    costs = iter([0.001] + [0.5] * 1000)
    for _ in range(2000):
        now += 0.1
        if cadence.due(now, feature_maps=False):
            cost = next(costs)
            cadence.done(now, now + cost)
            now += cost
    assert cadence.count > 2
    assert cadence.spent <= MASK_PROBE_SHARE * now + 0.5  # at most one probe beyond the budget


def test_cheap_mask_probes_follow_the_interval() -> None:
    """A quiet machine: 5 ms probes, 50 ms steps: the overlay refreshes every second."""
    cadence, ends, epoch = simulate(400, 0.05, 0.005)
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    assert ends[0] == pytest.approx(0.055)  # the first report of the epoch
    assert gaps and max(gaps) <= 1.0 + 0.05 + 0.005 + 1e-9 and min(gaps) >= 1.0
    assert cadence.count >= int(epoch / 1.06)


def test_every_epoch_refreshes_at_least_once_even_with_probes_longer_than_it() -> None:
    cadence, ends, _ = simulate(3, 2.0, 5.0)  # three slow steps, a probe longer than all of them
    assert cadence.count == 1 and ends == [7.0]


def test_an_interval_of_zero_probes_every_report() -> None:
    cadence, _, _ = simulate(50, 0.01, 0.5, interval=0.0)
    assert cadence.count == 50


def test_feature_map_probes_keep_waiting_nine_of_their_durations() -> None:
    cadence, ends, _ = simulate(200, 0.1, 0.3, feature_maps=True)
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    wait = FEATURE_PROBE_WAIT * 0.3  # 2.7 s, longer than the 1 s interval
    assert all(wait + 0.3 <= g + 1e-9 <= wait + 0.3 + 0.1 + 1e-9 for g in gaps)
    assert cadence.count == len(ends) > 5


class FakeClock:
    """``perf_counter`` for the engine: every reading advances it by ``tick`` seconds."""

    def __init__(self, tick: float) -> None:
        self.t = 1000.0
        self.tick = tick

    def perf_counter(self) -> float:
        self.t += self.tick
        return self.t


def test_the_engine_keeps_slow_mask_probes_within_their_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """A segmentation run with the overlay open and no node probed, on a fake clock where each probe
    takes 0.25 s: every epoch refreshes the overlay, and its probes stay within the budget."""
    clock = FakeClock(tick=0.2)
    monkeypatch.setattr(engine, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    probe_s = 0.25
    capture = Prober.capture

    def slow_capture(self: Prober, *args: Any, **kwargs: Any) -> Any:
        clock.t += probe_s
        return capture(self, *args, **kwargs)

    monkeypatch.setattr(Prober, "capture", slow_capture)
    seed_everything(0)
    data = shapes_seg_source(seed=0, train=120, val=4)
    cfg = TrainConfig(task="segmentation", dataset="shapes-seg", epochs=2, batch_size=1, lr=0.01, device="cpu",
                      augment=False, probe_samples=2)
    probes: list[Any] = []
    ends: list[Any] = []
    model = nn.Conv2d(3, len(SHAPES_SEG_CLASSES), 3, padding=1)
    summary = Trainer(model, data, cfg, Callbacks(probe=probes.append, epoch_end=ends.append)).run()
    assert summary.ok, summary.message
    for m in ends:
        seen = [p for p in probes if p.epoch == m.epoch]
        assert seen and all(p.masks_pred is not None and p.activations == {} for p in seen)
        # the probes' time (each at most a tick more than the sleep) within the share of the epoch
        assert (len(seen) - 1) * probe_s <= MASK_PROBE_SHARE * m.seconds
        assert len(seen) >= 2  # a 120-step epoch of many fake seconds has room for more than the first
    assert isinstance(probes[0].masks_pred, torch.Tensor)


def test_paused_time_earns_the_overlay_no_probes() -> None:
    cadence = ProbeCadence(1.0, start=0.0)
    assert cadence.due(0.1, feature_maps=False)
    cadence.done(0.1, 0.4)  # a 0.3 s probe: the next needs 0.6 / share = 30 s of training
    assert not cadence.due(600.0, feature_maps=False, paused=590.0)  # ten minutes, all but ten paused
    assert cadence.due(600.0, feature_maps=False, paused=560.0)
    assert cadence.due(600.0, feature_maps=True, paused=590.0)  # feature maps: the interval only
