"""What a new user meets outside ``make`` (issue 19): thread defaults, progress, notes, early and named
errors, one-call Python separation, consistent outputs."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import speechsep
from speechsep.audio import write_audio
from speechsep.checkpoint import save_checkpoint
from speechsep.cli import main, thread_environment
from speechsep.inference.streaming import StreamStats

SR_IN = 16000


def _wav(path, seconds, rate=SR_IN, seed=0):
    x = 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate)).astype("float32")
    sf.write(path, x, rate, subtype="FLOAT")
    return x


@pytest.fixture
def ck(tmp_path, band_model):
    return str(save_checkpoint(tmp_path / "model.pt", band_model(sample_rate=8000, cutoff_hz=600.0)))


# 1. thread defaults


def test_import_speechsep_does_not_load_torch():
    # so that the program can set OpenMP's environment before torch reads it
    code = "import sys, speechsep, speechsep.cli; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_program_sets_a_sleeping_wait_policy_unless_told_otherwise():
    assert thread_environment(["separate", "a.wav"], {}) == {"OMP_WAIT_POLICY": "PASSIVE", "THP_MEM_ALLOC_ENABLE": "1"}
    assert thread_environment(["-v", "separate"], {"OMP_WAIT_POLICY": "ACTIVE"}) == {"THP_MEM_ALLOC_ENABLE": "1"}
    assert thread_environment(["stream", "a.wav"], {}) == {}  # one thread by default; --threads N wants spinning
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "THP_MEM_ALLOC_ENABLE")}
    code = ("import os, sys; from speechsep.cli import main; main(['info']); assert 'torch' in sys.modules; "
            "print('policy', os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "policy PASSIVE" in out


def test_stream_runs_on_one_thread_by_default_with_the_bundled_causal_model(tmp_path, capsys):
    x = _wav(tmp_path / "talk.wav", 0.5)
    assert main(["stream", str(tmp_path / "talk.wav"), "-o", str(tmp_path / "out")]) == 0  # no --model
    out = capsys.readouterr().out
    assert "1 thread" in out and "at 16000 Hz" in out
    assert "the model works at 8000 Hz" in out and "nothing above 4000 Hz" in out
    for s in (1, 2):  # written at the input's rate and length, as `separate` does
        data, sr = sf.read(tmp_path / "out" / f"talk_s{s}.wav")
        assert sr == SR_IN and data.shape == x.shape


def test_a_too_slow_stream_says_what_to_change(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    slow = StreamStats(8000, 128, 127, 0.032, (0.02, 0.02), threads=1, split_threads=True)
    text = slow.summary()
    assert "too slow" in text and "--threads 2" in text and "--chunk-ms 32" in text and "tfacm-lite" in text
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    two = StreamStats(8000, 128, 127, 0.032, (0.02, 0.02), threads=2, split_threads=True)
    assert "unset OMP_WAIT_POLICY" in two.summary()
    fast = StreamStats(8000, 128, 127, 0.032, (0.001, 0.001), threads=1)
    assert "keeps up" in fast.summary() and "to keep up" not in fast.summary()


# 2. progress


def _tty(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


def test_separate_shows_a_progress_bar_over_segments_only_on_a_terminal(tmp_path, ck, capsys, monkeypatch):
    _wav(tmp_path / "long.wav", 3.0)
    args = ["separate", "--model", ck, str(tmp_path / "long.wav"), "-o", str(tmp_path / "out"), "--no-plot",
            "--segment-seconds", "1", "--overlap-seconds", "0.25"]
    assert main(args) == 0
    assert "segment" not in capsys.readouterr().err  # not a terminal: quiet
    _tty(monkeypatch)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "long.wav" in err and "/4" in err and "segment" in err  # 3 s in 1 s segments with 0.25 s overlap


def test_stream_shows_a_progress_bar_over_chunks_on_a_terminal(tmp_path, capsys, monkeypatch):
    _wav(tmp_path / "mix.wav", 0.2, rate=8000)
    _tty(monkeypatch)
    assert main(["stream", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out"), "--model", "tfacm-tiny"]) == 0
    err = capsys.readouterr().err
    assert "chunk" in err and "/13" in err  # 1600 samples in chunks of 128


# 3. band-limiting and 6. very short inputs, said


def test_separate_says_when_the_output_is_band_limited_and_when_the_input_is_very_short(tmp_path, ck, capsys):
    _wav(tmp_path / "wide.wav", 1.0)
    _wav(tmp_path / "blip.wav", 0.01)  # 10 ms
    assert main(["separate", "--model", ck, str(tmp_path / "wide.wav"), str(tmp_path / "blip.wav"),
                 "-o", str(tmp_path / "out"), "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "the model works at 8000 Hz: the outputs are written at the input's 16000 Hz but hold nothing above 4000 Hz" in out
    assert "only 10 ms long; separated anyway" in out
    assert sf.read(tmp_path / "out" / "blip_s1.wav")[0].shape == (160,)


# 4. one call from Python


def test_top_level_separate_and_separate_file(tmp_path, band_model, ck):
    model = band_model(sample_rate=8000, cutoff_hz=600.0)
    x = _wav(tmp_path / "mix.wav", 0.5)
    est = speechsep.separate(x, SR_IN, model=model)
    assert isinstance(est, np.ndarray) and est.shape == (2, x.size)
    as_tensor = speechsep.separate(torch.from_numpy(x), SR_IN, model=model)
    assert isinstance(as_tensor, torch.Tensor) and np.allclose(as_tensor.numpy(), est)
    sources, rate = speechsep.separate_file(tmp_path / "mix.wav", tmp_path / "out", model=ck)
    assert rate == SR_IN and np.allclose(sources, est, atol=1e-6)
    assert sf.read(tmp_path / "out" / "mix_s2.wav")[0].shape == (x.size,)
    with pytest.raises(ValueError, match=r"shape \(2, 8000\)"):
        speechsep.separate(np.zeros((2, 8000), "float32"), SR_IN, model=model)


# 5. errors found early


def test_out_naming_an_existing_file_is_refused_before_anything_is_loaded(tmp_path, capsys):
    _wav(tmp_path / "mix.wav", 0.5)
    (tmp_path / "taken").write_text("mine")
    # the model does not exist either: the -o check comes first, before loading or separating
    assert main(["separate", "--model", str(tmp_path / "none.pt"), str(tmp_path / "mix.wav"),
                 "-o", str(tmp_path / "taken")]) == 2
    assert "a file of that name exists" in capsys.readouterr().err
    assert main(["stream", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "taken"), "--model", "none.pt"]) == 2
    assert "a file of that name exists" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "mine"


# `export iterative-freq` (a non-causal model) now writes the offline whole-file graph, and a model
# whose forward cannot be traced fails in one line: tests/export/test_offline_onnx.py
# (test_cli_exports_the_bundled_iterative_model, test_unsupported_model_fails_with_one_line_and_writes_nothing).


# 6. consistent outputs; a bad file in a batch


def test_written_wavs_have_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_audio(tmp_path / "a.wav", np.zeros(10, "float32"), 8000)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_skip_bad_separates_the_rest_names_the_bad_file_and_exits_non_zero(tmp_path, ck, capsys):
    _wav(tmp_path / "good.wav", 0.5)
    (tmp_path / "bad.wav").write_bytes(b"RIFF this is not audio")
    args = ["separate", "--model", ck, str(tmp_path / "bad.wav"), str(tmp_path / "good.wav"),
            "-o", str(tmp_path / "out"), "--no-plot"]
    assert main(args) == 2 and not (tmp_path / "out").exists()  # default: stop before writing anything
    capsys.readouterr()
    assert main([*args, "--skip-bad"]) == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_s1.wav", "good_s2.wav"]
    assert "skipped 1 of 2 input(s)" in captured.err
    assert f"{tmp_path / 'bad.wav'}: cannot be decoded as audio" in captured.err
