"""The iterative paper's grid runner: plan, training through the engine, evaluation, tables, resume."""

import json

import pytest
import torch

from speechsep.audio import write_audio
from speechsep.cli import main as cli_main
from speechsep.experiments.iterative_grid import GridSettings, data_splits, plan, render_tables, run_grid
from speechsep.models.iterative_presets import TABLE4_PAPER


def _examples(n, seed):
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        src = torch.randn(2, 2000, generator=g) * torch.tensor([[1.0], [0.5]])
        items.append((src.sum(0), src))
    return items


@pytest.fixture
def splits():
    return {"train": _examples(4, 1), "valid": _examples(2, 2), "test": _examples(2, 3)}


def _settings(**kw):
    return GridSettings(
        scale="tiny",
        tables=(3,),
        device="cpu",
        progress=False,
        threads=1,
        model_overrides={"dprnn": {"bottleneck": 8, "hidden": 8, "segment_size": 8},
                         "encoder": {"window_ms": 8.0, "hop_ms": 4.0}},
        train_overrides={"max_epochs": 1, "steps_per_epoch": 1, "data.batch_size": 2,
                         "data.segment_seconds": 0.25, "data.valid_segment_seconds": None, "log_every": 1},
        **kw,
    )


def test_plan_shares_models_between_tables():
    jobs = {j.preset: j for j in plan((1, 2, 3, 4), "tiny")}
    # Table 1: 9 rows x 2 domains; Table 2: 2 x 2; Table 3: 2 (freq); Table 4: 3 oracle models more
    assert len(jobs) == 18 + 4 + 2 + 3
    # Table 4 reuses Table 1's detached 1-SIMO/2-SISO models, evaluated with 1-4 iterations
    assert jobs["iter-time-simo1-siso2-it2-detach-tiny"].eval_iterations == (1, 2, 3, 4)
    assert jobs["iter-time-simo1-siso2-it2-nodetach-tiny"].eval_iterations == (2,)
    assert [j.preset for j in plan((3,), "paper")] == ["iter-freq-simo1-siso2-it2-detach-iss",
                                                        "iter-freq-simo1-siso2-it3-detach-iss"]


def test_data_splits():
    assert data_splits("demo:/c") == ("demo:/c:train", "demo:/c:valid", "demo:/c:test")
    assert data_splits("whamr:/w:{split}:8k") == ("whamr:/w:tr:8k", "whamr:/w:cv:8k", "whamr:/w:tt:8k")
    # one split named: it is replaced by each split, the options are kept
    assert data_splits("demo:/c:test:reverb") == ("demo:/c:train:reverb", "demo:/c:valid:reverb",
                                                  "demo:/c:test:reverb")
    assert data_splits("wham:/w:tt:min") == ("wham:/w:tr:min", "wham:/w:cv:min", "wham:/w:tt:min")
    # LibriMix has two training sets: the one named trains
    assert data_splits("librimix:/l:train-360:8k")[:2] == ("librimix:/l:train-360:8k", "librimix:/l:dev:8k")
    assert data_splits("folder:/d/{split}/m:/d/{split}/a")[1] == "folder:/d/valid/m:/d/valid/a"
    with pytest.raises(ValueError, match="'tt' is not a demo split"):
        data_splits("demo:/c:tt")
    with pytest.raises(ValueError, match="no data"):
        data_splits("")


def test_tables_in_the_paper_layout_with_ours_beside_theirs():
    rows = {"iter-time-simo3-siso0-it1-tiny": {"eval": {"1": {"si_sdr": 4.25}}},
            "iter-freq-simo1-siso2-it1-oracle-tiny": {"eval": {"3": {"si_sdr": -1.04}}}}
    texts = render_tables((1, 4), "tiny", rows)
    table1 = texts[1].splitlines()
    assert table1[2].startswith("| SIMO layers | SISO layers | Iteration | Effective network depth | Output detach |")
    assert table1[4] == "| 3 | 0 | 1 | 3 | – | 4.2 | 8.7 | … | 8.4 |"
    assert table1[4 + 7] == "| 1 | 2 | 3 | 9 | ✗ | … | 9.6 | … | 9.5 |"
    table4 = [line for line in texts[4].splitlines() if line.startswith("| ")]
    assert len(table4) == 1 + 12  # header, then 3 training x 4 inference iterations
    # training 1 iteration, inference 3 iterations: time, freq, freq + oracle (ours, paper)
    paper = TABLE4_PAPER[1][3]
    assert table4[3] == f"|  | 3 | … | {paper[0]} | … | {paper[1]} | -1.0 | {paper[2]} |"


@pytest.mark.slow
def test_grid_trains_evaluates_writes_and_resumes(tmp_path, splits):
    out = tmp_path / "grid"
    results = run_grid(_settings(), out, splits=splits)
    assert results["failed"] == {}
    assert set(results["rows"]) == {"iter-freq-simo1-siso2-it2-detach-iss-tiny",
                                    "iter-freq-simo1-siso2-it3-detach-iss-tiny"}
    run = out / "runs" / "iter-freq-simo1-siso2-it3-detach-iss-tiny"
    assert (run / "done.json").exists() and (run / "best.pt").exists()
    score = json.loads((run / "eval" / "it3.json").read_text())
    assert score["iterations"] == 3 and score["n"] == 2 and abs(score["si_sdr"]) < 100
    table = (out / "tables" / "table3.md").read_text()
    assert f"| 1 | 2 | 3 | {score['si_sdr']:.1f} | 9.7 |" in table
    assert json.loads((out / "results.json").read_text())["scale"] == "tiny"

    def must_not_train(*args):
        raise AssertionError("a finished row was trained again")

    threads = torch.get_num_threads()
    again = run_grid(_settings(), out, splits=splits, trainer=must_not_train)
    assert torch.get_num_threads() == threads
    assert again["failed"] == {} and again["rows"].keys() == results["rows"].keys()
    assert again["rows"]["iter-freq-simo1-siso2-it3-detach-iss-tiny"]["eval"]["3"]["si_sdr"] == score["si_sdr"]


