import numpy as np
import pytest

from speechsep.data.mixing import MixingConfig, assemble, plan_mixture, render, synthesize
from speechsep.data.rooms import RoomDistribution, sample_room, simulate_room

SR = 8000


def _pools():
    lengths = np.array([3000, 5000, 9000, 40000, 2000, 7000])
    return {"a": np.array([0, 1, 2]), "b": np.array([3]), "c": np.array([4, 5])}, lengths


def test_plan_fills_the_segment_with_two_distinct_speakers():
    pools, lengths = _pools()
    cfg = MixingConfig(segment_seconds=2.0)
    for seed in range(20):
        plan = plan_mixture(np.random.default_rng(seed), pools, lengths, [8000, 4000], cfg, SR)
        assert len(set(plan.speakers)) == 2
        for spk, places in zip(plan.speakers, plan.placements, strict=True):
            end = 0
            for p in places:
                assert p.utterance in pools[spk]
                assert p.start >= end and p.start + p.count <= 16000
                assert p.source_offset + p.count <= lengths[p.utterance]
                end = p.start + p.count
        assert -5 <= plan.relative_level_db <= 5 and -6 <= plan.snr_db <= 3


def test_plan_is_deterministic():
    pools, lengths = _pools()
    a = plan_mixture(np.random.default_rng(3), pools, lengths, [800], MixingConfig(), SR)
    b = plan_mixture(np.random.default_rng(3), pools, lengths, [800], MixingConfig(), SR)
    assert a == b


def test_too_few_speakers_raises():
    with pytest.raises(ValueError, match="need at least 2 speakers"):
        plan_mixture(np.random.default_rng(0), {"a": np.array([0])}, np.array([10]), [5], MixingConfig(), SR)


def test_render_levels_and_sum():
    rng = np.random.default_rng(0)
    pools, lengths = _pools()
    cfg = MixingConfig(segment_seconds=1.0, level_dbfs=(-40.0, -40.0))  # quiet: no peak rescaling
    plan = plan_mixture(rng, pools, lengths, [12000], cfg, SR)
    dry = rng.standard_normal((2, SR)).astype(np.float32)
    room = sample_room(rng, RoomDistribution())
    reverb_rir, direct_rir = simulate_room(room, SR)
    noise = rng.standard_normal(12000).astype(np.float32)
    out = render(dry, reverb_rir, direct_rir, noise, plan, cfg, SR)
    np.testing.assert_allclose(out.mixture, out.reverb.sum(0) + out.noise, atol=1e-6)
    p = np.mean(out.reverb.astype(np.float64) ** 2, axis=1)
    assert 10 * np.log10(p[0] / p[1]) == pytest.approx(plan.relative_level_db, abs=1e-3)
    snr = 10 * np.log10(p.max() / np.mean(out.noise.astype(np.float64) ** 2))
    assert snr == pytest.approx(plan.snr_db, abs=1e-3)
    assert 10 * np.log10(p.max()) == pytest.approx(-40.0, abs=1e-3)
    # the direct-path target got the same gain as the reverberant one of its speaker
    ratio = np.linalg.norm(out.direct[0]) / np.linalg.norm(np.convolve(dry[0], direct_rir[0])[:SR])
    assert 20 * np.log10(ratio) == pytest.approx(out.gains_db[0], abs=1e-3)


def test_render_scales_down_loud_mixtures_consistently():
    rng = np.random.default_rng(1)
    pools, lengths = _pools()
    cfg = MixingConfig(segment_seconds=0.5, level_dbfs=(0.0, 0.0))
    plan = plan_mixture(rng, pools, lengths, [4000], cfg, SR)
    rir = np.zeros((2, 1), np.float32)
    rir[:, 0] = 1
    out = render(rng.standard_normal((2, 4000)).astype(np.float32), rir, rir,
                 rng.standard_normal(4000).astype(np.float32), plan, cfg, SR)
    assert np.abs(out.mixture).max() == pytest.approx(cfg.peak, rel=1e-5)
    np.testing.assert_allclose(out.mixture, out.reverb.sum(0) + out.noise, atol=1e-6)


def test_synthesize_assembles_the_planned_utterances():
    pools, lengths = _pools()
    utterances = [np.full(n, k + 1, np.float32) for k, n in enumerate(lengths)]
    cfg = MixingConfig(segment_seconds=1.0)
    rir = np.zeros((2, 1), np.float32)
    rir[:, 0] = 1
    plan, out = synthesize(np.random.default_rng(2), pools, lengths, utterances.__getitem__,
                           [np.ones(3000, np.float32)], lambda rng: (-1, rir, rir), cfg, SR)
    for k, places in enumerate(plan.placements):
        dry = assemble(places, utterances.__getitem__, SR)
        # identity room: the target is the dry source times its gain
        np.testing.assert_allclose(out.reverb[k], dry * 10 ** (out.gains_db[k] / 20), rtol=1e-5, atol=1e-7)
