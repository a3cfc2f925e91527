"""Dataset evaluation: per-utterance metrics, a summary with 95 % intervals, and throughput.

Metrics are :func:`speechsep.metrics.evaluate_example`'s: SI-SDR(i) after PIT (the TFACM paper's
SI-SNRi, Sec. IV), bss_eval SDR(i) as fast_bss_eval (the TFACM authors' tool) defines it, and PESQ and STOI when
those packages import. Every utterance goes through
:func:`speechsep.inference.segmenting.separate_long`, so inputs longer than the segment length are
separated in aligned segments instead of in one call.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from speechsep.inference.segmenting import (
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_SEGMENT_SECONDS,
    model_device,
    separate_long,
)
from speechsep.models.base import SeparationModel
from speechsep.utils import atomic_path

__all__ = ["EvalResult", "evaluate", "write_results", "format_summary", "summary_path", "evaluate_spec"]

#: Column order of the CSV; PESQ and STOI appear only when computed.
METRICS = ("si_sdr", "si_sdri", "sdr", "sdri", "pesq", "stoi")


@dataclasses.dataclass
class EvalResult:
    #: one dict per utterance: id, seconds, and every metric computed
    rows: list[dict[str, Any]]
    #: metric -> speechsep.metrics.summarize() of its column (mean, median, ci95_low, ci95_high, n)
    summary: dict[str, dict[str, float]]
    audio_seconds: float
    #: wall time in the model (resampling and segmentation included), and in everything
    separation_seconds: float
    total_seconds: float

    @property
    def utterances(self) -> int:
        return len(self.rows)

    @property
    def utterances_per_second(self) -> float:
        """Throughput of separation alone: what a deployment would see."""
        return self.utterances / self.separation_seconds if self.separation_seconds > 0 else math.inf

    @property
    def real_time_factor(self) -> float:
        """Separation time over audio time (below 1: faster than real time)."""
        return self.separation_seconds / self.audio_seconds if self.audio_seconds > 0 else math.nan

    def throughput(self) -> dict[str, float]:
        return {
            "utterances": self.utterances,
            "audio_seconds": self.audio_seconds,
            "separation_seconds": self.separation_seconds,
            "total_seconds": self.total_seconds,
            "utterances_per_second": self.utterances_per_second,
            "utterances_per_second_with_metrics": self.utterances / self.total_seconds if self.total_seconds else math.inf,
            "real_time_factor": self.real_time_factor,
        }


def _utterance_id(dataset: Any, index: int) -> str:
    items = getattr(dataset, "items", None)
    if items is not None and hasattr(items[index], "id"):
        return str(items[index].id)
    return str(index)


def _metrics_worker_init() -> None:
    # Each worker scores one utterance at a time: one thread each, so N workers use N cores.
    torch.set_num_threads(1)


def _score(est, ref, mix, sample_rate: int, pesq_stoi: bool) -> dict[str, float]:
    from speechsep.metrics import evaluate_example

    return evaluate_example(est, ref, mix, sample_rate, pesq_stoi=pesq_stoi)


def evaluate(
    model: SeparationModel,
    dataset: Sequence[tuple[Any, Any]],
    *,
    limit: int | None = None,
    pesq_stoi: bool = True,
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    batch_segments: int = 1,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "fp32",
) -> EvalResult:
    """Separate and score the first ``limit`` items of ``dataset`` (``(mixture (T,), sources (C, T))``
    at the model's sample rate). ``progress(done, total)`` is called after each utterance is scored.

    With ``jobs > 1`` the metrics (SDR, PESQ, STOI: CPU work of a few tenths of a second an utterance)
    run in that many worker processes while this process separates the next utterances, so a GPU
    is not left waiting on them; rows keep the dataset's order either way.
    """
    from speechsep.metrics import summarize

    total = len(dataset) if limit is None else min(limit, len(dataset))
    if total <= 0:
        raise ValueError("nothing to evaluate: the dataset is empty or --limit is 0")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    model = model.eval()
    audio_seconds = separation_seconds = 0.0
    start = time.perf_counter()
    pool = None
    if jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn, not fork: a forked copy of a process running torch threads can deadlock.
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_metrics_worker_init)
    pending: list[tuple[str, float, Any]] = []  # (id, seconds, metrics or a future of them), in order
    done = 0
    try:
        for index in range(total):
            mixture, sources = dataset[index]
            mixture = torch.as_tensor(mixture, dtype=torch.float32)
            sources = torch.as_tensor(sources, dtype=torch.float32)
            if mixture.dim() != 1 or sources.dim() != 2 or sources.shape[-1] != mixture.shape[-1]:
                raise ValueError(
                    f"dataset item {index} must be (mixture (time,), sources (sources, time)); "
                    f"got {tuple(mixture.shape)} and {tuple(sources.shape)}"
                )
            if sources.shape[0] != model.num_sources:
                raise ValueError(
                    f"dataset item {index} has {sources.shape[0]} sources but the model separates {model.num_sources}"
                )
            t0 = time.perf_counter()
            est = separate_long(
                model, mixture[None], segment_seconds=segment_seconds, overlap_seconds=overlap_seconds,
                batch_segments=batch_segments, precision=precision,
            )[0]  # (C, T) on the CPU: the copy back has waited for the GPU, so the timing is honest
            separation_seconds += time.perf_counter() - t0
            seconds = mixture.shape[-1] / model.sample_rate
            audio_seconds += seconds
            args = (est.numpy(), sources.numpy(), mixture.numpy(), model.sample_rate, pesq_stoi)
            scored = pool.submit(_score, *args) if pool is not None else _score(*args)
            pending.append((_utterance_id(dataset, index), seconds, scored))
            if pool is None:
                done += 1
                if progress is not None:
                    progress(done, total)
            else:
                # Keep at most 2 * jobs utterances in flight, so memory stays bounded on long sets.
                before = done
                while done < len(pending) and (len(pending) - done > 2 * jobs or pending[done][2].done()):
                    pending[done][2].result()  # waits if still running; raises a worker's error here
                    done += 1
                if progress is not None and done > before:
                    progress(done, total)
        rows = [{"id": uid, "seconds": sec, **(m.result() if pool is not None else m)} for uid, sec, m in pending]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if progress is not None and done < total:
        progress(total, total)  # the last workers finished during the collection above
    total_seconds = time.perf_counter() - start
    columns = [m for m in METRICS if m in rows[0]]
    summary = {m: summarize([r[m] for r in rows]) for m in columns}
    return EvalResult(rows, summary, audio_seconds, separation_seconds, total_seconds)


def summary_path(csv_path: str | os.PathLike) -> Path:
    """The JSON summary written beside the CSV: ``results.csv`` -> ``results.json``."""
    csv_path = Path(csv_path)
    if csv_path.suffix.lower() == ".json":
        raise ValueError(f"{csv_path}: the per-utterance table is a CSV; its summary goes beside it as .json")
    return csv_path.with_suffix(".json")


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_results(result: EvalResult, csv_path: str | os.PathLike, *, meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write the per-utterance CSV and the JSON summary beside it, each atomically."""
    csv_path = Path(csv_path)
    json_path = summary_path(csv_path)
    columns = ["id", "seconds", *(m for m in METRICS if m in result.summary)]
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    payload = {**(meta or {}), "summary": result.summary, "throughput": result.throughput(), "csv": csv_path.name}
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(_json_safe(payload), indent=2) + "\n")
    return csv_path, json_path


