"""``speechsep bench learn``: which model and recipe learn the most separation per CPU hour.

Each candidate (:mod:`bench.learn.candidates`) trains from scratch with the ordinary
trainer into ``OUT/NAME/`` until it has had ``budget`` minutes of training. Every ``eval_every``
minutes of training the step hook pauses the trainer the way Ctrl-C does (it saves ``last.pt`` and
stops); the bench scores that checkpoint (PIT SI-SNRi, dB over the mixture, on each validation set
and on a fixed sample of the examples the model trained on in its first epoch), appends a point to
``OUT/NAME/curve.jsonl`` and reruns the trainer, which resumes bit for bit.

What counts as training time: the wall time of the optimiser steps (data loading included) on
``threads`` torch threads, measured between consecutive step hooks. Not counted: the trainer's
set-up at each (re)start, its own per-epoch validation and the bench's evaluations; a step whose
interval holds one of those is charged the median step time instead. On a dedicated machine with
``threads`` cores the wall budget is the CPU budget. Each point also records CPU time
(``resource.getrusage``): the process's CPU over the charged steps plus the data-loader workers'
(children's) CPU, counted when the workers exit at epoch ends and pauses.

Resuming: ``OUT/NAME/bench_state.json`` (written atomically) holds every step's charged wall and CPU
time and loss, and the points; on a rerun it is matched to the step of ``last.pt`` (steps the trainer
did not checkpoint are dropped, steps it checkpointed that the state missed, e.g. after a SIGKILL,
are charged the median and counted as ``estimated_steps``). Candidates that reached the budget, or
that the trainer stopped (early stop, max_epochs), are skipped; raising ``budget`` continues them.

Concurrent candidates (``jobs`` > 1, ``--jobs``): up to ``jobs`` candidates train at once, each in
its own child process (``python -m speechsep bench learn ... --only NAME``, started with
``OMP_NUM_THREADS=threads``) that writes only its own ``OUT/NAME/`` record and its output to
``OUT/NAME/bench.log``; the parent relays those lines, renders the combined ``results.json``,
``results.md`` and ``curves.png`` from the records whenever a record changes or a child ends, and
forwards SIGTERM (or Ctrl-C) to the children once, so each saves its state as a serial run would; the
same command then resumes. Concurrent candidates share the machine's cores, caches and memory
bandwidth, so their per-step times (and the steps a training minute buys) depend on ``jobs``:
compare candidates run with the same ``jobs`` (each record keeps the ``jobs`` values it trained under).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.learn.candidates import Candidate, candidate_config, default_valid_specs
from bench.learn.state import (
    STATE_FILE,
    TRAIN_SET,
    Clock,
    Pause,
    Progress,
    children_cpu,
    finished,
    load_progress,
    reconcile,
    save_progress,
)
from speechsep.config import dotted_keys
from speechsep.utils import atomic_path

__all__ = ["LearnOptions", "run_learn", "run_candidate", "child_argv", "exit_with_parent", "TRAIN_SET", "LOG_FILE"]


@dataclasses.dataclass(frozen=True)
class LearnOptions:
    budget_minutes: float = 30.0
    eval_every_minutes: float = 5.0
    threads: int = 2
    seed: int = 0
    #: name -> dataset spec; None: each candidate's recipe valid spec, clean and noisy
    valid: dict[str, str] | None = None
    valid_examples: int = 100
    #: training examples scored for the train-vs-valid gap (None: as many as valid_examples)
    train_examples: int | None = None
    #: score a fixed crop of this many seconds of each example (None: whole utterances)
    valid_seconds: float | None = None
    device: str = "cpu"
    #: candidates trained at once, each in its own process on ``threads`` threads (not a setting:
    #: a candidate may resume under another value, and its record lists every value it trained under)
    jobs: int = 1

    def __post_init__(self) -> None:
        if self.budget_minutes <= 0 or self.eval_every_minutes <= 0:
            raise ValueError("--budget-minutes and --eval-every-minutes must be positive")
        if self.threads < 1 or self.valid_examples < 1 or self.jobs < 1:
            raise ValueError("--threads, --valid-examples and --jobs must be at least 1")
        if self.valid and TRAIN_SET in self.valid:
            raise ValueError(f"--valid: {TRAIN_SET!r} names the training sample; pick another name")


def _session(config, run_dir: Path, progress: Progress, target_s: float, device: str,
             hooks: Sequence[Callable]) -> str | None:
    """Train until ``target_s`` of charged time (returns None) or until the trainer stops by itself
    (returns its reason)."""
    from speechsep.train.engine import train

    wall0, workers0 = time.perf_counter(), children_cpu()
    clock = Clock(progress, target_s)
    try:
        return train(config, run_dir, device=device, hooks=[clock, *hooks], progress=False).stopped
    except Pause:
        return None
    finally:
        progress.worker_cpu_s += children_cpu() - workers0
        progress.overhead_s += max(time.perf_counter() - wall0 - clock.charged_s, 0.0)


def _eval_sets(config, options: LearnOptions, specs: dict[str, str], sample_rate: int):
    """name -> list of (mixture (1, T), sources (1, C, T)), materialised once: fixed and cheap to rescore."""
    from speechsep.train.data import CroppedExamples, EpochSampler, open_examples

    length = None if options.valid_seconds is None else round(options.valid_seconds * sample_rate)
    sets = {}
    for name, spec in specs.items():
        base = open_examples(spec, sample_rate=sample_rate, train=False, seed=config.seed)
        examples = CroppedExamples(base, length, config.seed)
        keys = [(i, 0) for i in range(min(options.valid_examples, len(examples)))]
        sets[name] = keys, examples
    # The first examples of the first epoch's order, opened as the trainer opens them (with dynamic
    # mixing's overrides where the config has them): mixtures the model has trained on, as crops.
    mixing = {"mixing": config.data.mixing} if getattr(config.data, "mixing", None) else {}
    base = open_examples(config.data.train, sample_rate=sample_rate, train=True, seed=config.seed, **mixing)
    examples = CroppedExamples(base, length, config.seed)
    count = options.train_examples if options.train_examples is not None else options.valid_examples
    order = EpochSampler(len(examples), seed=config.seed, epoch=0).order()[:count]
    sets[TRAIN_SET] = [(i, 0) for i in order], examples
    return {name: [tuple(t.unsqueeze(0) for t in examples[key]) for key in keys]
            for name, (keys, examples) in sets.items()}


def _evaluate(run_dir: Path, progress: Progress, config, options: LearnOptions, specs: dict[str, str],
              cache: dict[str, Any]) -> dict[str, Any]:
    from speechsep.checkpoint import load_model
    from speechsep.complexity import count_parameters
    from speechsep.inference.pretrained import resolve_device
    from speechsep.train.distributed import DistInfo
    from speechsep.train.engine import evaluate_si_sdr

    t0 = time.perf_counter()
    device = resolve_device(options.device)
    model = load_model(run_dir / "last.pt").to(device)
    progress.meta["params"] = count_parameters(model)
    if "sets" not in cache:
        cache["sets"] = _eval_sets(config, options, specs, model.sample_rate)
    scores = {name: round(evaluate_si_sdr(model, batches, device, DistInfo(), "fp32")["si_sdri"], 4)
              for name, batches in cache["sets"].items()}
    previous = progress.points[-1]["step"] if progress.points else 0
    losses = [s[2] for s in progress.steps[previous:] if s[2] is not None]
    cpu_s = sum(s[1] for s in progress.steps) / 1000.0
    eval_s = time.perf_counter() - t0
    progress.eval_s += eval_s
    return {
        "train_minutes": round(progress.train_s / 60.0, 5),
        "cpu_minutes": round((cpu_s + progress.worker_cpu_s) / 60.0, 5),
        "process_cpu_minutes": round(cpu_s / 60.0, 5),
        "worker_cpu_minutes": round(progress.worker_cpu_s / 60.0, 5),
        "step": progress.step,
        "epoch": progress.epoch,
        "examples": progress.step * config.data.batch_size,
        "si_snri": scores,
        "train_loss": round(statistics.fmean(losses), 5) if losses else None,
        "estimated_steps": progress.estimated_steps,
        "overhead_minutes": round(progress.overhead_s / 60.0, 4),
        "eval_seconds": round(eval_s, 2),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _next_target(progress: Progress, options: LearnOptions) -> float:
    every, budget = options.eval_every_minutes * 60.0, options.budget_minutes * 60.0
    last = progress.points[-1]["train_minutes"] * 60.0 if progress.points else 0.0
    return min(budget, (math.floor(last / every + 1e-9) + 1) * every)


def _settings(config, options: LearnOptions, specs: dict[str, str]) -> dict[str, Any]:
    """What must not change between the runs of one candidate, or its curve would mix two experiments."""
    from speechsep.config import to_dict

    return {"config": to_dict(config), "threads": options.threads, "device": options.device, "valid": specs,
            "valid_examples": options.valid_examples, "train_examples": options.train_examples,
            "valid_seconds": options.valid_seconds}


def _format_point(name: str, point: dict[str, Any]) -> str:
    scores = ", ".join(f"{k} {v:.2f} dB" for k, v in point["si_snri"].items())
    loss = "n/a" if point["train_loss"] is None else f"{point['train_loss']:.3f}"
    return (f"[{name}] {point['train_minutes']:.2f} train min ({point['cpu_minutes']:.2f} CPU min), "
            f"step {point['step']}, {point['examples']} examples: SI-SNRi {scores}; loss {loss} "
            f"(eval {point['eval_seconds']:.1f} s)")


def run_candidate(candidate: Candidate, out_dir: Path, options: LearnOptions, *,
                  log: Callable[[str], None] = print, on_point: Callable[[], None] = lambda: None,
                  hooks: Sequence[Callable] = ()) -> Progress:
    """Train and score one candidate up to the budget, resuming whatever ``out_dir/NAME`` holds."""
    import torch

    config = candidate_config(candidate, seed=options.seed)
    specs = dict(options.valid) if options.valid else default_valid_specs(config.data.valid)
    run_dir = out_dir / candidate.name
    settings = json.loads(json.dumps(_settings(config, options, specs)))  # as the state file holds it
    progress = load_progress(run_dir / STATE_FILE)
    changed = []
    if progress is not None and progress.settings and progress.settings != settings:
        ours, theirs = dotted_keys(settings), dotted_keys(progress.settings)
        # A key only one side has, left unset (None), is a config field added since the run started
        # (e.g. a new loss option): the experiment is the same, so the run resumes.
        changed = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
    if changed:
        raise ValueError(f"candidate {candidate.name!r}: {run_dir} was started with other settings ({', '.join(changed)}); "
                         "rerun with the same candidate and options, or use another --out")
    if progress is None or not progress.settings:
        progress = Progress(settings=settings, meta={})
    progress.meta.update(name=candidate.name, recipe=candidate.recipe, overrides=list(candidate.overrides),
                         note=candidate.note, model=config.model.name, batch_size=config.data.batch_size,
                         segment_seconds=config.data.segment_seconds, valid=specs)
    progress.error = None
    reconcile(progress, run_dir)
    if finished(progress, options.budget_minutes):
        log(f"[{candidate.name}] done at {progress.points[-1]['train_minutes']:.2f} training minutes: skipped")
        return progress
    progress.meta["jobs"] = sorted({*progress.meta.get("jobs", []), options.jobs})
    log(f"[{candidate.name}] training to {options.budget_minutes:g} minutes from "
        f"{progress.train_s / 60:.2f}, scoring every {options.eval_every_minutes:g}")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    cache: dict[str, Any] = {}
    try:
        while not finished(progress, options.budget_minutes):
            target = _next_target(progress, options)
            due = progress.stopped is not None or progress.train_s >= target
            if due and (not progress.points or progress.points[-1]["step"] != progress.step):
                point = _evaluate(run_dir, progress, config, options, specs, cache)
                progress.points.append(point)
                save_progress(progress, run_dir)
                log(_format_point(candidate.name, point))
                on_point()
                continue
            progress.stopped = _session(config, run_dir, progress, target, options.device, hooks)
            save_progress(progress, run_dir)
            if progress.stopped:
                log(f"[{candidate.name}] the trainer stopped by itself ({progress.stopped}) at "
                    f"{progress.train_s / 60:.2f} training minutes")
    except KeyboardInterrupt:
        reconcile(progress, run_dir)
        save_progress(progress, run_dir)
        raise
    finally:
        torch.set_num_threads(threads_before)
    return progress


def run_learn(candidates: list[Candidate], out_dir: str | Path, options: LearnOptions, *,
              only: Sequence[str] = (), command: str = "", log: Callable[[str], None] = print,
              hooks: Sequence[Callable] = (), candidates_file: str | Path | None = None,
              child: bool = False) -> dict[str, Any]:
    """Run (or resume) the candidates named in ``only`` (default all) and write ``results.json``,
    ``results.md`` and ``curves.png`` under ``out_dir``; returns the results. A candidate that fails
    at run time is recorded with its error and the others continue.

    ``options.jobs`` > 1 runs the candidates in child processes (see the module docstring), which
    re-read ``candidates_file``; ``hooks`` then do not reach them. ``child``: this process is one of
    those children: it trains its candidates here and writes only their ``OUT/NAME/`` records (the
    parent renders the combined outputs)."""
    from bench.learn.report import write_outputs

    out_dir = Path(out_dir)
    names = [c.name for c in candidates]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ValueError(f"--only: no candidate named {unknown}; the file has {names}")
    selected = [c for c in candidates if not only or c.name in only]
    for c in selected:  # every config error now, not hours into the run
        candidate_config(c, seed=options.seed)
    parallel = options.jobs > 1 and not child
    if parallel and candidates_file is None:
        raise ValueError("jobs > 1 runs each candidate in a child process that reads the candidates file: "
                         "pass candidates_file")
    run = {"command": command, "budget_minutes": options.budget_minutes,
           "eval_every_minutes": options.eval_every_minutes, "threads": options.threads, "jobs": options.jobs,
           "seed": options.seed, "device": options.device, "valid_examples": options.valid_examples,
           "train_examples": options.train_examples if options.train_examples is not None else options.valid_examples,
           "valid_seconds": options.valid_seconds, "candidates": [c.name for c in selected],
           "machine": _machine(options.threads) if not child else {},
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}

    def publish(plot: bool = False) -> dict[str, Any]:
        if child:  # the parent renders the combined outputs
            return {}
        return write_outputs(out_dir, run, plot=plot)

    # nohup runs end with SIGTERM: make it an interrupt, so every state is saved on the way out
    previous = _set_sigterm(_raise_interrupt)
    failed: list[str] = []
    try:
        if parallel:
            failed = _run_children(selected, out_dir, options, Path(candidates_file), log=log, publish=publish)
        else:
            for i, c in enumerate(selected):
                try:
                    run_candidate(c, out_dir, options, log=log, on_point=publish, hooks=hooks)
                except KeyboardInterrupt:
                    publish()
                    raise
                except Exception as err:  # noqa: BLE001 (one broken candidate must not end an overnight run)
                    failed.append(c.name)
                    log(f"[{c.name}] failed: {type(err).__name__}: {err}")
                    _record_error(out_dir / c.name, f"{type(err).__name__}: {err}")
                publish(plot=i < len(selected) - 1)  # the last one is plotted below
    finally:
        if previous is not None:
            _set_sigterm(previous)
    results = publish(plot=True)
    results["failed"] = failed
    return results


LOG_FILE = "bench.log"
#: how often the parent of concurrent candidates relays their output and looks at their records
_POLL_S = 0.25


class _Child:
    """One candidate's child process, its log file and how far the parent has relayed it."""

    def __init__(self, candidate: Candidate, out_dir: Path, argv: list[str], env: dict[str, str]):
        self.name = candidate.name
        run_dir = out_dir / candidate.name
        run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = run_dir / LOG_FILE
        self.state_path = run_dir / STATE_FILE
        with open(self.log_path, "ab") as sink:
            self.offset = sink.tell()
            # its own session: Ctrl-C in the terminal reaches only the parent, which forwards one SIGTERM
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        self.partial = b""
        self.stamp = self._stamp()
        self.signalled = False

    def _stamp(self) -> int | None:
        try:
            return self.state_path.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def changed(self) -> bool:
        stamp = self._stamp()
        changed, self.stamp = stamp != self.stamp, stamp
        return changed

    def relay(self, log: Callable[[str], None], final: bool = False) -> None:
        with open(self.log_path, "rb") as source:
            source.seek(self.offset)
            data = self.partial + source.read()
            self.offset = source.tell()
        *lines, self.partial = data.split(b"\n")
        if final and self.partial:
            lines, self.partial = [*lines, self.partial], b""
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            if line.strip():
                log(line if line.startswith(f"[{self.name}]") else f"[{self.name}] {line}")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signum)
            except ProcessLookupError:
                pass


