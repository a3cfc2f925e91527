"""The iterative paper's experiment grid: train every row of Tables 1-4, evaluate, write the tables.

Layout of ``OUT``::

    OUT/grid.yaml                  the settings of the grid (scale, data, training budget)
    OUT/runs/<preset>/             one training run per trained model (speechsep.train's run folder)
    OUT/runs/<preset>/done.json    written when its training finished (a rerun skips the training)
    OUT/runs/<preset>/eval/itK.json   test SI-SDR with K inference iterations (a rerun skips it)
    OUT/runs/<preset>/claim.lock   while a process trains or evaluates the row (host and pid)
    OUT/tables/tableN.md           each table in the paper's layout, ours beside the paper's numbers
    OUT/results.json               every number the tables show

Rows share trained models where the paper does: Table 4's time/freq columns are Table 1's 1 SIMO +
2 SISO models (1 iteration, and 2 and 3 iterations with output detach), evaluated with 1-4
inference iterations; its "freq + oracle bias" column trains three more models. Every step is
resumable: an interrupted grid rerun with the same command continues where it stopped (inside a
row, the training engine resumes from ``last.pt``). Several processes may run the same command on
one ``OUT`` at once: each claims a row before working on it and skips rows claimed by a live process,
so N processes share the grid; the last one to finish writes the complete tables.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechsep.config import apply_overrides, save_yaml, to_dict
from speechsep.models.iterative_presets import (
    DOMAINS,
    SCALES,
    TABLE4_PAPER,
    TABLE4_TRAIN_ITERATIONS,
    TABLES,
    TableRow,
    preset_name,
    row_objective,
    table4_row,
)
from speechsep.utils import atomic_path

__all__ = [
    "GridSettings",
    "Job",
    "plan",
    "run_grid",
    "data_splits",
    "render_tables",
    "SCALE_TRAINING",
    "TABLE_NUMBERS",
]

log = logging.getLogger(__name__)

TABLE_NUMBERS = (1, 2, 3, 4)
INFERENCE_ITERATIONS = (1, 2, 3, 4)
#: a row's claim file: which process (host and pid) is training or evaluating it
_CLAIM = "claim.lock"

#: training budget per scale (TrainConfig fields). Paper: Sec. 3.3 (100 epochs, 4 s utterances; the
#: batch size is not given). Tiny: a few minutes a row on a 2-core CPU.
SCALE_TRAINING: dict[str, dict[str, Any]] = {
    "paper": {"max_epochs": 100, "steps_per_epoch": None, "data.batch_size": 4, "data.segment_seconds": 4.0},
    "tiny": {"max_epochs": 5, "steps_per_epoch": 40, "data.batch_size": 4, "data.segment_seconds": 2.0,
             "data.valid_max_examples": 20, "data.valid_segment_seconds": 4.0},
}

#: the split names each dataset kind uses for train / valid / test
_SPLITS = {
    "wham": ("tr", "cv", "tt"),
    "whamr": ("tr", "cv", "tt"),
    "librimix": ("train-100", "dev", "test"),
}
_DEFAULT_SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class GridSettings:
    """What to run. ``data`` is one dataset spec whose train, valid and test splits are used (see
    :func:`data_splits`): ``demo:/corpus``, ``demo:/corpus:test:reverb``, ``whamr:/data/whamr:{split}:8k``."""

    scale: str = "tiny"
    tables: tuple[int, ...] = TABLE_NUMBERS
    data: str = ""
    device: str = "auto"
    #: TrainConfig overrides (dotted keys) applied after the scale's budget
    train_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: model config overrides applied to every row (e.g. to shrink a smoke test further)
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: evaluate on at most this many test mixtures (None: all)
    eval_limit: int | None = None
    seed: int = 0
    progress: bool = True
    #: torch intra-op threads while the grid runs (None: leave as is); 1 suits narrow models on a shared CPU
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}; got {self.scale!r}")
        bad = [t for t in self.tables if t not in TABLE_NUMBERS]
        if bad or not self.tables:
            raise ValueError(f"tables must be among {TABLE_NUMBERS}; got {list(self.tables)}")


@dataclasses.dataclass(frozen=True)
class Job:
    """One model to train, and the inference iterations it is evaluated with."""

    preset: str
    row: TableRow
    domain: str
    eval_iterations: tuple[int, ...]


def plan(tables: tuple[int, ...], scale: str) -> list[Job]:
    """The distinct models the requested tables need, in table order."""
    wanted: dict[str, tuple[TableRow, str, set[int]]] = {}

    def need(row: TableRow, domain: str, iterations: tuple[int, ...]) -> None:
        name = preset_name(row, domain, scale)
        _, _, its = wanted.setdefault(name, (row, domain, set()))
        its.update(iterations)

    for table in sorted(set(tables)):
        if table == 4:
            for n in TABLE4_TRAIN_ITERATIONS:
                for domain in DOMAINS:
                    need(table4_row(n, oracle_bias=False), domain, INFERENCE_ITERATIONS)
                need(table4_row(n, oracle_bias=True), "freq", INFERENCE_ITERATIONS)
            continue
        for row in TABLES[table]:
            for domain in row.domains:
                need(row, domain, (row.iterations,))
    return [Job(name, row, domain, tuple(sorted(its))) for name, (row, domain, its) in wanted.items()]


def data_splits(spec: str) -> tuple[str, str, str]:
    """The train, valid and test specs of one dataset spec (the grammar of :mod:`speechsep.data.spec`).

    ``demo:/c`` -> (``demo:/c:train``, ``demo:/c:valid``, ``demo:/c:test``); a spec naming one of its
    kind's splits has that split replaced (``whamr:/w:tt:8k`` -> ``whamr:/w:tr:8k``, ...); ``{split}``
    marks the place anywhere (``folder:/d/{split}/mix:/d/{split}/s1,/d/{split}/s2``).
    """
    if not spec:
        raise ValueError("no data given: pass a dataset spec such as demo:CORPUS")
    kind = spec.split(":", 1)[0].lower()
    names = _SPLITS.get(kind, _DEFAULT_SPLITS)
    if "{split}" in spec:
        return tuple(spec.replace("{split}", name) for name in names)  # type: ignore[return-value]
    parts = spec.split(":")
    if len(parts) == 2:
        return tuple(f"{spec}:{name}" for name in names)  # type: ignore[return-value]
    # KIND:ROOT:SPLIT[:OPTIONS]: the split is the third field; LibriMix has two training sets, and the
    # one named is kept for training
    if kind == "librimix" and parts[2] in ("train", "train-100", "train-360"):
        names = (parts[2], *names[1:])
    if parts[2] not in names:
        raise ValueError(
            f"data spec {spec!r}: the third field {parts[2]!r} is not a {kind} split ({', '.join(names)}); "
            f"give KIND:ROOT, KIND:ROOT:SPLIT[:OPTIONS] or mark the split with {{split}}"
        )
    return tuple(":".join([*parts[:2], name, *parts[3:]]) for name in names)  # type: ignore[return-value]


def _train_config(job: Job, settings: GridSettings, train_spec: str, valid_spec: str):
    from speechsep.train import TrainConfig

    config = TrainConfig()
    config = apply_overrides(config, {
        "model.name": job.preset,
        "model.overrides": dict(settings.model_overrides),
        "data.train": train_spec,
        "data.valid": valid_spec,
        "seed": settings.seed,
        "description": f"iterative grid ({settings.scale}): {job.preset}",
        # the row's training objective (layer-wise, oracle bias), stated in the run's config
        **{f"loss.{k}": v for k, v in row_objective(job.row).items()},
        **SCALE_TRAINING[settings.scale],
    })
    return apply_overrides(config, settings.train_overrides)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class _WithIterations(nn.Module):
    """The model run with a fixed number of inference iterations, as a plain ``mix -> sources`` module."""

    def __init__(self, model: nn.Module, iterations: int):
        super().__init__()
        self.model = model
        self.iterations = iterations

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        return self.model(mixture, iterations=self.iterations)


Splits = Mapping[str, Any]  # "train" / "valid" / "test" -> spec string or Dataset


def train_run(job: Job, settings: GridSettings, run_dir: Path, splits: Splits) -> dict[str, Any]:
    """Train one row through the training engine (resuming a partial run); the grid's only training call."""
    from speechsep.train import train

    train_spec = splits["train"] if isinstance(splits["train"], str) else ""
    valid_spec = splits["valid"] if isinstance(splits["valid"], str) else ""
    config = _train_config(job, settings, train_spec, valid_spec)
    result = train(
        config,
        run_dir,
        device=settings.device,
        train_data=None if train_spec else splits["train"],
        valid_data=None if valid_spec else splits["valid"],
        progress=settings.progress,
    )
    return {"epoch": result.epoch, "step": result.step, "best_valid_si_sdr": result.best_si_sdr,
            "stopped": result.stopped}


