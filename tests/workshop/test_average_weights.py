"""bench/learn/average.py: the mean of checkpoints' weights, as a checkpoint the toolkit loads."""

import pytest
import torch

from bench.learn.average import average
from speechsep.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from speechsep.registry import build


def _saved(tmp_path, name, seed, step, preset="tf-mask-tiny"):
    torch.manual_seed(seed)
    return save_checkpoint(tmp_path / name, build(preset), step=step, extra={"train_config": {"seed": seed}})


def test_the_average_is_the_elementwise_mean_and_loads(tmp_path):
    paths = [_saved(tmp_path, f"{i}.pt", seed=i, step=100 * i) for i in range(3)]
    out = average(paths, tmp_path / "mean.pt")
    states = [read_checkpoint(p)["state_dict"] for p in paths]
    model = load_model(out)
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, sum(s[name] for s in states) / 3)
    payload = read_checkpoint(out)
    assert payload["extra"]["steps"] == [0, 100, 200] and payload["extra"]["train_config"] == {"seed": 0}
    # the inputs differ (three seeds), so the mean is none of them
    assert any(not torch.equal(value, states[0][name]) for name, value in model.state_dict().items())


def test_checkpoints_of_another_architecture_are_refused_and_nothing_is_written(tmp_path):
    a = _saved(tmp_path, "a.pt", seed=0, step=1)
    b = _saved(tmp_path, "b.pt", seed=1, step=1, preset="tfacm-tiny")
    with pytest.raises(CheckpointError, match="b.pt: another model"):
        average([a, b], tmp_path / "mean.pt")
    with pytest.raises(ValueError, match="at least two"):
        average([a], tmp_path / "mean.pt")
    assert not (tmp_path / "mean.pt").exists()


def test_paired_differences_are_taken_over_the_shared_mixtures(tmp_path):
    from bench.learn.paired import paired, read_scores

    def write(name, scores):
        path = tmp_path / name
        path.write_text("id,seconds,si_sdr,si_sdri\n" + "".join(f"m{i},4.0,0.0,{s}\n" for i, s in scores.items()))
        return path

    old = read_scores(write("old.csv", {i: float(i) for i in range(20)}))
    new = read_scores(write("new.csv", {i: i + 1.0 + (0.5 if i % 2 else -0.5) for i in range(1, 21)}))
    r = paired(new, old)
    assert r["n"] == 19 and r["diff"] == pytest.approx(1.0 + 0.5 / 19)  # ten odd, nine even
    assert r["low"] < r["diff"] < r["high"] and r["high"] - r["low"] < 1.0
    (tmp_path / "bad.csv").write_text("id,x\na,1\n")
    with pytest.raises(ValueError, match="bad.csv: not a `speechsep eval --out` CSV"):
        read_scores(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="missing.csv: no such eval CSV"):
        read_scores(tmp_path / "missing.csv")
