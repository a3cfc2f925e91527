import pytest
import torch

from speechsep.train.config import ScheduleConfig
from speechsep.train.schedule import EpochScheduler, rules_for


def _scheduler(kind, **changes):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    return EpochScheduler(opt, rules_for(ScheduleConfig(kind=kind, **changes)))


def _run(sched, curve):
    lrs, stop_at = [], None
    for epoch, score in enumerate(curve, start=1):
        stop = sched.step(score)
        lrs.append(sched.lr)
        if stop:
            stop_at = epoch
            break
    return lrs, stop_at


def test_iterative_schedule_decays_every_two_epochs_and_stops_after_ten_without_best():
    # improves for 5 epochs (best at epoch 5), then flat: epochs 6..15 are 10 without a new best
    curve = [1.0, 2.0, 3.0, 4.0, 5.0] + [4.0] * 20
    lrs, stop_at = _run(_scheduler("iterative"), curve)
    assert stop_at == 15
    expected = [1e-3 * 0.98 ** (epoch // 2) for epoch in range(1, 16)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_tfacm_schedule_halves_on_ten_epoch_plateau_and_stops_after_fifteen():
    # best at epoch 3; epochs 4..13 flat -> halve after epoch 13; stop after epoch 18 (15 without best)
    curve = [1.0, 2.0, 3.0] + [2.5] * 30
    lrs, stop_at = _run(_scheduler("tfacm"), curve)
    assert stop_at == 18
    assert lrs[:12] == [1e-3] * 12
    assert lrs[12:] == [5e-4] * 6


def test_tfacm_plateau_counter_resets_on_improvement_and_after_a_decay():
    sched = _scheduler("tfacm", patience=3, stop_patience=100)
    curve = [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    lrs, stop_at = _run(sched, curve)
    assert stop_at is None
    # improvement at epoch 4 resets; decays after epochs 7 and 10 (3 flat epochs each)
    assert lrs == pytest.approx([1e-3] * 6 + [5e-4] * 3 + [2.5e-4])


def test_scheduler_state_round_trip_continues_identically():
    curve = [1.0, 3.0, 2.0, 2.0, 2.0, 4.0, 1.0, 1.0]
    a = _scheduler("tfacm", patience=2)
    lrs_a, _ = _run(a, curve)
    b = _scheduler("tfacm", patience=2)
    _run(b, curve[:4])
    c = _scheduler("tfacm", patience=2)
    c.load_state_dict(b.state_dict())
    c.optimizer.param_groups[0]["lr"] = b.lr  # the optimiser's own state carries the LR
    lrs_c, _ = _run(c, curve[4:])
    assert lrs_c == lrs_a[4:] and c.best == a.best == 4.0


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="schedule.kind"):
        ScheduleConfig(kind="cosine")