def evaluate_run(run_dir: Path, iterations: int, settings: GridSettings, test: Any) -> dict[str, Any]:
    """Test-set SI-SDR and SI-SDRi (dB, PIT-aligned, whole utterances) with ``iterations`` iterations."""
    from speechsep.checkpoint import load_model
    from speechsep.inference.pretrained import resolve_device
    from speechsep.train.data import CroppedExamples, EpochSampler, make_loader, open_examples
    from speechsep.train.distributed import DistInfo
    from speechsep.train.engine import evaluate_si_sdr

    checkpoint = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    device = resolve_device(settings.device)
    model = load_model(checkpoint).to(device)
    base = open_examples(test, sample_rate=model.sample_rate, train=False, seed=settings.seed)
    if settings.eval_limit is not None:
        base = torch.utils.data.Subset(base, range(min(settings.eval_limit, len(base))))
    examples = CroppedExamples(base, None, settings.seed)
    sampler = EpochSampler(len(examples), seed=settings.seed, epoch=0, shuffle=False, even=False)
    loader = make_loader(examples, sampler, batch_size=1, num_workers=0, drop_last=False)
    metrics = evaluate_si_sdr(_WithIterations(model, iterations), loader, device, DistInfo())
    return {"iterations": iterations, "checkpoint": checkpoint.name, **metrics}