def child_argv(candidates_file: Path, out_dir: Path, options: LearnOptions, name: str) -> list[str]:
    """The command line of the child process that trains candidate ``name``."""
    argv = [sys.executable, "-m", "speechsep", "bench", "--omp-wait-policy", "inherit", "learn",
            "--candidates", str(Path(candidates_file).resolve()), "--out", str(Path(out_dir).resolve()),
            "--budget-minutes", repr(options.budget_minutes), "--eval-every-minutes", repr(options.eval_every_minutes),
            "--threads", str(options.threads), "--seed", str(options.seed),
            "--valid-examples", str(options.valid_examples), "--device", options.device,
            "--jobs", str(options.jobs), "--only", name, "--child"]
    for key, spec in (options.valid or {}).items():
        argv += ["--valid", f"{key}={spec}"]
    if options.train_examples is not None:
        argv += ["--train-examples", str(options.train_examples)]
    if options.valid_seconds is not None:
        argv += ["--valid-seconds", repr(options.valid_seconds)]
    return argv


def _child_env(options: LearnOptions) -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(options.threads)
    env["MKL_NUM_THREADS"] = str(options.threads)
    env["PYTHONUNBUFFERED"] = "1"
    env[_PARENT_ENV] = str(os.getpid())
    root = str(Path(__file__).resolve().parents[2])  # the checkout: children import this workshop package
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _already_done(candidate: Candidate, out_dir: Path, options: LearnOptions) -> Progress | None:
    """The candidate's record when it is finished under these settings (no child needed), else None."""
    run_dir = out_dir / candidate.name
    progress = load_progress(run_dir / STATE_FILE)
    if progress is None or not progress.settings or progress.error:
        return None
    config = candidate_config(candidate, seed=options.seed)
    specs = dict(options.valid) if options.valid else default_valid_specs(config.data.valid)
    if progress.settings != json.loads(json.dumps(_settings(config, options, specs))):
        return None  # the child reports the mismatch
    step = progress.step
    reconcile(progress, run_dir)
    return progress if progress.step == step and finished(progress, options.budget_minutes) else None


