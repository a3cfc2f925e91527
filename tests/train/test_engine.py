import dataclasses
import json
import shutil

import pytest
import torch
from train_fixtures import ToneMixtures, tiny_config

from speechsep.checkpoint import load_model, read_checkpoint
from speechsep.train import StepInfo, train
from speechsep.train.config import ModelSpec


def _weights(path):
    return read_checkpoint(path)["state_dict"]


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_tiny_model_overfits_one_batch(tmp_path):
    data = ToneMixtures(4, length=2000)
    cfg = tiny_config(
        model=ModelSpec("test-tiny-mask", {"channels": 32, "kernel": 16}),
        max_epochs=30, steps_per_epoch=1,
    )
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, segment_seconds=0.25, valid_segment_seconds=0.25),
                              optim=dataclasses.replace(cfg.optim, lr=1e-2))
    result = train(cfg, tmp_path / "run", device="cpu", train_data=data, valid_data=data, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    valid = [r["si_sdr"] for r in records if r["kind"] == "valid"]
    assert result.epoch == 30 and len(valid) == 30
    assert max(valid) - valid[0] >= 10.0, valid
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "run" / "curves.png").stat().st_size > 0
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.family == "test-tiny-mask"


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    data, valid = ToneMixtures(12), ToneMixtures(2, seed=1)
    cfg = tiny_config(max_epochs=2)  # 3 steps an epoch: 6 steps
    cfg = dataclasses.replace(cfg, model=ModelSpec("test-tiny-mask", {"channels": 16, "kernel": 16, "dropout": 0.2}))
    whole = train(cfg, tmp_path / "whole", device="cpu", train_data=data, valid_data=valid, progress=False)
    assert whole.step == 6 and whole.epoch == 2

    def stop_at(step):
        def hook(info: StepInfo):
            if info.step == step:
                raise KeyboardInterrupt
        return hook

    # Ctrl-C in the middle of epoch 2: last.pt is written at the last finished step.
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", device="cpu", train_data=data, valid_data=valid, hooks=[stop_at(4)], progress=False)
    payload = read_checkpoint(tmp_path / "cut" / "last.pt")
    assert payload["step"] == 4 and payload["epoch"] == 1 and payload["extra"]["batch_in_epoch"] == 1
    resumed = train(cfg, tmp_path / "cut", device="cpu", train_data=data, valid_data=valid, progress=False)
    assert resumed.step == 6
    _assert_identical(_weights(tmp_path / "whole" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))
    # The resumed log holds each step once.
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "train"]
    assert steps == list(range(1, 7)), steps

    # A hard crash (no handler runs) after step 5 resumes from the periodic checkpoint at step 4.
    cfg_ck = dataclasses.replace(cfg, checkpoint_every=2)

    def crash(info: StepInfo):
        if info.step == 5:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg_ck, tmp_path / "crash", device="cpu", train_data=data, valid_data=valid, hooks=[crash], progress=False)
    assert read_checkpoint(tmp_path / "crash" / "last.pt")["step"] == 4
    train(cfg_ck, tmp_path / "crash", device="cpu", train_data=data, valid_data=valid, progress=False)
    _assert_identical(_weights(tmp_path / "whole" / "last.pt"), _weights(tmp_path / "crash" / "last.pt"))


def test_precision_bf16_trains_in_bf16_on_cpu_and_a_resume_records_the_change(tmp_path):
    data, valid = ToneMixtures(12), ToneMixtures(2, seed=1)
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny_config(precision="fp16")
    first = tiny_config(max_epochs=1)
    train(first, tmp_path / "fp32", device="cpu", train_data=data, valid_data=valid, progress=False)
    shutil.copytree(tmp_path / "fp32", tmp_path / "bf16")
    for name, precision in (("fp32", "auto"), ("bf16", "bf16")):
        train(tiny_config(max_epochs=2, precision=precision), tmp_path / name, device="cpu", train_data=data,
              valid_data=valid, progress=False)
    events = [json.loads(x) for x in (tmp_path / "bf16" / "log.jsonl").read_text().splitlines()]
    assert [e.get("config_changes") for e in events if e.get("event") == "resume"] == [{"precision": "bf16"}]
    events = [json.loads(x) for x in (tmp_path / "fp32" / "log.jsonl").read_text().splitlines()]
    assert [e.get("config_changes") for e in events if e.get("event") == "resume"] == [None]
    # the same three steps from the same state, in bf16 instead of float32: close, but not the same
    a, b = _weights(tmp_path / "fp32" / "last.pt"), _weights(tmp_path / "bf16" / "last.pt")
    assert all(b[k].dtype == torch.float32 for k in b)  # weights stay float32
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert 0 < diff < 0.05, diff