def run_grid(
    settings: GridSettings,
    out: str | os.PathLike,
    *,
    splits: Splits | None = None,
    trainer: Callable[[Job, GridSettings, Path, Splits], dict[str, Any]] = train_run,
) -> dict[str, Any]:
    """Train and evaluate every model the tables need, then write the tables. Resumable.

    ``splits`` replaces ``settings.data`` with ``{"train": ..., "valid": ..., "test": ...}`` (spec
    strings or Datasets). Returns the results (also in ``OUT/results.json``); rows that failed are
    listed under ``"failed"`` and the others still run.
    """
    out = Path(out)
    if splits is None:
        splits = dict(zip(("train", "valid", "test"), data_splits(settings.data), strict=True))
    save_yaml(settings, out / "grid.yaml")
    threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        return _run_jobs(settings, out, splits, trainer)
    finally:
        torch.set_num_threads(threads)


def _row_result(run_dir: Path, job: Job) -> dict[str, Any] | None:
    """A row's training summary and scores, read from its run folder; ``None`` until all of them exist."""
    done = run_dir / "done.json"
    evals = {str(k): run_dir / "eval" / f"it{k}.json" for k in job.eval_iterations}
    if not done.exists() or not all(p.exists() for p in evals.values()):
        return None
    return {"train": _read_json(done), "eval": {k: _read_json(p) for k, p in evals.items()}}


