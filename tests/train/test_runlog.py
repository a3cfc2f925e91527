import builtins
import contextlib
import json
import logging
import warnings

import pytest
import torch
from train_fixtures import ToneMixtures, tiny_config

from speechsep.precision import autocast
from speechsep.train import train
from speechsep.train.engine import training_device
from speechsep.train.runlog import RunLog


@pytest.mark.slow  # a whole (tiny) run, curves.png included: seconds on a shared machine
def test_progress_bar_shows_loss_rate_and_eta(tmp_path, capsys):
    cfg = tiny_config(max_epochs=1, max_steps=2)
    train(cfg, tmp_path / "run", device="cpu", train_data=ToneMixtures(12), valid_data=ToneMixtures(2, seed=1),
          progress=True)
    err = capsys.readouterr().err
    assert "epoch 1" in err and "loss=" in err
    assert "step/s" in err or "s/step" in err  # the rate
    assert "<" in err  # tqdm's "elapsed<remaining": the ETA


def test_missing_tensorboard_is_reported_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name == "tensorboard":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with caplog.at_level(logging.WARNING):
        runlog = RunLog(tmp_path, tensorboard=True)
    assert "pip install tensorboard" in caplog.text
    runlog.write({"kind": "train", "step": 1, "epoch": 0, "loss": 1.5})
    runlog.close()
    assert json.loads((tmp_path / "log.jsonl").read_text())["loss"] == 1.5


def test_resume_cuts_the_log_back_to_the_checkpoint_step(tmp_path):
    runlog = RunLog(tmp_path)
    for step in (1, 2, 3, 4):
        runlog.write({"kind": "train", "step": step, "epoch": 0, "loss": float(step)})
    with (tmp_path / "log.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')  # a line cut by a kill
    again = RunLog(tmp_path)
    again.resume(2)
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and [r["step"] for r in again.records] == [1, 2]


def test_device_auto_and_the_precision_rule():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert training_device("auto").type == expected
    cpu = torch.device("cpu")
    assert isinstance(autocast(cpu), contextlib.nullcontext)  # auto: float32 on the CPU
    assert isinstance(autocast(cpu, "fp32"), contextlib.nullcontext)
    ctx = autocast(cpu, "bf16")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available": the object is still what a GPU run gets
        ctx = autocast(torch.device("cuda"))
        assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cuda"
        assert isinstance(autocast("cuda", "fp32"), contextlib.nullcontext)
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast(cpu, "half")
