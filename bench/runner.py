"""Run a :class:`~bench.plan.BenchPlan`: our models, the anchors, PIT; return the results dict.

The dict is what ``--json`` writes and what :mod:`speechsep.bench.report` renders; its layout is
checked by :func:`speechsep.bench.schema.validate_results`. Every number is measured in this run (the floor
at the start and the end of it, pooled), and every number not measured says why in ``skipped``.
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.anchor_child import forward_seconds, train_step_seconds
from bench.anchor_env import AnchorUnavailable, ensure_anchor_venv
from bench.anchors import AnchorFailed, AnchorSpec, anchor_peak_rss, anchor_specs, run_anchor
from bench.plan import BenchPlan
from speechsep.bench import memory
from speechsep.bench.machine import floor_rtf, machine_info, matmul_gflops
from speechsep.bench.schema import SCHEMA_VERSION, validate_results
from speechsep.registry import get_preset

__all__ = ["run_bench", "measure_model", "ratios", "ANCHOR_STREAM_SECONDS"]

#: audio streamed through an anchor's own frame-by-frame streaming (ESPnet SkiM: ~2,000 calls; measured
#: here at a real-time factor of 24 idle to 64 loaded, so 60x is the budget estimate)
ANCHOR_STREAM_SECONDS = 0.25

def _key(x: float) -> str:
    return f"{x:g}"


def _paper_columns(paper: dict[str, Any]) -> dict[str, float]:
    return {k: paper[k] for k in ("params_m", "macs_g") if k in paper}


class _Budget:
    """Skips a measurement whose estimate exceeds the plan's per-measurement budget, or that would end
    after the run's deadline (a ``time.perf_counter()`` value), recording why."""

    def __init__(self, plan: BenchPlan, skipped: list[dict[str, str]], deadline: float | None = None):
        self.plan, self.skipped, self.deadline = plan, skipped, deadline

    def allows(self, what: str, estimate_s: float, overhead_s: float = 0.0) -> bool:
        """``estimate_s``: the compute the measurement repeats; ``overhead_s``: fixed cost (a child process
        starting), counted against the deadline only."""
        if estimate_s > self.plan.budget_seconds:
            reason = f"estimated {estimate_s:.0f} s > budget {self.plan.budget_seconds:.0f} s"
        elif self.deadline is not None and time.perf_counter() + estimate_s + overhead_s > self.deadline:
            reason = f"would end past the run's {self.plan.deadline_seconds / 60:.0f} min limit"
        else:
            return True
        self.skipped.append({"what": what, "reason": reason})
        return False


def _offline(model, plan: BenchPlan, budget: _Budget, sr: int) -> tuple[dict[str, dict[str, float]], float]:
    """Median forward time per length; returns it and the last measured seconds-per-audio-second rate."""
    out: dict[str, dict[str, float]] = {}
    rate = 0.0
    for seconds in sorted(plan.offline_seconds):
        runs = plan.warmup + plan.repeats
        if out and not budget.allows(f"offline {_key(seconds)} s", rate * seconds * runs):
            continue
        t = forward_seconds(model, sr, [seconds], plan.warmup, plan.repeats)[str(seconds)]
        rate = t / seconds
        out[_key(seconds)] = {"seconds": t, "rtf": rate}
    return out, rate


def _streaming(model, plan: BenchPlan, budget: _Budget, rate: float) -> dict[str, dict[str, float]]:
    from speechsep.blocks.framing import ms_to_samples
    from speechsep.inference.streaming import stream_through_model

    out = {}
    wav = torch.randn(1, round(plan.stream_seconds * model.sample_rate), generator=torch.Generator().manual_seed(0))
    for chunk_ms in plan.chunk_ms:
        chunk = ms_to_samples(chunk_ms, model.sample_rate)
        # step() pays per-call overhead an offline pass does not: allow 4x the offline rate
        if not budget.allows(f"streaming {_key(chunk_ms)} ms", 4 * rate * plan.stream_seconds + 1):
            continue
        stream_through_model(model, wav[:, : 4 * chunk], chunk, align=False)  # warm-up: first-call allocations
        _, stats = stream_through_model(model, wav, chunk, align=False)
        out[_key(chunk_ms)] = {"rtf": stats.real_time_factor, "p50_ms": stats.percentile_ms(50),
                               "p95_ms": stats.percentile_ms(95), "max_ms": stats.max_ms,
                               "chunks": stats.num_chunks, "latency_ms": stats.latency_ms}
    return out