def _claim_is_live(lock: Path) -> bool:
    try:
        host, pid = lock.read_text().split()
    except OSError:  # released meanwhile
        return False
    except ValueError:  # just created and not written yet, unless its writer died before writing
        try:
            return time.time() - lock.stat().st_mtime < 60.0
        except OSError:
            return False
    if host != socket.gethostname():
        return True  # another machine's process: it cannot be checked from here, so it is respected
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(run_dir: Path) -> bool:
    """Take a row for this process. Several grid processes on one ``OUT`` share out its rows (the tiny
    grid is latency-bound and single-threaded, so N processes on N cores finish it about N times sooner);
    a claim left by a process that is gone (killed, crashed) is taken over."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / _CLAIM
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _claim_is_live(lock):
                return False
            log.warning("%s: taking over the claim of a process that is gone", run_dir.name)
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{socket.gethostname()} {os.getpid()}\n")
        return True
    return False


def _run_jobs(settings: GridSettings, out: Path, splits: Splits,
              trainer: Callable[[Job, GridSettings, Path, Splits], dict[str, Any]]) -> dict[str, Any]:
    jobs = plan(settings.tables, settings.scale)
    results: dict[str, Any] = {"scale": settings.scale, "rows": {}, "failed": {}, "running_elsewhere": []}
    for index, job in enumerate(jobs, start=1):
        run_dir = out / "runs" / job.preset
        if _row_result(run_dir, job) is None:
            if not _claim(run_dir):
                log.info("[%d/%d] %s: another process is running it", index, len(jobs), job.preset)
                results["running_elsewhere"].append(job.preset)
                continue
            log.info("[%d/%d] %s", index, len(jobs), job.preset)
            try:
                if not (run_dir / "done.json").exists():
                    _write_json(run_dir / "done.json", trainer(job, settings, run_dir, splits))
                for k in job.eval_iterations:
                    path = run_dir / "eval" / f"it{k}.json"
                    if not path.exists():
                        _write_json(path, evaluate_run(run_dir, k, settings, splits["test"]))
            except Exception as err:  # one broken row must not cost the rest of the grid
                log.error("%s failed: %s", job.preset, err)
                (run_dir / "error.txt").write_text(traceback.format_exc())
                results["failed"][job.preset] = f"{type(err).__name__}: {err}"
            finally:
                (run_dir / _CLAIM).unlink(missing_ok=True)
        # every finished row on disk, this process's or another's; tables after every row, so a long grid
        # shows its progress and the last process to finish writes the complete tables
        results["rows"] = {j.preset: r for j in jobs if (r := _row_result(out / "runs" / j.preset, j)) is not None}
        results["running_elsewhere"] = [p for p in results["running_elsewhere"] if p not in results["rows"]]
        _write_outputs(out, settings, results)
    return results


def _write_outputs(out: Path, settings: GridSettings, results: dict[str, Any]) -> None:
    for number, text in render_tables(settings.tables, settings.scale, results["rows"]).items():
        with atomic_path(out / "tables" / f"table{number}.md") as tmp:
            tmp.write_text(text)
    _write_json(out / "results.json", {**results, "settings": to_dict(settings)})


# -- tables ---------------------------------------------------------------------------------------

def _ours(rows: Mapping[str, Any], preset: str, iterations: int) -> str:
    entry = rows.get(preset, {}).get("eval", {})
    # keyed by the iteration count as a string, as results.json stores it
    score = entry.get(str(iterations))
    if score is None or not math.isfinite(score.get("si_sdr", math.nan)):
        return "…"
    return f"{score['si_sdr']:.1f}"


def _paper(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def _domain_cells(row: TableRow, scale: str, rows: Mapping[str, Any], domains: tuple[str, ...]) -> list[str]:
    cells = []
    for domain in domains:
        if row.paper(domain) is None:
            cells += ["–", "–"]
        else:
            cells += [_ours(rows, preset_name(row, domain, scale), row.iterations), _paper(row.paper(domain))]
    return cells


def render_tables(tables: tuple[int, ...], scale: str, rows: Mapping[str, Any]) -> dict[int, str]:
    """Markdown for each requested table: the paper's columns, then per domain "ours" and "paper"
    (SI-SDR, dB). "…" marks a result not computed yet."""
    note = (f"\nOurs: {scale} scale, test-set SI-SDR (dB). Paper: Luo, Han, Mesgarani, on their noisy "
            "reverberant 16 kHz set.\n")
    texts: dict[int, str] = {}
    if 1 in tables:
        body = []
        for r in TABLES[1]:
            detach = "–" if r.detach is None else ("✓" if r.detach else "✗")
            body.append([str(r.simo), str(r.siso), str(r.iterations), str(r.depth), detach,
                         *_domain_cells(r, scale, rows, DOMAINS)])
        texts[1] = "Table 1: Experiment results for different configurations in the iterative separation pipeline.\n\n" \
            + _markdown(["SIMO layers", "SISO layers", "Iteration", "Effective network depth", "Output detach",
                         "Time (ours)", "Time (paper)", "Freq (ours)", "Freq (paper)"], body) + note
    if 2 in tables:
        body = [[str(r.simo), str(r.siso), str(r.iterations), *_domain_cells(r, scale, rows, DOMAINS)]
                for r in TABLES[2]]
        texts[2] = "Table 2: Effect of layer-wise training objective.\n\n" + _markdown(
            ["SIMO layers", "SISO layers", "Iteration", "Time (ours)", "Time (paper)", "Freq (ours)",
             "Freq (paper)"], body) + note
    if 3 in tables:
        body = [[str(r.simo), str(r.siso), str(r.iterations), *_domain_cells(r, scale, rows, ("freq",))]
                for r in TABLES[3]]
        texts[3] = "Table 3: Effect of iteration-specific SIMO modules with STFT/ISTFT.\n\n" + _markdown(
            ["SIMO layers", "SISO layers", "Iteration", "Freq (ours)", "Freq (paper)"], body) + note
    if 4 in tables:
        body = []
        for n in TABLE4_TRAIN_ITERATIONS:
            plain, oracle = table4_row(n, False), table4_row(n, True)
            presets = (preset_name(plain, "time", scale), preset_name(plain, "freq", scale),
                       preset_name(oracle, "freq", scale))
            for k in INFERENCE_ITERATIONS:
                cells = [str(n) if k == 1 else "", str(k)]
                for column, preset in enumerate(presets):
                    cells += [_ours(rows, preset, k), _paper(TABLE4_PAPER[n][k][column])]
                body.append(cells)
        texts[4] = "Table 4: Effect of different number of inference iterations and oracle bias information.\n\n" \
            + _markdown(["Training iterations", "Inference iterations", "Time (ours)", "Time (paper)",
                         "Freq (ours)", "Freq (paper)", "Freq + oracle bias (ours)",
                         "Freq + oracle bias (paper)"], body) + note
    return texts
