"""The streaming contract, checked for every registry preset whose model is causal.

A causal model must (STYLE.md, models/base.py):
* never let an output sample before ``t - latency`` depend on input at or after ``t``;
* stream: ``step`` over chunks of any size returns exactly ``n`` samples per ``n`` and their
  concatenation is the offline forward delayed by ``latency`` (here: chunks of one hop, a prime
  number of hops, and one second);
* keep a state whose size does not grow with the stream (10 s of stream = 1 s of stream).

Presets run shrunk: every field in which the family's ``<family>-tiny`` preset differs from the
family's default config is applied to the preset (so ablation switches survive, sizes shrink).
A new causal model joins this test by registering presets (and a ``-tiny`` one).
"""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest
import torch

from speechsep.inference.streaming import stream_through_model
from speechsep.registry import build, get_preset, list_presets, model_class


def _shrink_overrides(family: str) -> dict:
    try:
        tiny = get_preset(f"{family}-tiny").config
    except KeyError:
        return {}
    default = model_class(family).config_class()
    return {f.name: getattr(tiny, f.name) for f in dataclasses.fields(default)
            if getattr(tiny, f.name) != getattr(default, f.name)}


def _causal_presets() -> list[str]:
    names = []
    for preset in list_presets():
        try:
            causal = model_class(preset.family)(preset.config).is_causal
        except Exception as err:  # a preset that cannot even build fails in its own test below
            causal = f"broken: {err}"
        if causal:
            names.append(preset.name)
    return sorted(names)


CAUSAL = _causal_presets()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models stream as hundreds of small ops, where a second thread only adds synchronisation
    (on a loaded 2-core machine, 10x slower); the arithmetic checked here does not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.cache
def _tiny(name: str):
    torch.manual_seed(0)
    preset = get_preset(name)
    return build(name, **_shrink_overrides(preset.family)).eval()


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def test_tfacm_presets_are_in_the_contract():
    assert {"tfacm-large", "tfacm-small", "tfacm-tiny", "tfacm-large-no-car"} <= set(CAUSAL)
    assert "tfacm-large-no-cm" not in CAUSAL  # the unaligned ablation reads the future


@pytest.mark.parametrize("name", CAUSAL)
def test_future_input_never_changes_earlier_output(name):
    model = _tiny(name)
    assert model.is_causal and model.latency >= 0
    sr = model.sample_rate
    x = torch.randn(2, sr // 2)
    t = int(0.3 * sr)
    x2 = x.clone()
    x2[:, t:] = torch.randn(2, x.shape[-1] - t)
    with torch.no_grad():
        y, y2 = model(x), model(x2)
    assert y.shape == (2, model.num_sources, x.shape[-1])
    keep = t - model.latency
    scale = _rms(y)
    assert scale > 0
    assert float((y[..., :keep] - y2[..., :keep]).abs().max()) <= 1e-6 * scale
    # the future does reach the output eventually (the check above can fail)
    assert float((y[..., t:] - y2[..., t:]).abs().max()) > 1e-3 * scale


@pytest.mark.parametrize("name", CAUSAL)
@pytest.mark.parametrize("chunk", ["hop", "prime-hops", "1s"])
def test_stream_equals_offline_delayed_by_latency(name, chunk):
    # float64: chunked and whole-utterance matrix products round differently in float32 (about
    # 2e-5 of the output RMS for random-weight tfacm-lite, whose outputs are small), and that noise
    # would hide a real mismatch; in float64 an arithmetic difference cannot hide below 1e-5 x RMS.
    model = copy.deepcopy(_tiny(name)).double()  # a copy: _tiny is cached and shared by other tests
    sr, hop = model.sample_rate, model.hop
    chunk_samples = {"hop": hop, "prime-hops": 7 * hop, "1s": sr}[chunk]
    seconds = 1.3 if chunk == "1s" else 0.25
    x = torch.randn(1, int(seconds * sr), dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
    ys, stats = stream_through_model(model, x, chunk_samples, align=False)
    lat = model.latency
    assert ys.shape == y.shape
    assert stats.num_chunks == -(-x.shape[-1] // chunk_samples)
    assert lat == 0 or float(ys[..., :lat].abs().max()) == 0.0
    err = float((ys[..., lat:] - y[..., : y.shape[-1] - lat]).abs().max())
    assert err <= 1e-5 * _rms(y), f"stream differs from offline by {err:.3g} (output RMS {_rms(y):.3g})"


def _state_size(state) -> tuple[int, int]:
    """(tensors, elements) in a nested state of dataclasses, tuples, lists, dicts and tensors."""
    if isinstance(state, torch.Tensor):
        return 1, state.numel()
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        items = [getattr(state, f.name) for f in dataclasses.fields(state)]
    elif isinstance(state, dict):
        items = list(state.values())
    elif isinstance(state, (list, tuple)):
        items = list(state)
    else:
        return 0, 0
    sizes = [_state_size(item) for item in items]
    return sum(s[0] for s in sizes), sum(s[1] for s in sizes)


@pytest.mark.parametrize("name", CAUSAL)
def test_state_size_does_not_grow(name):
    model = _tiny(name)
    sr = model.sample_rate
    sizes = {}
    with torch.inference_mode():
        state = model.init_state(1)
        for second in range(1, 11):
            _, state = model.step(torch.randn(1, sr), state)
            sizes[second] = _state_size(state)
    assert sizes[1][1] > 0
    assert sizes[10] == sizes[1]


def test_stream_through_model_aligned_equals_offline_and_times_every_chunk():
    model = _tiny("tfacm-tiny")
    x = torch.randn(2, 3001)
    ticks = iter(range(1000))
    out, stats = stream_through_model(model, x, 128, clock=lambda: float(next(ticks)))
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(out, y, rtol=0, atol=1e-5 * _rms(y))
    assert stats.num_chunks == 24 and stats.chunk_seconds == (1.0,) * 24  # the fake clock ticks 1 per call
    assert stats.real_time_factor == pytest.approx(24 / (3001 / 8000))
    assert stats.latency_ms == pytest.approx(1000 * model.latency / 8000)
    assert "p95" in stats.summary()


def test_stream_cli_writes_sources_and_reports(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from speechsep.cli import main

    wav = tmp_path / "mix.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(4000)).astype("float32"), 8000)
    assert main(["stream", str(wav), "-o", str(tmp_path / "out"), "--model", "tfacm-tiny", "--chunk-ms", "16"]) == 0
    text = capsys.readouterr().out
    assert "real-time factor" in text and "p50" in text and "latency: algorithmic 7.88 ms" in text
    for s in (1, 2):
        data, sr = sf.read(tmp_path / "out" / f"mix_s{s}.wav")
        assert sr == 8000 and data.shape == (4000,)


def test_stream_cli_splits_threads_and_warns_about_a_sleeping_wait_policy(tmp_path, capsys, monkeypatch):
    import numpy as np
    import soundfile as sf

    from speechsep.cli import main

    wav = tmp_path / "mix.wav"
    sf.write(wav, (0.1 * np.random.default_rng(1).standard_normal(2000)).astype("float32"), 8000)
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    args = ["stream", str(wav), "-o", str(tmp_path / "out"), "--model", "tfacm-tiny"]
    assert main([*args, "--threads", "2"]) == 0
    captured = capsys.readouterr()
    assert "2 threads (each step on 1, its LSTMs and attention on 2)" in captured.out
    assert "OMP_WAIT_POLICY=PASSIVE" in captured.err
    assert torch.get_num_threads() == before  # the split is undone after the stream
    with pytest.raises(SystemExit, match="--threads must be at least 1"):
        main([*args, "--threads", "0"])
