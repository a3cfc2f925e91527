import math

import numpy as np
import pytest

from speechsep.data.mixing import (
    Equalizer,
    MixingConfig,
    assemble,
    equalize,
    plan_mixture,
    random_equalizer,
    render,
    synthesize,
)
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


def _identity_rir():
    rir = np.zeros((2, 1), np.float32)
    rir[:, 0] = 1
    return rir


def test_noise_conditions_are_drawn_by_weight_and_rendered():
    pools, lengths = _pools()
    cfg = MixingConfig(segment_seconds=1.0, noise_weights={"none": 1.0, "wide": 1.0, "whamr": 2.0})
    seen = {"none": 0, "wide": 0, "whamr": 0}
    for seed in range(400):
        plan = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], cfg, SR)
        seen[plan.noise] += 1
        if plan.noise == "none":
            assert np.isnan(plan.snr_db)
        elif plan.noise == "wide":
            assert -5 <= plan.snr_db <= 20
        else:
            assert -6 <= plan.snr_db <= 3
    assert 60 < seen["none"] < 140 and 60 < seen["wide"] < 140 and 150 < seen["whamr"] < 250
    rng = np.random.default_rng(5)
    plan = plan_mixture(rng, pools, lengths, [8000], MixingConfig(segment_seconds=1.0, noise_weights={"none": 1}), SR)
    out = render(rng.standard_normal((2, SR)).astype(np.float32), _identity_rir(), _identity_rir(),
                 rng.standard_normal(8000).astype(np.float32), plan, MixingConfig(segment_seconds=1.0), SR)
    assert not out.noise.any() and out.noise_gain_db == -np.inf
    np.testing.assert_allclose(out.mixture, out.reverb.sum(0), atol=1e-7)


def test_bad_mixing_settings_are_refused():
    with pytest.raises(ValueError, match="noise_weights"):
        MixingConfig(noise_weights={"loud": 1.0})
    with pytest.raises(ValueError, match="dry_probability"):
        MixingConfig(dry_probability=1.5)
    with pytest.raises(ValueError, match="speed_range"):
        MixingConfig(speed_range=(1.2, 0.9))


def test_partial_overlap_windows():
    pools, lengths = _pools()
    cfg = MixingConfig(segment_seconds=2.0, partial_overlap_probability=1.0, overlap_range=(0.3, 0.5),
                       lead_seconds=(0.0, 0.0))
    segment = 2 * SR
    for seed in range(20):
        plan = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], cfg, SR)
        assert 0.3 <= plan.overlap <= 0.5
        spans = [(min(p.start for p in places), max(p.start + p.count for p in places)) for places in plan.placements]
        first, second = sorted(spans)
        assert first[0] == 0 and second[1] <= segment
        # the later speaker starts where the shared stretch begins: (1 - o) / 2 of the segment
        assert second[0] == pytest.approx(segment - round((1 + plan.overlap) / 2 * segment), abs=1)
        assert first[1] <= round((1 + plan.overlap) / 2 * segment)


