"""The `speechsep bench` suite: plan selection, anchor configuration and one tiny model through the measurement code.
No timing assertions: only that the numbers exist, have the right signs and the budget rules hold."""

import dataclasses
import math
import re

import pytest
import torch

from bench.anchor_child import child_source, run_job
from bench.anchors import anchor_specs
from bench.plan import QUICK_SKIP, default_models, make_plan
from bench.runner import measure_model, ratios
from speechsep.registry import get_preset


def test_quick_plan_selects_fewer_runs():
    quick, full = make_plan(quick=True), make_plan(quick=False)
    assert set(quick.models) < set(full.models) == set(default_models())
    assert quick.runs() < full.runs()
    assert len(quick.offline_seconds) < len(full.offline_seconds) and max(full.memory_seconds) == 120.0
    assert quick.repeats < full.repeats and quick.deadline_seconds <= 600 < full.deadline_seconds <= 3600
    skipped = dict(quick.skipped_models)
    assert all(name in skipped for name in QUICK_SKIP)
    assert set(skipped) | set(quick.models) == set(full.models)
    # the default covers TFACM Table I, tfacm-lite and every paper-size iterative Table 1 row
    assert {"tfacm-large", "tfacm-small", "skim", "tfgridnet-causal", "tfacm-lite"} <= set(full.models)
    assert sum(n.startswith("iter-") for n in full.models) == 18
    assert all("tiny" not in n for n in full.models)


def test_named_models_are_kept_and_checked():
    plan = make_plan(quick=True, models=["tfgridnet-causal", "tfacm-tiny", "tfacm-tiny"])
    assert plan.models == ("tfgridnet-causal", "tfacm-tiny") and plan.skipped_models == ()
    with pytest.raises(KeyError, match="no-such-model"):
        make_plan(quick=True, models=["no-such-model"])
    with pytest.raises(ValueError, match="threads"):
        make_plan(quick=True, threads=0)


def test_anchor_kwargs_follow_our_presets():
    specs = {s.pairs_with: s for s in anchor_specs(["dprnn-causal", "iter-time-simo3-siso0-it1", "skim",
                                                      "tfgridnet-causal", "tfacm-small"])}
    assert set(specs) == {"dprnn-causal", "iter-time-simo3-siso0-it1", "skim", "tfgridnet-causal"}
    c = get_preset("dprnn-causal").config
    kw = specs["dprnn-causal"].kwargs
    assert (kw["n_filters"], kw["kernel_size"], kw["stride"], kw["hid_size"], kw["chunk_size"], kw["n_repeats"]) == (
        c.codec.num_filters, c.codec.window, c.codec.hop, c.hidden, c.segment, c.num_blocks)
    it = specs["iter-time-simo3-siso0-it1"].kwargs
    assert (it["sample_rate"], it["kernel_size"], it["stride"], it["n_filters"], it["n_repeats"]) == (16000, 32, 16, 128, 3)
    skim = specs["skim"].kwargs
    assert skim["separator"]["unit"] == get_preset("skim").config.hidden and skim["separator"]["causal"]
    grid = specs["tfgridnet-causal"].kwargs
    assert grid["attn_approx_qk_dim"] == 16 * 33 and grid["n_fft"] == 64 and grid["stride"] == 16


def test_child_source_is_one_runnable_script():
    source = child_source()
    compile(source, "<anchor child>", "exec")
    assert len(re.findall(r"^from __future__ import", source, flags=re.M)) == 1
    assert "def run_times(" in source and "def run_job(" in source
    with pytest.raises(ValueError, match="memory is measured alone"):
        run_job({"anchor": "asteroid-dprnn", "kwargs": {}, "measures": ["forward", "memory"]})


def test_ratios_use_only_numbers_both_sides_have():
    ours = {"params": 2, "macs_per_second": 4.0, "train_step_seconds": None,
            "offline": {"1": {"seconds": 1.0}, "4": {"seconds": 3.0}}, "memory": {"4": 100}}
    theirs = {"params": 4, "macs_per_second": 2.0, "train_step_seconds": 1.0,
              "offline": {"1": {"seconds": 2.0}}, "memory": {}}
    assert ratios(ours, theirs) == {"params": 0.5, "macs_per_second": 2.0, "offline_1s": 0.5}


@pytest.fixture
def one_thread():
    # OpenMP threads spin while they wait: on a loaded 2-core machine two of them can make these tiny
    # models ten times slower (the bench itself sets OMP_WAIT_POLICY=PASSIVE before torch loads)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_plan(**changes):
    plan = make_plan(quick=True, models=["dprnn-causal-tiny"], anchors=False, pit=False)
    base = dict(offline_seconds=(0.1, 0.2), memory_seconds=(), chunk_ms=(16.0,), stream_seconds=0.1, budget_seconds=1e9,
                warmup=0, repeats=1, train_batch=1, train_seconds=0.1, train_warmup=0, train_repeats=1)
    return dataclasses.replace(plan, **{**base, **changes, "threads": 1})


def test_tiny_causal_model_gets_every_measurement(one_thread):
    entry = measure_model("dprnn-causal-tiny", _tiny_plan(), gflops=10.0, log=lambda _line: None)
    assert entry["causal"] and entry["params"] > 0 and entry["macs_per_second"] > 0
    assert set(entry["offline"]) == {"0.1", "0.2"} and all(r["seconds"] > 0 for r in entry["offline"].values())
    stream = entry["streaming"]["16"]
    assert stream["chunks"] == math.ceil(800 / 128) and stream["p50_ms"] <= stream["max_ms"] and stream["rtf"] > 0
    assert entry["train_step_seconds"] > 0 and entry["floor_distance"] > 0 and entry["skipped"] == []


def test_budget_skips_are_recorded_not_silent(one_thread):
    plan = _tiny_plan(budget_seconds=0.0, offline_seconds=(0.1, 30.0), memory_seconds=(120.0,))
    entry = measure_model("iter-freq-simo1-siso2-it1-tiny", plan, gflops=10.0, log=lambda _line: None)
    assert set(entry["offline"]) == {"0.1"}  # the first length is always measured: it sets the rate
    reasons = {s["what"]: s["reason"] for s in entry["skipped"]}
    assert {"offline 30 s", "memory 120 s", "train step", "streaming"} <= set(reasons)
    assert "budget" in reasons["offline 30 s"] and reasons["streaming"].startswith("not causal")
    assert entry["train_step_seconds"] is None and entry["streaming"] == {}
