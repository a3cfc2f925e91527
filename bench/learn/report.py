"""``results.json``, ``results.md`` and ``curves.png`` of ``speechsep bench learn``, built from the
candidates' records (``OUT/NAME/bench_state.json``), so a run that is still going or was killed
renders as far as it got (``speechsep bench learn --render OUT``)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from bench.learn.state import STATE_FILE, TRAIN_SET, finished, load_progress
from speechsep.utils import atomic_path

__all__ = ["summarize", "recorded_names", "collect", "render_markdown", "plot_curves", "write_outputs", "render"]

SCHEMA = "speechsep-bench-learn/1"
_COMPLETE = ("done", "stopped")


def summarize(name: str, run_dir: Path, budget_minutes: float) -> dict[str, Any]:
    """One candidate's row: the curve and what the table shows."""
    progress = load_progress(run_dir / STATE_FILE)
    if progress is None:
        return {"name": name, "status": "not started", "curve": []}
    meta, points = progress.meta, progress.points
    row: dict[str, Any] = {
        "name": name, **{k: meta.get(k) for k in ("recipe", "overrides", "note", "model", "params", "batch_size",
                                                  "segment_seconds", "valid", "jobs")},
        "status": "not started" if not points else "running", "error": progress.error, "stopped": progress.stopped,
        "curve": points,
    }
    if points:
        # the first point at the budget (a later, larger budget may have added more)
        last = next((p for p in points if p["train_minutes"] >= budget_minutes - 1e-9), points[-1])
        sets = [k for k in last["si_snri"] if k != TRAIN_SET]
        cpu_hours = last["cpu_minutes"] / 60.0
        db = {k: last["si_snri"][k] for k in sets}
        row.update(
            train_minutes=last["train_minutes"], cpu_minutes=last["cpu_minutes"], step=last["step"],
            examples=last["examples"], db_at_budget=db,
            db_per_cpu_hour=round(db[sets[0]] / cpu_hours, 4) if sets and cpu_hours > 0 else None,
            db_per_cpu_hour_by_set={k: round(v / cpu_hours, 4) for k, v in db.items()} if cpu_hours > 0 else {},
            train_valid_gap=(round(last["si_snri"][TRAIN_SET] - db[sets[0]], 4)
                             if sets and TRAIN_SET in last["si_snri"] else None),
            median_step_ms=round(statistics.median(s[0] for s in progress.steps[:last["step"]]), 2),
            examples_per_second=round(last["examples"] / (last["train_minutes"] * 60.0), 3)
            if last["train_minutes"] > 0 else None,
            estimated_steps=last["estimated_steps"], overhead_minutes=last["overhead_minutes"],
            eval_minutes=round(progress.eval_s / 60.0, 3),
        )
        if finished(progress, budget_minutes):
            below = last["train_minutes"] < budget_minutes - 1e-9
            row["status"] = "stopped" if progress.stopped and below else "done"
    if progress.error:
        row["status"] = "error"
    return row


def _sort_key(row: dict[str, Any], sets: list[str]) -> tuple:
    rank = 0 if row["status"] in _COMPLETE else 1 if row["status"] == "running" else 2
    db = row.get("db_at_budget") or {}
    return (rank, *(-(db.get(k) if db.get(k) is not None else -math.inf) for k in sets[:2]))


