"""StreamProcessor: any chunking of the input gives the one-piece reference output."""

import numpy as np
import pytest
from serve_testkit import offline_reference, two_tone_mixture

from speechsep.serve.sessions import ServeLimits, StreamProcessor


@pytest.mark.parametrize("client_rate", [8000, 16000, 44100, 48000])
def test_stream_processor_matches_offline_for_uneven_frames(model, client_rate):
    # 7 samples off a round length: at 44.1 kHz the round trip through 8 kHz comes back short, and the
    # session must still return every sample
    wav = two_tone_mixture(client_rate, 0.3)[:-7]
    ref = offline_reference(model, wav, client_rate)
    proc = StreamProcessor(model, client_rate)
    rng = np.random.default_rng(1)
    pieces, pos, starts = [], 0, []
    while pos < wav.size:
        n = int(rng.integers(1, client_rate // 20))
        out, start, compute_ms = proc.process(wav[pos : pos + n])
        pieces.append(out)
        starts.append(start)
        pos += n
        assert compute_ms >= 0
    out, start, _ = proc.process(np.zeros(0, np.float32), last=True)
    pieces.append(out)
    starts.append(start)
    got = np.concatenate(pieces, axis=1)
    assert got.shape == ref.shape == (2, wav.size)
    assert np.max(np.abs(got - ref)) < 1e-5
    # `start` is the running output position, so a client can place every frame
    assert starts == list(np.cumsum([0] + [p.shape[1] for p in pieces[:-1]]))


def test_same_rate_bypasses_the_resamplers(model):
    proc = StreamProcessor(model, model.sample_rate)
    out, _, _ = proc.process(np.ones(10, np.float32))
    assert out.shape == (2, 10) and proc.resampler_delay_ms == 0.0
    # a real round trip has a real filter delay, larger at higher quality
    assert 0 < StreamProcessor(model, 48000, quality="LQ").resampler_delay_ms < StreamProcessor(
        model, 48000, quality="HQ").resampler_delay_ms


def test_non_causal_model_is_refused(model, monkeypatch):
    monkeypatch.setattr(type(model), "is_causal", property(lambda self: False))
    with pytest.raises(ValueError, match="not causal"):
        StreamProcessor(model, 8000)


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_sessions"):
        ServeLimits(max_sessions=0)
    with pytest.raises(ValueError, match="resample_quality"):
        ServeLimits(resample_quality="best")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tfacm-tiny"])
def test_stream_processor_with_a_registered_causal_model(preset):
    import speechsep
    from speechsep.registry import list_presets

    if preset not in {p.name for p in list_presets()}:
        pytest.skip(f"{preset} is not registered yet")
    model = speechsep.build(preset).eval()
    wav = two_tone_mixture(16000, 0.3)
    ref = offline_reference(model, wav, 16000)
    proc = StreamProcessor(model, 16000)
    pieces = [proc.process(frame)[0] for frame in np.array_split(wav, 19)]
    pieces.append(proc.process(np.zeros(0, np.float32), last=True)[0])
    got = np.concatenate(pieces, axis=1)
    assert got.shape == ref.shape == (model.num_sources, wav.size)
    assert np.max(np.abs(got - ref)) <= 1e-4 * max(float(np.sqrt(np.mean(ref**2))), 1e-6) + 1e-6
