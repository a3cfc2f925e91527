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
