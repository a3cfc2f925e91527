"""A fixed results dict in the layout of bench/results.json, for the schema, report and plot tests."""

import copy

import pytest

from speechsep.bench.schema import SCHEMA_VERSION

_RESULTS = {
    "schema": SCHEMA_VERSION,
    "command": "speechsep bench --quick --json bench/results.json",
    "date": "2026-11-25T11:00:00+00:00",
    "quick": True,
    "plan": {"threads": 2, "train_batch": 2, "train_seconds": 1.0},
    "machine": {"cpu": "Test CPU 9000", "cores": 2, "threads": 2, "torch": "2.13.0+cpu", "load_average": [4.0, 3.0, 2.0]},
    "floor": {"matmul_gflops": [50.0, 70.0], "matmul_gflops_median": 60.0},
    "models": [
        {"name": "tfacm-small", "family": "tfacm", "tags": ["tfacm-table1"], "sample_rate": 8000, "causal": True,
         "latency_ms": 8.0, "params": 469000, "macs_per_second": 17.2e9, "paper": {"params_m": 0.5, "macs_g": 19.4},
         "offline": {"1": {"seconds": 0.9, "rtf": 0.9}, "4": {"seconds": 3.2, "rtf": 0.8}},
         "memory": {"4": 600 * 2**20},
         "streaming": {"16": {"rtf": 0.7, "p50_ms": 10.5, "p95_ms": 12.25, "max_ms": 30.0, "chunks": 62,
                              "latency_ms": 8.0}},
         "train_step_seconds": 2.5, "floor_rtf": 0.573, "floor_distance": 1.396,
         "skipped": [{"what": "memory 30 s", "reason": "estimated 999 s > budget 20 s"}]},
        {"name": "dprnn-causal", "family": "dprnn-causal", "tags": ["tfacm-table1"], "sample_rate": 8000,
         "causal": True, "latency_ms": 0.5, "params": 1359000, "macs_per_second": 11.06e9,
         "paper": {"params_m": 1.3, "macs_g": 11.2},
         "offline": {"1": {"seconds": 0.3, "rtf": 0.3}, "4": {"seconds": 1.1, "rtf": 0.275}},
         "memory": {"4": 500 * 2**20}, "streaming": {}, "train_step_seconds": 1.2, "floor_rtf": 0.369,
         "floor_distance": 0.745, "skipped": [{"what": "streaming 16 ms", "reason": "estimated 50 s > budget 20 s"}]},
        {"name": "iter-freq-simo1-siso2-it1", "family": "iterative", "tags": ["iterative-table1"],
         "sample_rate": 16000, "causal": False, "latency_ms": None, "params": 1367000, "macs_per_second": 0.64e9,
         "paper": {}, "offline": {"1": {"seconds": 0.05, "rtf": 0.05}}, "memory": {}, "streaming": {},
         "train_step_seconds": None, "floor_rtf": 0.0213, "floor_distance": 2.35,
         "skipped": [{"what": "streaming", "reason": "not causal (offline model)"},
                     {"what": "train step", "reason": "estimated 30 s > budget 20 s"}]},
    ],
    "skipped_models": [{"name": "tfgridnet-causal", "reason": "--quick leaves out the slowest presets"}],
    "anchors": [
        {"name": "asteroid DPRNNTasNet (dprnn-causal size)", "anchor": "asteroid-dprnn",
         "pairs_with": "dprnn-causal", "note": "intra-chunk LSTM stays bidirectional", "kwargs": {}, "error": None,
         "params": 1400000, "macs_per_second": 11.5e9, "sample_rate": 8000,
         "offline": {"1": {"seconds": 0.6, "rtf": 0.6}, "4": {"seconds": 2.2, "rtf": 0.55}},
         "memory": {"4": 1000 * 2**20}, "train_step_seconds": 2.4, "skipped": [], "floor_rtf": 0.38,
         "streaming": {"rtf": 24.0, "p50_ms": 2.5, "p95_ms": 4.0, "max_ms": 9.0, "chunks": 2000, "chunk_ms": 0.125,
                       "seconds": 0.25},
         "floor_distance": 1.4,
         "ratios": {"params": 0.971, "macs_per_second": 0.962, "offline_1s": 0.5, "offline_4s": 0.5,
                    "memory_4s": 0.5, "train_step_seconds": 0.5}},
        {"name": "ESPnet SkiM (skim size)", "anchor": "espnet-skim", "pairs_with": "skim", "note": "",
         "kwargs": {}, "error": "anchor venv unavailable: pip install failed (offline)", "offline": {},
         "memory": {}, "train_step_seconds": None, "skipped": []},
    ],
    "pit": {"shape": [16, 2, 32000], "repeats": 5, "ours_ms": 120.0, "asteroid_ms": 480.0, "ratio": 0.25,
            "asteroid": "0.7.0", "error": None},
    "duration_seconds": 300.0,
}


@pytest.fixture
def results():
    return copy.deepcopy(_RESULTS)