def test_a_failing_row_is_recorded_and_the_grid_goes_on(tmp_path, splits):
    calls = []

    def flaky(job, settings, run_dir, sp):
        calls.append(job.preset)
        raise RuntimeError("out of memory")

    results = run_grid(_settings(), tmp_path, splits=splits, trainer=flaky)
    assert len(calls) == 2 and set(results["failed"]) == set(calls)
    assert "out of memory" in (tmp_path / "runs" / calls[0] / "error.txt").read_text()
    assert "| 1 | 2 | 2 | … | 9.6 |" in (tmp_path / "tables" / "table3.md").read_text()


def test_cli_plan(capsys):
    assert cli_main(["experiment", "iterative", "--tables", "2", "--scale", "paper", "--data", "demo:/x",
                     "--out", "unused", "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "iter-time-simo3-siso6-it1-layerwise " in printed and "4 models" in printed


def _folder_splits(root):
    """A ``folder:`` corpus with train/valid/test sub-folders; returns its spec with ``{split}`` marked."""
    for split, (n, seed) in {"train": (4, 1), "valid": (2, 2), "test": (2, 3)}.items():
        for i, (mix, src) in enumerate(_examples(n, seed)):
            for sub, wav in (("mix", mix), ("s1", src[0]), ("s2", src[1])):
                (root / split / sub).mkdir(parents=True, exist_ok=True)
                write_audio(root / split / sub / f"{i}.wav", wav.numpy(), 8000, subtype="FLOAT")
    return f"folder:{root}/{{split}}/mix:{root}/{{split}}/s1,{root}/{{split}}/s2"


@pytest.mark.slow
def test_cli_runs_the_grid_end_to_end_and_resumes(tmp_path, capsys):
    spec = _folder_splits(tmp_path / "data")
    out = tmp_path / "grid"
    argv = ["experiment", "iterative", "--tables", "3", "--scale", "tiny", "--data", spec, "--out", str(out),
            "--device", "cpu", "--epochs", "1", "--steps-per-epoch", "2", "--set", "data.batch_size=2",
            "--set", "data.segment_seconds=0.25", "--set", "data.valid_segment_seconds=null",
            "--set", "data.target=dry", "--threads", "1", "--no-progress"]
    assert cli_main(argv) == 0
    assert "(2 of 2 models done)" in capsys.readouterr().out
    runs = sorted((out / "runs").iterdir())
    assert [r.name for r in runs] == ["iter-freq-simo1-siso2-it2-detach-iss-tiny",
                                      "iter-freq-simo1-siso2-it3-detach-iss-tiny"]
    # the CLI's budget reached the training engine: 1 epoch x 2 steps per row
    for run in runs:
        assert json.loads((run / "done.json").read_text())["step"] == 2
    table = (out / "tables" / "table3.md").read_text()
    assert "…" not in table
    scores = {r.name: json.loads((r / "eval" / f"it{2 + i}.json").read_text())["si_sdr"] for i, r in enumerate(runs)}
    assert f"| 1 | 2 | 3 | {scores[runs[1].name]:.1f} | 9.7 |" in table
    # the same command again: every row is finished, so nothing is trained or evaluated again
    stamps = {p: p.stat().st_mtime_ns for r in runs for p in [r / "done.json", r / "last.pt", *r.glob("eval/*")]}
    assert cli_main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (out / "tables" / "table3.md").read_text() == table


def test_processes_share_rows_through_claims(tmp_path, splits):
    """A row claimed by a live process is left to it; a claim whose process is gone is taken over."""
    import os
    import socket
    import subprocess
    import sys

    first, second = [j.preset for j in plan((3,), "tiny")]
    live = tmp_path / "runs" / first / "claim.lock"
    live.parent.mkdir(parents=True)
    live.write_text(f"{socket.gethostname()} {os.getpid()}\n")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "runs" / second / "claim.lock"
    stale.parent.mkdir(parents=True)
    stale.write_text(f"{socket.gethostname()} {gone.stdout.strip()}\n")
    calls = []

    def record(job, settings, run_dir, sp):
        calls.append(job.preset)
        assert (run_dir / "claim.lock").read_text().split()[1] == str(os.getpid())
        raise RuntimeError("stop here")

    results = run_grid(_settings(), tmp_path, splits=splits, trainer=record)
    assert calls == [second]
    assert results["running_elsewhere"] == [first] and list(results["failed"]) == [second]
    # the live claim is untouched; this process released the one it took
    assert live.exists() and not stale.exists()


def test_an_unwritten_claim_counts_as_live_only_for_a_minute(tmp_path):
    import os
    import time

    from speechsep.experiments.iterative_grid import _claim_is_live

    lock = tmp_path / "claim.lock"
    lock.write_text("")
    assert _claim_is_live(lock)
    old = time.time() - 120
    os.utime(lock, (old, old))
    assert not _claim_is_live(lock)
    assert not _claim_is_live(tmp_path / "missing.lock")