def _run_children(selected: list[Candidate], out_dir: Path, options: LearnOptions, candidates_file: Path, *,
                  log: Callable[[str], None], publish: Callable[..., Any]) -> list[str]:
    """Train ``selected`` in up to ``options.jobs`` child processes at once; returns the failed names."""
    pending: list[Candidate] = []
    for c in selected:
        done = _already_done(c, out_dir, options)
        if done is not None:
            log(f"[{c.name}] done at {done.points[-1]['train_minutes']:.2f} training minutes: skipped")
        else:
            pending.append(c)
    if not pending:
        return []
    log(f"training {len(pending)} candidate(s), {options.jobs} at a time on {options.threads} thread(s) each; "
        f"their output also goes to {out_dir}/NAME/{LOG_FILE}")
    env = _child_env(options)
    running: dict[str, _Child] = {}
    failed: list[str] = []
    try:
        while pending or running:
            while pending and len(running) < options.jobs:
                c = pending.pop(0)
                running[c.name] = _Child(c, out_dir, child_argv(candidates_file, out_dir, options, c.name), env)
            time.sleep(_POLL_S)
            changed = False
            for name, child in list(running.items()):
                child.relay(log)
                changed |= child.changed()
                rc = child.proc.poll()
                if rc is None:
                    continue
                child.relay(log, final=True)
                del running[name]
                if rc != 0:
                    failed.append(name)
                    log(f"[{name}] failed: its process exited with status {rc} (see {child.log_path})")
                    progress = load_progress(child.state_path)
                    if rc != 1 or progress is None or not progress.error:  # 1: it recorded its own error
                        _record_error(out_dir / name, f"the candidate's process exited with status {rc}; "
                                                      f"see {child.log_path}")
                publish(plot=bool(pending or running))  # the last one is plotted by the caller
                changed = False
            if changed:
                publish()
    except KeyboardInterrupt:
        log(f"interrupted: asking {len(running)} running candidate(s) to save their state")
        _stop(running, log)
        publish()
        raise
    finally:
        for child in running.values():  # only after an unexpected error in this loop
            child.signal(signal.SIGTERM)
            child.proc.wait()
    return failed


