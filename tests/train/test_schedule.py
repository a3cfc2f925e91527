import math

import pytest
import torch

from speechsep.train.config import ScheduleConfig
from speechsep.train.schedule import EpochScheduler, make_scheduler, rules_for


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


def _warmup_cosine(peak=1e-3, **changes):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    config = ScheduleConfig(kind="warmup_cosine", **changes)
    return make_scheduler(opt, config, run_steps=1000)


def _lrs(sched, steps):
    out = []
    for step in steps:
        sched.at_step(step)
        out.append(sched.lr)
    return out


def test_warmup_cosine_lr_at_warmup_peak_mid_decay_and_end():
    peak, final = 1e-3, 0.05 * 1e-3
    sched = _warmup_cosine(peak, warmup_steps=10, total_steps=110)
    lrs = dict(zip([0, 5, 10, 35, 60, 109, 110, 500], _lrs(sched, [0, 5, 10, 35, 60, 109, 110, 500]), strict=True))
    assert lrs[0] == pytest.approx(peak / 11, rel=1e-12)  # (step + 1) / (warmup + 1): small, never 0
    assert lrs[5] == pytest.approx(peak * 6 / 11, rel=1e-12)
    assert lrs[10] == pytest.approx(peak, rel=1e-12)
    assert lrs[35] == pytest.approx(final + (peak - final) * 0.5 * (1 + math.cos(math.pi / 4)), rel=1e-12)
    assert lrs[60] == pytest.approx(final + (peak - final) * 0.5, rel=1e-12)  # half-way: the mean
    assert final < lrs[109] < final * 1.01
    assert lrs[110] == lrs[500] == pytest.approx(final, rel=1e-12)
    # no warm-up: the first update is at the peak; the lr is monotone after it
    flat = _lrs(_warmup_cosine(peak, total_steps=20, final_lr_ratio=0.0), range(25))
    assert flat[0] == peak and flat[20:] == [0.0] * 5
    assert all(a >= b for a, b in zip(flat, flat[1:], strict=False))


def test_warmup_cosine_never_stops_early_and_tracks_the_best():
    sched = _warmup_cosine(warmup_steps=2, total_steps=10)
    lrs_before = _lrs(sched, [7])
    stops = [sched.step(score) for score in [1.0, 3.0] + [2.0] * 40]
    assert not any(stops) and sched.best == 3.0 and sched.best_epoch == 2 and not sched.is_best()
    assert sched.lr == lrs_before[0]  # epochs do not touch the lr


def test_warmup_cosine_resumed_gives_the_same_lr_sequence():
    whole = _lrs(_warmup_cosine(warmup_steps=4, total_steps=30), range(40))
    first = _warmup_cosine(warmup_steps=4, total_steps=30)
    head = _lrs(first, range(13))
    first.step(1.0)
    # a fresh optimiser and scheduler, as a resumed run builds them, loaded from the first's state
    again = _warmup_cosine(warmup_steps=4, total_steps=30)
    again.load_state_dict(first.state_dict())
    again.optimizer.param_groups[0]["lr"] = first.lr  # what the optimiser's own state restores
    assert head + _lrs(again, range(13, 40)) == whole
    assert again.best == 1.0 and again.epochs == 1


def test_warmup_cosine_planned_length_is_kept_on_resume():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    planned = make_scheduler(opt, ScheduleConfig(kind="warmup_cosine", warmup_steps=2), run_steps=20)
    assert planned.total_steps == 20
    longer = make_scheduler(opt, ScheduleConfig(kind="warmup_cosine", warmup_steps=2), run_steps=50)
    longer.load_state_dict(planned.state_dict())  # max_epochs raised on resume: the plan stays
    assert longer.total_steps == 20
    fixed = make_scheduler(opt, ScheduleConfig(kind="warmup_cosine", warmup_steps=2, total_steps=40), run_steps=20)
    fixed.load_state_dict(planned.state_dict())  # a configured length is the config's
    assert fixed.total_steps == 40
    with pytest.raises(ValueError, match="shorter than the run"):
        make_scheduler(opt, ScheduleConfig(kind="warmup_cosine", warmup_steps=30), run_steps=20)


@pytest.mark.parametrize(("changes", "match"), [
    ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
    ({"warmup_steps": 1.5}, "warmup_steps must be an integer >= 0"),
    ({"warmup_steps": 10, "total_steps": 10}, "total_steps must be an integer > warmup_steps"),
    ({"total_steps": 0}, "total_steps must be an integer > warmup_steps"),
    ({"final_lr_ratio": -0.1}, r"final_lr_ratio must be in \[0, 1\]"),
    ({"final_lr_ratio": 1.5}, r"final_lr_ratio must be in \[0, 1\]"),
    ({"final_lr_ratio": "lots"}, "final_lr_ratio must be a number"),
    ({"patience": 3}, "does not use schedule.patience"),
])
def test_warmup_cosine_config_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        ScheduleConfig(kind="warmup_cosine", **changes)


def test_epoch_kinds_reject_step_fields_and_yaml_strings_become_floats():
    with pytest.raises(ValueError, match="does not use schedule.warmup_steps"):
        ScheduleConfig(kind="tfacm", warmup_steps=100)
    with pytest.raises(ValueError, match="does not use schedule.total_steps"):
        ScheduleConfig(kind="iterative", total_steps=100)
    assert ScheduleConfig(kind="warmup_cosine", final_lr_ratio="5e-2").final_lr_ratio == 0.05
    assert isinstance(make_scheduler(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]),
                                     ScheduleConfig(kind="tfacm")), EpochScheduler)