def measure_model(name: str, plan: BenchPlan, *, gflops: float, log: Callable[[str], None] = print,
                  deadline: float | None = None) -> dict[str, Any]:
    """Everything the plan asks of one registered preset (random weights: timing only)."""
    from speechsep.complexity import complexity
    from speechsep.registry import build

    preset = get_preset(name)
    torch.manual_seed(0)
    model = build(name).eval()
    sr = model.sample_rate
    skipped: list[dict[str, str]] = []
    budget = _Budget(plan, skipped, deadline)
    counted = complexity(model)
    entry: dict[str, Any] = {
        "name": name, "family": preset.family, "tags": list(preset.tags), "sample_rate": sr,
        "causal": bool(model.is_causal), "latency_ms": 1000.0 * model.latency / sr if model.is_causal else None,
        "params": counted.params, "macs_per_second": counted.macs_per_second,
        "paper": _paper_columns(preset.paper), "floor_rtf": floor_rtf(counted.macs_per_second, gflops),
        "skipped": skipped,
    }
    log(f"  {name}: {counted.params_m:.3f} M params, {counted.gmacs_per_second:.2f} GMAC/s")
    entry["offline"], rate = _offline(model, plan, budget, sr)
    log("  offline: " + ", ".join(f"{k} s RTF {v['rtf']:.3f}" for k, v in entry["offline"].items()))
    measured = sorted(entry["offline"], key=float)
    # distance to the floor at the longest measured length up to 4 s (long enough to amortise set-up)
    ref = max((k for k in measured if float(k) <= 4.0), key=float, default=None)
    entry["floor_distance"] = entry["offline"][ref]["rtf"] / entry["floor_rtf"] if ref else None
    entry["floor_distance_at"] = float(ref) if ref else None

    entry["memory"] = {}
    for seconds in plan.memory_seconds:
        if budget.allows(f"memory {_key(seconds)} s", rate * seconds, overhead_s=15.0):
            code = memory.model_forward_code(name, seconds, plan.threads)
            try:
                entry["memory"][_key(seconds)] = memory.peak_rss(code, timeout=4 * plan.budget_seconds + 60)
            except memory.MemoryProbeError as err:
                skipped.append({"what": f"memory {_key(seconds)} s", "reason": str(err)[:300]})

    log("  memory: " + ", ".join(f"{k} s {v / 2**30:.2f} GiB" for k, v in entry["memory"].items()))
    entry["streaming"] = {}
    if model.is_causal:
        entry["streaming"] = _streaming(model, plan, budget, rate)
        log("  streaming: " + ", ".join(f"{k} ms RTF {v['rtf']:.3f}" for k, v in entry["streaming"].items()))
    else:
        skipped.append({"what": "streaming", "reason": "not causal (offline model)"})

    # forward + backward (LSTMs: backward is the costly half) + Adam: about 5 forwards per example
    train_estimate = 5 * rate * plan.train_batch * plan.train_seconds * (plan.train_warmup + plan.train_repeats)
    entry["train_step_seconds"] = None
    if budget.allows("train step", train_estimate):
        entry["train_step_seconds"] = train_step_seconds(
            model, sr, model.num_sources, plan.train_batch, plan.train_seconds, plan.train_warmup, plan.train_repeats)
        log(f"  train step {entry['train_step_seconds']:.3f} s")
    return entry