def _stop(running: dict[str, _Child], log: Callable[[str], None]) -> None:
    """SIGTERM each child once and wait for them to save their state; another interrupt kills them."""
    for child in running.values():
        child.signal(signal.SIGTERM)
    while running:
        try:
            time.sleep(_POLL_S)
            for name, child in list(running.items()):
                child.relay(log)
                if child.proc.poll() is not None:
                    child.relay(log, final=True)
                    del running[name]
        except KeyboardInterrupt:
            log("interrupted again: killing the candidates (a rerun resumes from their last checkpoints)")
            for child in running.values():
                child.signal(signal.SIGKILL)


_PARENT_ENV = "SPEECHSEP_LEARN_PARENT"


def exit_with_parent() -> None:
    """In a child of concurrent candidates: get SIGTERM (and so save the state) if the parent dies
    without forwarding one (SIGKILL, a crash). Linux only; elsewhere a no-op."""
    parent = os.environ.get(_PARENT_ENV)
    if not sys.platform.startswith("linux") or not parent:
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != parent:  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def _set_sigterm(handler):
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def _machine(threads: int) -> dict[str, Any]:
    import torch

    from speechsep.bench.machine import machine_info

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return machine_info()
    finally:
        torch.set_num_threads(before)


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _record_error(run_dir: Path, message: str) -> None:
    progress = load_progress(run_dir / STATE_FILE)
    if progress is not None:
        progress.error = message
        save_progress(progress, run_dir)
    else:
        with atomic_path(run_dir / STATE_FILE) as tmp:
            tmp.write_text(json.dumps({"settings": {}, "meta": {}, "error": message}) + "\n")