def test_max_steps_pauses_and_rerun_on_finished_run_is_a_no_op(tmp_path):
    data, valid = ToneMixtures(8), ToneMixtures(2, seed=1)
    cfg = tiny_config(max_epochs=3, max_steps=3)  # 2 steps an epoch
    first = train(cfg, tmp_path / "run", device="cpu", train_data=data, valid_data=valid, progress=False)
    assert first.stopped == "max_steps" and first.step == 3
    done = train(dataclasses.replace(cfg, max_steps=None), tmp_path / "run", device="cpu", train_data=data,
                 valid_data=valid, progress=False)
    assert done.step == 6 and done.epoch == 3 and done.stopped == "max_epochs"
    again = train(cfg, tmp_path / "run", device="cpu", train_data=data, valid_data=valid, progress=False)
    assert again.step == 6 and again.stopped == "max_epochs"


class _TwoTerms(torch.nn.Module):
    """A model whose training hook returns two known estimates (like the iterative model's per-iteration
    outputs); its plain forward must not be used for the loss."""

    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, mix):
        raise AssertionError("the engine must train through training_outputs when the model has it")

    def training_outputs(self, mix, ref, objective=None):
        from speechsep.models.base import TrainingOutput

        return [TrainingOutput(self.first, 1), TrainingOutput(self.second, 2)]


def _two_iteration_objective(first, second):
    """The objective that weighs the two iterations 0.25 and 0.75 (the training config's loss: section)."""
    from speechsep.losses.objectives import ObjectiveConfig

    return ObjectiveConfig(iteration_weights=(first, second), normalize=False)


def test_objective_sums_the_models_weighted_terms_under_pit():
    from speechsep.losses import PAIRWISE_LOSSES, PITLoss
    from speechsep.train.engine import ModelWithLoss

    gen = torch.Generator().manual_seed(0)
    ref = torch.randn(3, 2, 400, generator=gen)
    first = ref.flip(1) + 0.1 * torch.randn(3, 2, 400, generator=gen)  # right sources, swapped order
    second = 0.5 * ref + 0.3 * torch.randn(3, 2, 400, generator=gen)
    loss = ModelWithLoss(_TwoTerms(first, second), "neg_snr", pit=True, objective=_two_iteration_objective(0.25, 0.75))(ref.sum(1), ref)
    pit = PITLoss(PAIRWISE_LOSSES["neg_snr"])
    expected = 0.25 * pit(first, ref)[0] + 0.75 * pit(second, ref)[0]
    torch.testing.assert_close(loss, expected)
    # PIT undid the swap: the first term scores as well as its unswapped twin
    torch.testing.assert_close(pit(first, ref)[0], pit(first.flip(1), ref)[0])


def test_objective_scores_bf16_estimates_in_float32():
    """What bf16 autocast on a GPU hands the loss: bf16 estimates. The loss must be float32 arithmetic."""
    from speechsep.losses import PAIRWISE_LOSSES, PITLoss
    from speechsep.train.engine import ModelWithLoss

    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(2, 2, 300, generator=gen)
    est = (ref + 0.1 * torch.randn(2, 2, 300, generator=gen)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ModelWithLoss(_TwoTerms(est, est), "neg_snr", pit=True, objective=_two_iteration_objective(0.25, 0.75))(ref.sum(1), ref)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, PITLoss(PAIRWISE_LOSSES["neg_snr"])(est.float(), ref)[0])