def _measure_anchor(python: Path, spec: AnchorSpec, plan: BenchPlan, ours: dict[str, Any] | None,
                    deadline: float | None = None) -> dict[str, Any]:
    skipped: list[dict[str, str]] = []
    budget = _Budget(plan, skipped, deadline)
    entry: dict[str, Any] = {"name": spec.name, "anchor": spec.anchor, "pairs_with": spec.pairs_with,
                             "note": spec.note, "kwargs": spec.kwargs, "error": None, "skipped": skipped,
                             "offline": {}, "memory": {}, "train_step_seconds": None}
    # lengths our side measured (it already applied the budget); the anchor gets the same ones
    lengths = [float(k) for k in (ours or {}).get("offline", {})] or [min(plan.offline_seconds)]
    job = dict(lengths=lengths, warmup=plan.warmup, repeats=plan.repeats, batch=plan.train_batch,
               num_sources=get_preset(spec.pairs_with).config.num_sources, seconds=plan.train_seconds, train_warmup=plan.train_warmup,
               train_repeats=plan.train_repeats)
    measures = ["complexity", "forward"]
    if ours is None or ours.get("train_step_seconds") is not None:
        measures.append("train_step")
    if spec.streams and budget.allows("streaming", 60 * ANCHOR_STREAM_SECONDS):
        # ESPnet steps one encoder frame (1 sample for SkiM at our size) per call: a short stream is enough
        job["stream_seconds"] = ANCHOR_STREAM_SECONDS
        measures.append("streaming")
    # the anchor may be slower than ours: give it the rest of the run, at least a minute
    timeout = max(60.0, (deadline - time.perf_counter()) if deadline is not None else 8 * plan.budget_seconds + 120)
    try:
        result = run_anchor(python, spec, measures, timeout=timeout, threads=plan.threads, **job)
    except AnchorFailed as err:
        entry["error"] = str(err)
        return entry
    sr = spec.kwargs["sample_rate"]
    entry.update(params=result["params"], macs_per_second=result["macs_per_second"],
                 train_step_seconds=result.get("step_seconds"), sample_rate=sr)
    if "streaming" in result:
        entry["streaming"] = result["streaming"]
    entry["offline"] = {_key(float(k)): {"seconds": v, "rtf": v / float(k)} for k, v in result["forward_seconds"].items()}
    rate = max(v["rtf"] for v in entry["offline"].values())
    for seconds in plan.memory_seconds:
        if budget.allows(f"memory {_key(seconds)} s", rate * seconds, overhead_s=15.0):
            try:
                entry["memory"][_key(seconds)] = anchor_peak_rss(python, spec, seconds, timeout=timeout,
                                                                 threads=plan.threads)
            except AnchorFailed as err:
                skipped.append({"what": f"memory {_key(seconds)} s", "reason": str(err)[:300]})
    if ours is not None:
        entry["ratios"] = ratios(ours, entry)
    return entry


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    """ours / theirs for every number both sides measured (time: < 1 means we are faster)."""
    out: dict[str, float] = {}
    for key in ("params", "macs_per_second", "train_step_seconds"):
        if ours.get(key) and theirs.get(key):
            out[key] = ours[key] / theirs[key]
    for length, row in ours.get("offline", {}).items():
        if length in theirs.get("offline", {}):
            out[f"offline_{length}s"] = row["seconds"] / theirs["offline"][length]["seconds"]
    for length, peak in ours.get("memory", {}).items():
        if length in theirs.get("memory", {}):
            out[f"memory_{length}s"] = peak / theirs["memory"][length]
    return out


