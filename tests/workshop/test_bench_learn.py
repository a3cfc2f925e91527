"""``speechsep bench learn``: tiny causal DPRNNs on a folder of generated tone mixtures, budgets of seconds."""

import dataclasses
import json
import math

import numpy as np
import pytest
import yaml

from bench.learn.candidates import (
    NEVER_STOP,
    Candidate,
    candidate_config,
    default_valid_specs,
    read_candidates,
)
from bench.learn.run import LearnOptions, run_learn
from bench.learn.state import load_progress
from speechsep.audio import write_audio
from speechsep.checkpoint import read_checkpoint
from speechsep.cli import build_parser, main

POINT_KEYS = {"train_minutes", "cpu_minutes", "process_cpu_minutes", "worker_cpu_minutes", "step", "epoch",
              "examples", "si_snri", "train_loss", "estimated_steps", "overhead_minutes", "eval_seconds"}
# 1.5 s of training per candidate, scored every 0.75 s: two points each
BUDGET, EVERY = "0.025", "0.0125"


def _folder(root, count, seed):
    """``count`` mixtures of a low and a high amplitude-modulated tone, 0.3 s at 8 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(2400) / 8000
    for sub in ("mix", "s1", "s2"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        sources = [0.3 * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))
                   * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 6)) for lo, hi in ((150, 500), (1500, 3000))]
        write_audio(root / "mix" / f"{i}.wav", (sources[0] + sources[1]).astype(np.float32), 8000, subtype="FLOAT")
        for c, s in enumerate(sources):
            write_audio(root / f"s{c + 1}" / f"{i}.wav", s.astype(np.float32), 8000, subtype="FLOAT")
    return f"folder:{root / 'mix'}:{root / 's1'},{root / 's2'}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    train, clean, noisy = _folder(root / "train", 8, 0), _folder(root / "clean", 3, 1), _folder(root / "noisy", 3, 2)
    recipe = root / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name": "dprnn-causal-tiny", "overrides": {"sample_rate": 8000}},
        "data": {"train": train, "valid": clean, "segment_seconds": 0.2, "batch_size": 2, "valid_max_examples": 2,
                 "target": "dry"},
        "schedule": {"kind": "iterative", "stop_patience": 100000}, "max_epochs": 100000, "log_every": 1000,
    }))
    return {"root": root, "recipe": recipe, "valid": ["--valid", f"clean={clean}", "--valid", f"noisy={noisy}"]}


def _candidates(path, entries):
    path.write_text(yaml.safe_dump({"candidates": entries}))
    return path


def _learn(corpus, candidates, out, *extra, budget=BUDGET):
    # --omp-wait-policy inherit: the command would otherwise re-execute itself (and replace pytest)
    return main(["bench", "--omp-wait-policy", "inherit", "learn", "--candidates", str(candidates), "--out", str(out),
                 "--budget-minutes", budget, "--eval-every-minutes", EVERY, "--threads", "1",
                 "--valid-examples", "2", *corpus["valid"], *extra])


def _curve(run_dir):
    return [json.loads(line) for line in (run_dir / "curve.jsonl").read_text().splitlines()]


def test_two_candidates_race_rank_and_a_rerun_trains_nothing(corpus, tmp_path, capsys):
    recipe = str(corpus["recipe"])
    cands = _candidates(tmp_path / "c.yaml", [
        {"name": "snr", "recipe": recipe},
        {"name": "sisdr-fast", "recipe": recipe, "overrides": ["loss.name=neg_si_sdr", "optim.lr=0.01"]},
    ])
    out = tmp_path / "out"
    assert _learn(corpus, cands, out) == 0
    printed = capsys.readouterr().out
    for name in ("snr", "sisdr-fast"):
        curve = _curve(out / name)
        assert len(curve) >= 2 and all(POINT_KEYS <= set(p) for p in curve)
        assert all(set(p["si_snri"]) == {"clean", "noisy", "train"} for p in curve)
        assert all(math.isfinite(v) for p in curve for v in p["si_snri"].values())
        minutes = [p["train_minutes"] for p in curve]
        assert minutes == sorted(minutes) and len(set(minutes)) == len(minutes)
        assert [p["step"] for p in curve] == sorted({p["step"] for p in curve})
        assert all(p["examples"] == 2 * p["step"] for p in curve)
        assert minutes[-1] >= float(BUDGET) and minutes[0] >= float(EVERY)
        assert all(p["cpu_minutes"] > 0 for p in curve)
        # the last point is the checkpoint the trainer would resume from
        assert read_checkpoint(out / name / "last.pt")["step"] == curve[-1]["step"]
        assert f"[{name}] " in printed and "SI-SNRi clean" in printed
    results = json.loads((out / "results.json").read_text())
    rows = results["candidates"]
    assert [r["status"] for r in rows] == ["done", "done"]
    assert rows[0]["db_at_budget"]["clean"] >= rows[1]["db_at_budget"]["clean"]
    assert results["winner"] == rows[0]["name"]
    first = rows[0]
    assert first["params"] > 0 and first["median_step_ms"] > 0 and first["examples_per_second"] > 0
    assert first["train_valid_gap"] == pytest.approx(first["curve"][-1]["si_snri"]["train"] - first["db_at_budget"]["clean"])
    assert first["db_per_cpu_hour"] == pytest.approx(first["db_at_budget"]["clean"] / (first["cpu_minutes"] / 60), rel=1e-3)
    table = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ")]
    assert "clean dB" in table[0] and "noisy dB" in table[0]
    assert table[1].startswith(f"| 1 | **{rows[0]['name']}** (winner)") and f"| 2 | {rows[1]['name']} |" in table[2]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"

    # The same command again: both are done, nothing trains, nothing changes.
    stamps = {name: (out / name / "last.pt").stat().st_mtime_ns for name in ("snr", "sisdr-fast")}
    curves = {name: _curve(out / name) for name in ("snr", "sisdr-fast")}
    assert _learn(corpus, cands, out) == 0
    assert capsys.readouterr().out.count("skipped") == 2
    assert stamps == {name: (out / name / "last.pt").stat().st_mtime_ns for name in ("snr", "sisdr-fast")}
    assert curves == {name: _curve(out / name) for name in ("snr", "sisdr-fast")}

    # --render rebuilds the table from the records alone
    (out / "results.md").unlink()
    assert main(["bench", "learn", "--render", str(out)]) == 0
    assert (out / "results.md").read_text().splitlines()[0].startswith("# Learning benchmark")


def test_a_raised_budget_continues_the_curve(corpus, tmp_path):
    cands = _candidates(tmp_path / "c.yaml", [{"name": "one", "recipe": str(corpus["recipe"])}])
    out = tmp_path / "out"
    assert _learn(corpus, cands, out, budget=EVERY) == 0
    before = _curve(out / "one")
    assert len(before) == 1
    assert _learn(corpus, cands, out, budget=BUDGET) == 0
    after = _curve(out / "one")
    assert after[0] == before[0] and len(after) >= 2
    assert after[-1]["step"] > before[0]["step"] and after[-1]["train_minutes"] >= float(BUDGET)
    log = [json.loads(line) for line in (out / "one" / "log.jsonl").read_text().splitlines()]
    assert any(r.get("event") == "resume" and r["step"] == before[0]["step"] for r in log)


def _interrupted_candidate(corpus, tmp_path, at_step):
    """One candidate ("cut") started and stopped by Ctrl-C (a hook raising KeyboardInterrupt) after step
    ``at_step``: ``(candidates, options, out)`` to rerun it with. A hook runs after the bench's own, which
    cannot pause before step 3 at 20 ms a step."""
    candidates = read_candidates(_candidates(tmp_path / "c.yaml", [{"name": "cut", "recipe": str(corpus["recipe"])}]))
    clean, noisy = corpus["valid"][1].split("=", 1)[1], corpus["valid"][3].split("=", 1)[1]
    options = LearnOptions(budget_minutes=float(BUDGET), eval_every_minutes=float(EVERY), threads=1,
                           valid={"clean": clean, "noisy": noisy}, valid_examples=2)
    out = tmp_path / "out"

    def stop_at(info):
        if info.step == at_step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_learn(candidates, out, options, hooks=[stop_at], log=lambda line: None)
    return candidates, options, out


def test_an_interrupted_candidate_resumes_its_record_and_curve(corpus, tmp_path):
    """SIGTERM or Ctrl-C (a hook raising KeyboardInterrupt) mid-training: the record matches last.pt."""
    candidates, options, out = _interrupted_candidate(corpus, tmp_path, at_step=3)
    state = load_progress(out / "cut" / "bench_state.json")
    assert state.step == read_checkpoint(out / "cut" / "last.pt")["step"] == 3 and not state.points
    seconds = state.train_s
    run_learn(candidates, out, options, log=lambda line: None)
    state = load_progress(out / "cut" / "bench_state.json")
    curve = _curve(out / "cut")
    assert curve[-1]["step"] == state.step == read_checkpoint(out / "cut" / "last.pt")["step"] > 3
    assert curve[-1]["train_minutes"] * 60 > seconds and curve[-1]["estimated_steps"] == 0


def test_a_rerun_with_other_settings_names_each_changed_setting(corpus, tmp_path):
    """A curve must not mix two experiments: the error lists the settings that differ, by their --set keys."""
    candidates, options, out = _interrupted_candidate(corpus, tmp_path, at_step=1)
    other = dataclasses.replace(options, valid_examples=3, seed=1)
    lines = []
    results = run_learn(candidates, out, other, log=lines.append)
    assert results["failed"] == ["cut"]  # recorded, and the other candidates of an overnight run go on
    assert any("ValueError" in line and "other settings (config.seed, valid_examples)" in line for line in lines)


def test_a_config_field_added_since_the_start_at_its_unset_value_does_not_block_a_resume(corpus, tmp_path):
    """A run started before a new recipe field existed (saved settings lack it) resumes when the field is unset."""
    candidates, options, out = _interrupted_candidate(corpus, tmp_path, at_step=1)
    state_file = out / "cut" / "bench_state.json"
    state = json.loads(state_file.read_text())
    assert state["settings"]["config"]["loss"].pop("deep_clustering_weight") is None  # as saved before the field
    state_file.write_text(json.dumps(state))
    results = run_learn(candidates, out, options, log=lambda line: None)
    assert results["failed"] == [] and load_progress(state_file).step > 1


@pytest.mark.parametrize("entry, words", [
    ({"name": "typo", "recipe": "RECIPE", "overrides": ["optim.momentum=0.9"]}, ["'typo'", "momentum"]),
    ({"name": "gone", "recipe": "no/such-recipe"}, ["'gone'", "no/such-recipe"]),
    ({"name": "extra", "recipe": "RECIPE", "overides": []}, ["'extra'", "overides"]),
    ({"name": "nomodel", "recipe": "RECIPE", "overrides": ["model.name=sudormrf-nonexistent"]},
     ["'nomodel'", "sudormrf-nonexistent"]),
    ({"name": "modeltypo", "recipe": "RECIPE", "overrides": ["model.overrides.hiden=4"]}, ["'modeltypo'", "hiden"]),
])
def test_a_bad_candidate_is_named_before_anything_trains(corpus, tmp_path, capsys, entry, words):
    entry = {k: (str(corpus["recipe"]) if v == "RECIPE" else v) for k, v in entry.items()}
    cands = _candidates(tmp_path / "c.yaml", [{"name": "fine", "recipe": str(corpus["recipe"])}, entry])
    assert _learn(corpus, cands, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not (tmp_path / "out" / "fine").exists()


def test_default_valid_sets_put_the_recipe_spec_under_clean_and_noisy():
    assert default_valid_specs("demo:${R}:valid:reverb") == {"clean": "demo:${R}:valid:reverb:clean",
                                                            "noisy": "demo:${R}:valid:reverb:noisy"}
    assert default_valid_specs("wham:/w:cv:min:8k:noisy")["clean"] == "wham:/w:cv:min:8k:clean"
    assert default_valid_specs("folder:/m:/a,/b") == {"valid": "folder:/m:/a,/b"}


def test_a_recipe_stop_rule_does_not_end_a_race_unless_the_candidate_asks(tmp_path):
    # bundled/tfacm-lite stops after 15 epochs without a better score and caps at 200 epochs
    plain = candidate_config(Candidate("a", "bundled/tfacm-lite"), seed=3)
    assert plain.schedule.stop_patience == NEVER_STOP and plain.max_epochs == NEVER_STOP and plain.seed == 3
    own = candidate_config(Candidate("b", "bundled/tfacm-lite", ("schedule.stop_patience=7", "max_epochs=9")), seed=0)
    assert own.schedule.stop_patience == 7 and own.max_epochs == 9


def test_learn_candidate_prints_a_candidates_recipe_then_its_overrides(tmp_path, capsys, monkeypatch):
    import sys

    from bench.learn.candidates import NOT_A_CANDIDATE
    from bench.learn.candidates import main as learn_candidate

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"candidates": [
        {"name": "a", "recipe": "bundled/tfacm-lite"},
        {"name": "lite", "recipe": "bundled/tf-mask-blstm", "overrides": ["model.name=sudormrf-0.5x", "optim.lr=0.002"]}]}))
    monkeypatch.setattr(sys, "argv", ["learn-candidate", "lite", "--candidates", str(path)])
    learn_candidate()
    assert capsys.readouterr().out.splitlines() == ["bundled/tf-mask-blstm", "model.name=sudormrf-0.5x", "optim.lr=0.002"]
    # An unknown name exits 3 (train_pair.sh then trains it as a preset); a broken file exits 1 with its
    # reason, so the script stops instead of treating the file's error as "not a candidate".
    monkeypatch.setattr(sys, "argv", ["learn-candidate", "b", "--candidates", str(path)])
    with pytest.raises(SystemExit) as unknown:
        learn_candidate()
    assert unknown.value.code == NOT_A_CANDIDATE == 3
    assert "no candidate named 'b'" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["learn-candidate", "a", "--candidates", str(tmp_path / "none.yaml")])
    with pytest.raises(SystemExit, match="no such candidates file") as broken:
        learn_candidate()
    assert broken.value.code != NOT_A_CANDIDATE


def test_the_plain_bench_command_still_parses_without_a_subcommand():
    args = build_parser().parse_args(["bench", "--quick", "--threads", "3"])
    assert args.bench_command is None and args.quick and args.threads == 3
    args = build_parser().parse_args(["bench", "learn", "--render", "d", "--threads", "4"])
    assert args.bench_command == "learn" and args.render == "d" and args.threads == 4


def test_a_candidate_the_trainer_stops_early_is_scored_where_it_stopped(corpus, tmp_path, capsys):
    cands = _candidates(tmp_path / "c.yaml", [{"name": "short", "recipe": str(corpus["recipe"]),
                                               "overrides": ["max_steps=6"]}])
    out = tmp_path / "out"
    assert _learn(corpus, cands, out) == 0
    assert "stopped by itself (max_steps)" in capsys.readouterr().out
    curve = _curve(out / "short")
    assert [p["step"] for p in curve] == [6] and curve[0]["train_minutes"] < float(BUDGET)
    row = json.loads((out / "results.json").read_text())["candidates"][0]
    assert row["status"] == "stopped" and row["stopped"] == "max_steps"
    assert _learn(corpus, cands, out) == 0 and "skipped" in capsys.readouterr().out


def test_a_child_command_line_parses_back_to_the_same_options(tmp_path):
    from bench.learn.run import _child_env, child_argv

    options = LearnOptions(budget_minutes=0.025, eval_every_minutes=0.0125, threads=1, seed=3,
                           valid={"clean": "folder:/m:/a,/b"}, valid_examples=2, train_examples=4,
                           valid_seconds=0.25, jobs=2)
    argv = child_argv(tmp_path / "c.yaml", tmp_path / "out", options, "snr")
    args = build_parser().parse_args(argv[3:])  # after python -m speechsep
    assert args.child and args.only == ["snr"] and args.jobs == 2 and args.omp_wait_policy == "inherit"
    assert (args.budget_minutes, args.eval_every_minutes, args.threads, args.seed, args.valid, args.valid_examples,
            args.train_examples, args.valid_seconds) == (0.025, 0.0125, 1, 3, ["clean=folder:/m:/a,/b"], 2, 4, 0.25)
    assert _child_env(options)["OMP_NUM_THREADS"] == "1"


def test_two_candidates_at_once_stop_on_sigterm_resume_and_render_together(corpus, tmp_path, capsys):
    """--jobs 2: each candidate in its own process; SIGTERM to the parent reaches both, which save their
    state; the same command resumes them; the combined outputs always list both."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    recipe = str(corpus["recipe"])
    cands = _candidates(tmp_path / "c.yaml", [
        {"name": "snr", "recipe": recipe},
        {"name": "fast", "recipe": recipe, "overrides": ["optim.lr=0.01"]},
    ])
    out = tmp_path / "out"
    names = ("snr", "fast")
    # 1. a long budget, stopped by SIGTERM to the parent once both candidates have a point
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "speechsep", "bench", "--omp-wait-policy", "inherit", "learn", "--candidates",
            str(cands), "--out", str(out), "--budget-minutes", "1", "--eval-every-minutes", EVERY, "--threads", "1",
            "--valid-examples", "2", *corpus["valid"], "--jobs", "2"]
    parent = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        # curve.jsonl is written (empty) with every save of the state: wait for a first point in it
        def has_point(n):
            curve = out / n / "curve.jsonl"
            return curve.is_file() and curve.read_text().strip() != ""

        while not all(has_point(n) for n in names) and parent.poll() is None:
            assert time.monotonic() < deadline, "no first points"
            time.sleep(0.2)
        parent.send_signal(signal.SIGTERM)
        printed, _ = parent.communicate(timeout=120)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 130, printed
    assert "[snr] training to 1 minutes" in printed and "[fast] training to 1 minutes" in printed
    before = {}
    for n in names:
        state = load_progress(out / n / "bench_state.json")
        assert state.step == read_checkpoint(out / n / "last.pt")["step"] and state.points and not state.error
        assert state.meta["jobs"] == [2] and (out / n / "bench.log").is_file()
        before[n] = _curve(out / n)
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["jobs"] == 2 and {r["name"] for r in results["candidates"]} == set(names)

    # 2. the same command, with the short budget: both resume (their points kept) and finish
    assert _learn(corpus, cands, out, "--jobs", "2") == 0
    printed = capsys.readouterr().out
    assert "[snr] " in printed and "[fast] " in printed
    for n in names:
        curve = _curve(out / n)
        assert curve[:len(before[n])] == before[n] and curve[-1]["train_minutes"] >= float(BUDGET)
        assert read_checkpoint(out / n / "last.pt")["step"] == curve[-1]["step"]
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["jobs"] == 2 and [r["status"] for r in results["candidates"]] == ["done", "done"]
    text = (out / "results.md").read_text()
    assert "2 candidates at a time (`--jobs 2`)" in text and "depend on `--jobs`" in text
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 1 + 2
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"

    # 3. one candidate again (serially) and --render, even from a run description that lists only it
    assert _learn(corpus, cands, out, "--only", "snr") == 0
    assert "skipped" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["candidates"] == ["snr"]  # the run is what --only chose, not the whole file
    assert sorted(r["name"] for r in results["candidates"]) == sorted(names)
    assert all(r["status"] == "done" for r in results["candidates"])
    assert main(["bench", "learn", "--render", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())["candidates"]
    assert sorted(r["name"] for r in rows) == sorted(names) and all(r["jobs"] == [2] for r in rows)
    table = [line for line in (out / "results.md").read_text().splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 2 and all(any(f" {n} " in line or f"**{n}**" in line for line in table) for n in names)