def test_init_from_starts_from_given_weights_and_rejects_other_models(tmp_path):
    data, valid = ToneMixtures(8), ToneMixtures(2, seed=1)
    cfg = dataclasses.replace(tiny_config(max_epochs=1), model=ModelSpec("test-tiny-mask", {"channels": 16, "kernel": 16}))
    train(cfg, tmp_path / "first", device="cpu", train_data=data, valid_data=valid, progress=False)
    first = _weights(tmp_path / "first" / "last.pt")

    # One step at lr 0 from the first run's weights: exactly those weights, not a fresh draw.
    warm = dataclasses.replace(cfg, init_from=str(tmp_path / "first" / "last.pt"), steps_per_epoch=1, seed=7,
                               optim=dataclasses.replace(cfg.optim, lr=0.0))
    train(warm, tmp_path / "warm", device="cpu", train_data=data, valid_data=valid, progress=False)
    _assert_identical(first, _weights(tmp_path / "warm" / "last.pt"))
    start = json.loads((tmp_path / "warm" / "log.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["init_from"].endswith("last.pt")
    # each run is named, so a model card counts it once however often it is bundled
    first_start = json.loads((tmp_path / "first" / "log.jsonl").read_text().splitlines()[0])
    assert len(start["run_id"]) == 16 and start["run_id"] != first_start["run_id"]

    wider = dataclasses.replace(warm, model=ModelSpec("test-tiny-mask", {"channels": 32, "kernel": 16}))
    with pytest.raises(Exception, match="init_from weights do not fit"):
        train(wider, tmp_path / "wider", device="cpu", train_data=data, valid_data=valid, progress=False)



def test_deep_clustering_term_is_added_to_the_loss_and_needs_an_embedding_head():
    from speechsep.losses import PAIRWISE_LOSSES, PITLoss
    from speechsep.losses.objectives import ObjectiveConfig
    from speechsep.registry import build
    from speechsep.train.engine import ModelWithLoss

    torch.manual_seed(0)
    ref = torch.randn(2, 2, 1200)
    model = build("tf-mask-tiny", embedding_dim=3).train()
    objective = ObjectiveConfig(deep_clustering_weight=2.5)
    loss = ModelWithLoss(model, "neg_snr", pit=True, objective=objective)(ref.sum(1), ref)
    (out,) = model.training_outputs(ref.sum(1), ref, objective)
    expected = PITLoss(PAIRWISE_LOSSES["neg_snr"])(out.estimate, ref)[0] + 2.5 * out.deep_clustering
    torch.testing.assert_close(loss, expected)
    headless = ModelWithLoss(build("tf-mask-tiny"), "neg_snr", pit=True, objective=objective)
    with pytest.raises(ValueError, match="embedding head.*embedding_dim"):
        headless(ref.sum(1), ref)


def test_init_from_weights_without_a_training_only_head_start_the_head_fresh(tmp_path):
    from speechsep.train.config import LossConfig

    data, valid = ToneMixtures(8), ToneMixtures(2, seed=1)
    cfg = dataclasses.replace(tiny_config(max_epochs=1), model=ModelSpec("tf-mask-tiny", {}))
    train(cfg, tmp_path / "plain", device="cpu", train_data=data, valid_data=valid, progress=False)
    plain = _weights(tmp_path / "plain" / "last.pt")
    # lr 0: the shared weights stay exactly those of the plain run; the new head is there and trained from here
    warm = dataclasses.replace(cfg, init_from=str(tmp_path / "plain" / "last.pt"), steps_per_epoch=1,
                               model=ModelSpec("tf-mask-tiny", {"embedding_dim": 3}),
                               loss=LossConfig("neg_snr", pit=True, deep_clustering_weight=1.0),
                               optim=dataclasses.replace(cfg.optim, lr=0.0))
    train(warm, tmp_path / "dc", device="cpu", train_data=data, valid_data=valid, progress=False)
    dc = _weights(tmp_path / "dc" / "last.pt")
    assert {k for k in dc if k.startswith("embedding_head.")} == {"embedding_head.weight", "embedding_head.bias"}
    _assert_identical(plain, {k: v for k, v in dc.items() if not k.startswith("embedding_head.")})
    # the other way round, a head the recipe's model lacks is not silently dropped
    back = dataclasses.replace(cfg, init_from=str(tmp_path / "dc" / "last.pt"))
    with pytest.raises(Exception, match="init_from weights do not fit.*unexpected.*embedding_head"):
        train(back, tmp_path / "back", device="cpu", train_data=data, valid_data=valid, progress=False)


_SIGTERM_RUN = """
import dataclasses, sys
sys.path.insert(0, {fixtures!r})
import torch
from train_fixtures import ToneMixtures, tiny_config
from speechsep.train import train
from speechsep.train.config import ModelSpec

torch.set_num_threads(1)
# steps long enough (~0.2 s) that the signals land inside backward(), where the bug showed; one loader
# worker, so the job is two processes
cfg = tiny_config(max_epochs=1000, model=ModelSpec("test-tiny-mask", {{"channels": 512, "kernel": 8}}))
cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=1, segment_seconds=2.0))
try:
    train(cfg, {run!r}, device="cpu", train_data=ToneMixtures(12, length=17000), valid_data=ToneMixtures(2, seed=1),
          hooks=[lambda info: print(info.step, flush=True)], progress=False)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.slow
def test_sigterm_to_the_whole_job_saves_last_pt_at_the_last_finished_step(tmp_path):
    """A scheduler (or pkill) signals every process of the job, loader workers included: the stop must
    still be clean. It was not: the dead worker's error replaced the interrupt and skipped the save."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    run = tmp_path / "run"
    script = _SIGTERM_RUN.format(fixtures=str(Path(__file__).parent), run=str(run))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if int(line) >= 5:
                break
        os.killpg(proc.pid, signal.SIGTERM)  # the whole process group, as a scheduler does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    events = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    stops = [e for e in events if e.get("event") == "interrupted"]
    assert len(stops) == 1 and stops[0]["step"] >= 5, err
    assert read_checkpoint(run / "last.pt")["step"] == stops[0]["step"]


def test_warmup_cosine_run_logs_the_closed_form_lr_and_resumes_with_the_same_lrs(tmp_path):
    import math

    from speechsep.train.config import ScheduleConfig

    data, valid = ToneMixtures(12), ToneMixtures(2, seed=1)
    cfg = tiny_config(max_epochs=2, schedule=ScheduleConfig(kind="warmup_cosine", warmup_steps=2))  # 6 steps

    def lrs(run):
        records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        return {r["step"]: r["lr"] for r in records if r["kind"] == "train"}

    whole = train(cfg, tmp_path / "whole", device="cpu", train_data=data, valid_data=valid, progress=False)
    assert whole.stopped == "max_epochs" and whole.step == 6
    # total_steps unset: the run's length, 2 epochs x 3 steps; the record of step s is update s - 1's lr
    peak, final = 1e-3, 0.05e-3
    expected = {s: peak * s / 3 if s <= 2 else final + (peak - final) * 0.5 * (1 + math.cos(math.pi * (s - 3) / 4))
                for s in range(1, 7)}
    assert lrs(tmp_path / "whole") == pytest.approx(expected, rel=1e-9)

    def stop_at(step):
        def hook(info: StepInfo):
            if info.step == step:
                raise KeyboardInterrupt
        return hook

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", device="cpu", train_data=data, valid_data=valid, hooks=[stop_at(4)],
              progress=False)
    train(cfg, tmp_path / "cut", device="cpu", train_data=data, valid_data=valid, progress=False)
    assert lrs(tmp_path / "cut") == lrs(tmp_path / "whole")
    _assert_identical(_weights(tmp_path / "whole" / "last.pt"), _weights(tmp_path / "cut" / "last.pt"))


def test_clean_first_epochs_is_refused_for_a_dataset_that_is_not_dynamic_mixing(tmp_path):
    cfg = tiny_config(max_epochs=1)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, clean_first_epochs=1))
    with pytest.raises(ValueError, match="clean_first_epochs applies to a dynamic-mixing"):
        train(cfg, tmp_path / "run", device="cpu", train_data=ToneMixtures(8), valid_data=ToneMixtures(2),
              progress=False)