def valid_set_names(rows: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for point in row["curve"][-1:]:
            names += [k for k in point["si_snri"] if k != TRAIN_SET and k not in names]
    return names


def recorded_names(out_dir: Path) -> list[str]:
    """The candidates with a record under ``out_dir`` (``NAME/bench_state.json``), by name."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(d.name for d in out_dir.iterdir() if (d / STATE_FILE).is_file())


def collect(out_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Every candidate of the run and every other candidate with a record under ``out_dir`` (one run
    with ``--only``, concurrent children, an earlier candidates file), best first: sorted by the
    first validation set's SI-SNRi at the budget, then the second's (clean, then noisy by default);
    unfinished candidates after the rest."""
    names = list(run["candidates"])
    names += [n for n in recorded_names(out_dir) if n not in names]
    rows = [summarize(name, out_dir / name, run["budget_minutes"]) for name in names]
    sets = valid_set_names(rows)
    rows.sort(key=lambda row: _sort_key(row, sets))
    winner = rows[0]["name"] if rows and rows[0]["status"] in _COMPLETE else None
    return {"schema": SCHEMA, "run": run, "valid_sets": sets, "winner": winner, "candidates": rows}


def _cores(n: Any) -> str:
    return f"{n} core{'' if n == 1 else 's'}"


def _jobs(n: int) -> str:
    return "one candidate at a time" if n == 1 else f"{n} candidates at a time (`--jobs {n}`)"


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_markdown(results: dict[str, Any], plot_name: str | None = "curves.png") -> str:
    run, sets = results["run"], results["valid_sets"]
    crop = "whole utterances" if run.get("valid_seconds") is None else f"fixed {run['valid_seconds']:g} s crops"
    machine = run.get("machine") or {}
    jobs = run.get("jobs", 1)
    others = [(row["name"], row["jobs"]) for row in results["candidates"] if row.get("jobs") and row["jobs"] != [jobs]]
    lines = [
        f"# Learning benchmark: SI-SNRi after {run['budget_minutes']:g} training minutes",
        "",
        f"`{run.get('command') or 'speechsep bench learn'}` on {machine.get('cpu', 'an unrecorded CPU')} "
        f"({_cores(machine.get('cores', '?'))}), {run['threads']} torch thread{'' if run['threads'] == 1 else 's'} "
        f"per candidate, {_jobs(jobs)}, seed {run['seed']}, last run {run.get('date', '?')}.",
        "",
        f"Every candidate trains from scratch. Every {run['eval_every_minutes']:g} training minutes it is scored "
        f"(PIT SI-SNRi, dB over the mixture, {crop}) on the first {run['valid_examples']} mixtures of each "
        f"validation set and on {run['train_examples']} examples of its first training epoch (`train`: the gap "
        "is train minus the first validation set). Training minutes are the wall time of the optimiser steps, "
        "data loading included, without the trainer's set-up, its own per-epoch validation and the bench's "
        f"scoring: on a dedicated machine with {_cores(run['threads'] * jobs)} that is the CPU budget. dB per CPU hour "
        f"divides the first set's SI-SNRi by the process's CPU time over those steps plus its data workers'.",
        "",
    ]
    if jobs > 1 or others:
        lines[-1:-1] = [
            "", "Candidates that train at once (`--jobs`) share the machine's cores, caches and memory bandwidth, so "
            "their step times, and the steps a training minute buys, depend on `--jobs`: compare candidates run "
            "with the same value." + (" Run with other `--jobs` values: "
                                      + "; ".join(f"{n} ({', '.join(map(str, v))})" for n, v in others) + "."
                                      if others else "")]
    head = ["rank", "candidate", "model", "key overrides", "params", "step ms", "examples/s",
            *[f"{k} dB" for k in sets], "dB per CPU hour", "train-valid gap (dB)", "train min", "status"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, row in enumerate(results["candidates"], 1):
        name = f"**{row['name']}** (winner)" if row["name"] == results["winner"] else row["name"]
        db = row.get("db_at_budget") or {}
        params = row.get("params")
        status = row["status"] + (f" ({row['stopped']})" if row["status"] == "stopped" else "")
        if row["status"] == "error":
            status = f"error: {str(row.get('error'))[:80]}"
        cells = [str(i), name, row.get("model") or "-", ", ".join(row.get("overrides") or []) or "-",
                 "-" if params is None else f"{params / 1e6:.3f} M", _num(row.get("median_step_ms"), ".0f"),
                 _num(row.get("examples_per_second"), ".1f"), *[_num(db.get(k), ".2f") for k in sets],
                 _num(row.get("db_per_cpu_hour"), ".2f"), _num(row.get("train_valid_gap"), ".2f"),
                 _num(row.get("train_minutes"), ".2f"), status]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    specs = {k: v for row in results["candidates"] for k, v in (row.get("valid") or {}).items()}
    if specs:
        lines += ["", "Validation sets: " + "; ".join(f"`{k}` = `{v}`" for k, v in specs.items()) + "."]
    if plot_name:
        lines += ["", f"![SI-SNRi against training minutes]({plot_name})"]
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any], path: str | Path) -> Path:
    """SI-SNRi of the first validation set (solid) and the second (dashed) against training minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    sets = results["valid_sets"]
    fig, ax = plt.subplots(figsize=(9, 6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(results["candidates"]):
        curve = row["curve"]
        if not curve:
            continue
        color = colors[i % len(colors)]
        for k, style in zip(sets[:2], ("-", "--"), strict=False):
            xs = [p["train_minutes"] for p in curve if k in p["si_snri"]]
            ys = [p["si_snri"][k] for p in curve if k in p["si_snri"]]
            label = f"{row['name']} ({k})" + (" winner" if row["name"] == results["winner"] and style == "-" else "")
            ax.plot(xs, ys, style, color=color, marker="o" if style == "-" else None, markersize=3, label=label)
    ax.axvline(results["run"]["budget_minutes"], color="gray", lw=0.8, ls=":")
    ax.set_xlim(left=0.0)
    ax.axhline(0.0, color="gray", lw=0.6)
    jobs = results["run"].get("jobs", 1)
    threads = results["run"]["threads"]
    ax.set_xlabel(f"training minutes ({threads} thread{'s' if threads != 1 else ''}"
                  + (f", {jobs} candidates at a time)" if jobs > 1 else ")"))
    ax.set_ylabel("SI-SNRi (dB)")
    style_note = " / ".join(f"{k} {s}" for k, s in zip(sets[:2], ("solid", "dashed"), strict=False))
    ax.set_title(f"Learning per training minute ({style_note})", fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_outputs(out_dir: str | Path, run: dict[str, Any], *, plot: bool = True) -> dict[str, Any]:
    out_dir = Path(out_dir)
    results = collect(out_dir, run)
    with atomic_path(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1) + "\n")
    with atomic_path(out_dir / "results.md") as tmp:
        tmp.write_text(render_markdown(results))
    if plot:
        plot_curves(results, out_dir / "curves.png")
    return results


def render(out_dir: str | Path) -> dict[str, Any]:
    """Rebuild the three outputs from ``results.json``'s run description and the records of every
    candidate under ``out_dir``."""
    out_dir = Path(out_dir)
    source = out_dir / "results.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no results to render (run `speechsep bench learn --candidates ... "
                                f"--out {out_dir}` first)")
    data = json.loads(source.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{source}: not a learning-benchmark results file (schema {data.get('schema')!r})")
    return write_outputs(out_dir, data["run"])