def format_summary(result: EvalResult) -> str:
    """A plain-text table: metric, mean, median, 95 % CI of the mean, n; then throughput."""
    lines = [f"{'metric':<8} {'mean':>8} {'median':>8} {'95% CI':>19} {'n':>6}"]
    for metric, s in result.summary.items():
        ci = f"[{s['ci95_low']:.2f}, {s['ci95_high']:.2f}]"
        lines.append(f"{metric:<8} {s['mean']:8.2f} {s['median']:8.2f} {ci:>19} {s['n']:6d}")
    lines.append(
        f"{result.utterances} utterances, {result.audio_seconds:.1f} s of audio: "
        f"{result.utterances_per_second:.2f} utterances/s separating "
        f"(real-time factor {result.real_time_factor:.3f}), {result.total_seconds:.1f} s in all with metrics"
    )
    return "\n".join(lines)


def evaluate_spec(
    model_ref: str | os.PathLike,
    data_spec: str,
    out_csv: str | os.PathLike,
    *,
    device: str = "auto",
    **options: Any,
) -> tuple[EvalResult, Path, Path]:
    """Load ``model_ref`` (checkpoint, run folder or bundled name), open ``data_spec``
    (:func:`speechsep.data.open_dataset` grammar) at the model's rate, :func:`evaluate` it with
    ``options``, and write the CSV and its JSON summary."""
    from speechsep.data import open_dataset
    from speechsep.inference.pretrained import resolve

    summary_path(out_csv)  # a bad --out fails before the slow part
    model = resolve(model_ref, device=device)
    dataset = open_dataset(data_spec, sample_rate=model.sample_rate)
    result = evaluate(model, dataset, **options)
    meta = {
        "model": str(model_ref),
        "family": model.family,
        "sample_rate": model.sample_rate,
        "data": data_spec,
        "device": str(model_device(model)),
        **{k: v for k, v in options.items() if k != "progress"},
    }
    csv_path, json_path = write_results(result, out_csv, meta=meta)
    return result, csv_path, json_path