def _pit(python: Path | None, plan: BenchPlan, anchor_error: str | None) -> dict[str, Any]:
    from bench.pit_compare import ASTEROID_VERSION, time_asteroid, time_ours

    shape = dict(batch=16, sources=2, samples=32000)
    common = dict(seed=0, warmup=1 if plan.quick else 5, repeats=5 if plan.quick else 30)
    ours = time_ours(**shape, **common)
    entry: dict[str, Any] = {"shape": [16, 2, 32000], "repeats": common["repeats"],
                             "ours_ms": 1000 * statistics.median(ours["times"]), "asteroid_ms": None,
                             "ratio": None, "asteroid": ASTEROID_VERSION, "error": anchor_error}
    if python is not None:
        try:
            theirs = time_asteroid(python, **shape, **common, threads=plan.threads)
        except RuntimeError as err:
            entry["error"] = str(err)[-300:]
        else:
            entry["asteroid_ms"] = 1000 * statistics.median(theirs["times"])
            entry["ratio"] = entry["ours_ms"] / entry["asteroid_ms"]
            entry["loss_abs_diff"] = abs(ours["loss"] - theirs["loss"])
    return entry


def run_bench(plan: BenchPlan, *, command: str = "", log: Callable[[str], None] = print) -> dict[str, Any]:
    started = time.perf_counter()
    torch.set_num_threads(plan.threads)
    stamp = lambda: f"[{time.perf_counter() - started:6.0f} s]"  # noqa: E731
    results: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "command": command or " ".join(["speechsep", "bench", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": plan.quick,
        "plan": dataclasses.asdict(plan),
        "machine": machine_info(),
    }
    gflops = [matmul_gflops()]
    log(f"{stamp()} matmul throughput {gflops[0]:.1f} GFLOP/s ({plan.threads} threads)")
    deadline = started + plan.deadline_seconds
    python, anchor_error = None, None
    if plan.anchors or plan.pit:
        try:
            python = ensure_anchor_venv()
        except AnchorUnavailable as err:
            anchor_error = f"anchor venv unavailable: {err}"
            log(f"{stamp()} {anchor_error}")
    models, anchors = [], []
    skipped_models = [{"name": n, "reason": r} for n, r in plan.skipped_models]
    for name in plan.models:
        if time.perf_counter() > deadline:
            skipped_models.append({"name": name, "reason": f"the run's {plan.deadline_seconds / 60:.0f} min limit "
                                                           "was reached before it"})
            continue
        log(f"{stamp()} {name}")
        models.append(measure_model(name, plan, gflops=gflops[0], log=log, deadline=deadline))
        # each anchor right after its pair, so a load change on a shared machine hits both sides alike
        for spec in anchor_specs([name]) if plan.anchors else []:
            log(f"{stamp()} anchor {spec.name}")
            if python is None:
                anchors.append({"name": spec.name, "anchor": spec.anchor, "pairs_with": spec.pairs_with,
                                "note": spec.note, "kwargs": spec.kwargs, "error": anchor_error, "skipped": [],
                                "offline": {}, "memory": {}, "train_step_seconds": None})
            else:
                anchors.append(_measure_anchor(python, spec, plan, models[-1], deadline))
    results["models"] = models
    results["skipped_models"] = skipped_models
    results["anchors"] = anchors
    if plan.pit:
        log(f"{stamp()} PIT + SI-SDR, ours vs asteroid")
        results["pit"] = _pit(python, plan, anchor_error)

    gflops.append(matmul_gflops())
    pooled = statistics.median(gflops)
    results["floor"] = {"matmul_gflops": gflops, "matmul_gflops_median": pooled,
                        "definition": "floor RTF = 2 x MACs per second of audio / matmul FLOP/s"}
    # recompute the floor with the pooled throughput (start and end of the run)
    for row in models + [a for a in anchors if a.get("macs_per_second")]:
        row["floor_rtf"] = floor_rtf(row["macs_per_second"], pooled)
        ref = row.get("offline", {}).get(_key(row.get("floor_distance_at") or 4.0))
        if ref is None and row.get("offline"):
            ref = row["offline"][max(row["offline"], key=float)]
        row["floor_distance"] = ref["rtf"] / row["floor_rtf"] if ref else None
    results["duration_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_end"] = machine_info()["load_average"]
    validate_results(results)
    log(f"{stamp()} done")
    return results
