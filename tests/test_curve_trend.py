"""scripts/curve_trend.py: the per-doubling trend of a run's validation curve, and its extrapolation."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("curve_trend", Path(__file__).parents[1] / "scripts" / "curve_trend.py")
curve_trend = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(curve_trend)


def _run(tmp_path, points, resumed_at=None):
    records = [{"kind": "valid", "step": s, "si_sdri": v, "si_sdr": v - 4.5} for s, v in points]
    if resumed_at is not None:  # a resumed run logs the validation at its resume step again
        records.insert(0, {"kind": "valid", "step": resumed_at, "si_sdri": -9.0, "si_sdr": -13.5})
        records.append({"kind": "event", "event": "resume", "step": resumed_at})
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def test_fit_recovers_the_slope_per_doubling_and_keeps_the_last_record_of_a_step(tmp_path):
    points = [(1000 * 2**k, 1.0 + 0.5 * k) for k in range(5)]  # exactly +0.5 dB per doubling
    run = _run(tmp_path, points, resumed_at=4000)
    got = curve_trend.valid_points(run)
    assert got == points
    a, b = curve_trend.fit(got)
    assert b == pytest.approx(0.5) and a + b * math.log2(1000) == pytest.approx(1.0)


def test_cli_extrapolates_to_the_goal(tmp_path, capsys):
    run = _run(tmp_path, [(1000 * 2**k, 1.0 + 0.5 * k) for k in range(5)])
    assert curve_trend.main([str(run), "--goal", "5.5", "--offset", "0.5", "--from-fraction", "0"]) == 0
    out = capsys.readouterr().out
    # at 16,000 steps the line is at 3.0 dB; 5.0 dB validation needs 4 more doublings: 256,000 steps
    assert "+0.500 dB" in out and "4.0 more doublings" in out and "2.56e+05 steps" in out


def test_cli_names_a_folder_without_a_log(tmp_path):
    with pytest.raises(SystemExit, match="log.jsonl: no such file"):
        curve_trend.main([str(tmp_path), "--goal", "8"])