def test_speed_perturbation_changes_length_and_pitch():
    pools, lengths = _pools()
    t = np.arange(40000) / SR
    utterances = [np.sin(2 * np.pi * 200 * t[:n]).astype(np.float32) for n in lengths]
    cfg = MixingConfig(segment_seconds=1.0, speed_range=(1.1, 1.1), lead_seconds=(0.0, 0.0))
    plan, out = synthesize(np.random.default_rng(2), pools, lengths, utterances.__getitem__,
                           [np.ones(3000, np.float32)], lambda rng: (-1, _identity_rir(), _identity_rir()), cfg, SR)
    assert plan.speeds == [1.1, 1.1]
    for places in plan.placements:
        for p in places:
            assert p.source_offset + p.count <= round(lengths[p.utterance] / 1.1)
    # a 200 Hz tone played 1.1x faster is a 220 Hz tone
    spectrum = np.abs(np.fft.rfft(out.reverb[0][: SR // 2]))
    assert np.fft.rfftfreq(SR // 2, 1 / SR)[spectrum.argmax()] == pytest.approx(220, abs=4)


def test_bandwidth_matching_lowpasses_the_wider_speaker():
    pools, lengths = _pools()
    rng = np.random.default_rng(0)
    utterances = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    bandwidths = np.array([4000.0, 4000.0, 4000.0, 2000.0, 4000.0, 4000.0])  # speaker b is narrow
    cfg = MixingConfig(segment_seconds=1.0)
    for seed in range(10):
        plan, out = synthesize(np.random.default_rng(seed), pools, lengths, utterances.__getitem__,
                               [np.ones(3000, np.float32)], lambda rng: (-1, _identity_rir(), _identity_rir()), cfg,
                               SR, bandwidths=bandwidths)
        spectra = np.abs(np.fft.rfft(out.reverb, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(SR, 1 / SR)
        high = spectra[:, freqs > 2100].sum(-1) / spectra.sum(-1)
        if "b" in plan.speakers:
            assert out.bandwidth_hz == 2000.0 and high.max() < 1e-6
        else:
            assert np.isinf(out.bandwidth_hz) and high.min() > 0.2


def test_speakers_come_from_distinct_actor_groups():
    pools = {f"s{k}": np.array([k]) for k in range(6)}
    lengths = np.full(6, 9000)
    groups = {"s0": "g1", "s1": "g1", "s2": "g1", "s3": "g1", "s4": "g2", "s5": "g2"}
    for seed in range(40):
        plan = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], MixingConfig(), SR, groups)
        assert {groups[s] for s in plan.speakers} == {"g1", "g2"}


def test_an_equalizer_scales_each_frequency_by_its_response_within_its_limit():
    eq = Equalizer(tilt_db=0.0, centers_hz=(1000.0,), widths_oct=(0.5,), gains_db=(6.0,), limit_db=6.0)
    t = np.arange(SR) / SR
    for freq, want_db in ((1000.0, 6.0), (2000.0, 6.0 * np.exp(-0.5 * (1 / 0.5) ** 2)), (250.0, 6.0 * np.exp(-8.0))):
        tone = np.sin(2 * np.pi * freq * t).astype(np.float32)
        got = equalize(tone, eq, SR)[SR // 4: -SR // 4]  # away from the FFT's wrap-around
        gain_db = 20 * np.log10(np.abs(got).max() / np.abs(tone[SR // 4: -SR // 4]).max())
        assert gain_db == pytest.approx(want_db, abs=0.05)
    rng = np.random.default_rng(0)
    for _ in range(20):
        response = random_equalizer(rng, 9.0).response_db(np.linspace(0, 4000, 200))
        assert np.abs(response).max() <= 9.0 and np.ptp(response) > 0.5  # bounded and not flat


def test_channel_eq_is_off_by_default_and_colours_each_target_when_on():
    pools, lengths = _pools()
    rng = np.random.default_rng(0)
    utterances = [rng.standard_normal(n).astype(np.float32) for n in lengths]

    def draw(cfg):
        return synthesize(np.random.default_rng(4), pools, lengths, utterances.__getitem__, [np.ones(3000, np.float32)],
                          lambda r: (-1, _identity_rir(), _identity_rir()), cfg, SR)

    plain_plan, plain = draw(MixingConfig(segment_seconds=1.0, noise_weights={"none": 1.0}))
    assert plain_plan.equalizers == []
    plan, out = draw(MixingConfig(segment_seconds=1.0, noise_weights={"none": 1.0}, channel_eq_db=9.0))
    assert len(plan.equalizers) == 2 and plan.placements == plain_plan.placements
    np.testing.assert_allclose(out.mixture, out.reverb.sum(0), atol=1e-6)  # the targets carry the EQ
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    for k, eq in enumerate(plan.equalizers):
        # white noise in, so the target's band energies follow the equaliser's response
        ratio = np.abs(np.fft.rfft(out.reverb[k])) / np.abs(np.fft.rfft(plain.reverb[k]))
        lo, hi = (freqs > 200) & (freqs < 600), (freqs > 2000) & (freqs < 3500)
        measured = 20 * np.log10(np.median(ratio[hi]) / np.median(ratio[lo]))
        expected = np.median(eq.response_db(freqs[hi])) - np.median(eq.response_db(freqs[lo]))
        assert measured == pytest.approx(expected, abs=1.0)
    with pytest.raises(ValueError, match="channel_eq_db"):
        MixingConfig(channel_eq_db=-1.0)


def _cast():
    """Two groups: a cast of four characters (two low, two high voices) and a reader of their own."""
    pools = {s: np.array([k]) for k, s in enumerate(["low1", "low2", "high1", "high2", "reader"])}
    lengths = np.array([9000, 9000, 9000, 9000, 9000])
    groups = {"low1": "cast", "low2": "cast", "high1": "cast", "high2": "cast", "reader": "solo"}
    pitch = {"low1": 110.0, "low2": 120.0, "high1": 220.0, "high2": math.nan, "reader": 150.0}
    return pools, lengths, groups, pitch


def test_pitch_pairing_pairs_one_cast_only_when_the_voices_are_semitones_apart():
    pools, lengths, groups, pitch = _cast()
    cfg = MixingConfig(distinct_pitch_semitones=6.0)
    same_cast = set()
    for seed in range(300):
        plan = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], cfg, SR, groups, pitch)
        if {groups[s] for s in plan.speakers} == {"cast"}:
            same_cast.add(frozenset(plan.speakers))
    # 110 / 220 Hz are 12 semitones apart, 120 / 220 Hz 10.5; 110 / 120 Hz 1.5, and an unknown pitch never pairs
    assert same_cast == {frozenset({"low1", "high1"}), frozenset({"low2", "high1"})}
    with pytest.raises(ValueError, match="speaker pitch"):
        plan_mixture(np.random.default_rng(0), pools, lengths, [800], cfg, SR, groups)
    with pytest.raises(ValueError, match="distinct_pitch_semitones"):
        MixingConfig(distinct_pitch_semitones=-1.0)


def test_default_pairing_is_the_draw_corpora_were_built_with():
    pools, lengths, groups, pitch = _cast()
    for seed in range(30):
        legacy = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], MixingConfig(), SR, groups)
        with_pitch = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], MixingConfig(), SR, groups, pitch)
        assert legacy == with_pitch and {groups[s] for s in legacy.speakers} == {"cast", "solo"}


def test_close_pitch_pairing_draws_the_partner_nearest_in_pitch_when_one_may_join():
    pools, lengths, groups, pitch = _cast()
    partners = {p: set() for p in (0.0, 1.0)}
    for p in partners:
        cfg = MixingConfig(close_pitch_probability=p, close_pitch_semitones=4.0)
        for seed in range(200):
            first, second = plan_mixture(np.random.default_rng(seed), pools, lengths, [800], cfg, SR, groups,
                                         pitch).speakers
            if first == "reader":
                partners[p].add(second)
            else:  # only the reader may join a cast member, and none of the cast is within 4 semitones but low2
                assert second == "reader"
    # the reader's 150 Hz is 3.9 semitones from low2's 120 Hz, 5.4 from low1, 6.6 from high1; high2 has no pitch
    assert partners[1.0] == {"low2"}
    assert partners[0.0] == {"low1", "low2", "high1", "high2"}
    with pytest.raises(ValueError, match="speaker pitch"):
        plan_mixture(np.random.default_rng(0), pools, lengths, [800], MixingConfig(close_pitch_probability=0.5),
                     SR, groups)
    for bad in ({"close_pitch_probability": 1.5}, {"close_pitch_semitones": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MixingConfig(**bad)


def test_sqrt_seconds_weighting_draws_speakers_by_the_root_of_their_speech():
    pools = {f"s{k}": np.array([k]) for k in range(4)}
    lengths = np.array([1, 4, 16, 64]) * 8000  # 1, 4, 16, 64 s: square roots 1 : 2 : 4 : 8
    groups = {s: s for s in pools}
    counts = dict.fromkeys(pools, 0)
    cfg = MixingConfig(num_speakers=1, speaker_weighting="sqrt-seconds", segment_seconds=0.5)
    rng = np.random.default_rng(0)
    for _ in range(3000):
        counts[plan_mixture(rng, pools, lengths, [800], cfg, SR, groups).speakers[0]] += 1
    shares = np.array([counts[f"s{k}"] for k in range(4)]) / 3000
    np.testing.assert_allclose(shares, np.array([1, 2, 4, 8]) / 15, atol=0.03)
    with pytest.raises(ValueError, match="speaker_weighting"):
        MixingConfig(speaker_weighting="uniform")
