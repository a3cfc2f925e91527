import re

import numpy as np
import pytest
import soundfile as sf
import torch

from speechsep.audio import AudioError, resample
from speechsep.checkpoint import save_checkpoint
from speechsep.cli import main
from speechsep.inference.separate import separate_files, separate_waveform
from speechsep.losses.snr import si_sdr

SR_IN = 16000


@pytest.fixture
def stereo_case(tmp_path, tones):
    """16 kHz stereo: channel 0 = low + high speaker, channel 1 = something else; 16 kHz references."""
    rng = np.random.default_rng(0)
    n = int(2.5 * SR_IN)
    low = tones(rng.uniform(100, 250, 5), n, rng, SR_IN)
    high = tones(rng.uniform(1000, 2500, 5), n, rng, SR_IN)
    other = tones(rng.uniform(300, 3000, 5), n, rng, SR_IN)
    path = tmp_path / "meeting.wav"
    sf.write(path, np.stack([low + high, other], axis=1), SR_IN, subtype="FLOAT")
    refs = []
    for name, ref in (("low.wav", low), ("high.wav", high)):
        refs.append(tmp_path / name)
        sf.write(refs[-1], ref, SR_IN, subtype="FLOAT")
    return path, refs, low, high, other


def _checkpoint(tmp_path, band_model, **overrides):
    return save_checkpoint(tmp_path / "model.pt", band_model(**overrides))


@pytest.mark.slow  # about 6 s on a loaded 2-core machine (resampling, metrics, the PNG)
def test_separate_16k_stereo_with_an_8k_model(tmp_path, band_model, stereo_case, capsys):
    path, refs, low, high, _ = stereo_case
    ck = _checkpoint(tmp_path, band_model, sample_rate=8000, cutoff_hz=600.0)
    out = tmp_path / "out"
    assert main(["separate", "--model", str(ck), str(path), "-o", str(out), "--ref", *map(str, refs)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["meeting_s1.wav", "meeting_s2.wav", "meeting_spectrogram.png"]
    assert (out / "meeting_spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wavs = []
    for name in ("meeting_s1.wav", "meeting_s2.wav"):
        wav, sr = sf.read(out / name, dtype="float32")
        assert sr == SR_IN and wav.shape == (low.shape[0],)
        wavs.append(wav)
    # the 8 kHz band split of channel 0 (everything it holds is below 4 kHz, so it survives resampling)
    assert si_sdr(torch.tensor(wavs[0]), torch.tensor(low)) > 25
    assert si_sdr(torch.tensor(wavs[1]), torch.tensor(high)) > 25
    printed = capsys.readouterr().out
    mean = float(re.search(r"SI-SNRi \(dB, after PIT\): mean=(-?[\d.]+)", printed).group(1))
    mix = torch.tensor(low + high)
    expected = np.mean([
        float(si_sdr(torch.tensor(w), torch.tensor(r)) - si_sdr(mix, torch.tensor(r)))
        for w, r in zip(wavs, (low, high), strict=True)
    ])
    assert mean == pytest.approx(expected, abs=0.05)


def test_channel_policy_mixdown(tmp_path, band_model, stereo_case):
    path, _, low, high, other = stereo_case
    model = band_model(mode="gain", gain=0.75)
    [result] = separate_files([path], tmp_path / "out", model, channel="mixdown", plot=False)
    assert result.spectrogram is None and len(result.sources) == 2
    s1, _ = sf.read(result.sources[0], dtype="float32")
    # away from the resampler's edge transients, the output is the gain times the channel average
    np.testing.assert_allclose(s1[16:-16], (0.75 * (low + high + other) / 2)[16:-16], atol=2e-3)


def test_precision_option(tmp_path, band_model, stereo_case):
    path, _, _, _, _ = stereo_case
    ck = _checkpoint(tmp_path, band_model, mode="gain")
    assert main(["separate", "--model", str(ck), str(path), "-o", str(tmp_path / "out"), "--no-plot",
                 "--precision", "bf16"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["meeting_s1.wav", "meeting_s2.wav"]
    with pytest.raises(SystemExit):
        main(["separate", "--model", str(ck), str(path), "-o", str(tmp_path / "o2"), "--precision", "fp16"])
    assert not (tmp_path / "o2").exists()


def test_corrupt_input_writes_nothing(tmp_path, band_model, stereo_case, capsys):
    good, _, _, _, _ = stereo_case
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("unchanged")
    ck = _checkpoint(tmp_path, band_model)
    code = main(["separate", "--model", str(ck), str(good), str(bad), "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "broken.wav: cannot be decoded as audio" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "unchanged"
    # a fresh output folder is not even created
    assert main(["separate", "--model", str(ck), str(good), str(tmp_path / "missing.wav"), "-o",
                 str(tmp_path / "new")]) == 2
    assert "missing.wav: no such file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_inputs_and_references_are_checked_before_writing(tmp_path, band_model, stereo_case):
    path, refs, _, _, _ = stereo_case
    model = band_model()
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="2 reference file"):
        separate_files([path], out, model, refs=refs[:1])
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / path.name).write_bytes(path.read_bytes())
    with pytest.raises(AudioError, match="would overwrite those of"):
        separate_files([path, twin / path.name], out, model)
    short = tmp_path / "short.wav"
    sf.write(short, np.full(100, 0.1, dtype=np.float32), SR_IN)
    with pytest.raises(AudioError, match="short.wav: reference has 100 samples"):
        separate_files([path], out, model, refs=[refs[0], short])
    with pytest.raises(AudioError, match="channel 3 requested"):
        separate_files([path], out, model, channel=3)
    assert not out.exists()


def test_default_model_is_the_marked_or_first_bundled(tmp_path, band_model, stereo_case, monkeypatch, capsys):
    import shutil

    import speechsep.inference.pretrained as lib

    path, _, _, _, _ = stereo_case
    pretrained = tmp_path / "pretrained"
    monkeypatch.setattr(lib, "PRETRAINED_DIR", pretrained)
    assert main(["separate", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "none is bundled" in capsys.readouterr().err
    for name, mode in (("a-gain", "gain"), ("b-swap", "gain")):
        (pretrained / name).mkdir(parents=True)
        shutil.copy(_checkpoint(tmp_path, band_model, mode=mode), pretrained / name / "model.pt")
    assert lib.default_name() == "a-gain"  # no DEFAULT marker: the first by name
    lib.set_default_name("b-swap")
    assert lib.default_name() == "b-swap"
    with pytest.raises(ValueError, match="not a bundled model"):
        lib.set_default_name("missing")
    assert main(["separate", str(path), "-o", str(tmp_path / "out"), "--no-plot"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["meeting_s1.wav", "meeting_s2.wav"]


def test_sixty_seconds_at_16k_stays_within_one_segment(band_model):
    model = band_model(mode="gain", shuffle=True)
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(60 * SR_IN)).astype(np.float32)
    est = separate_waveform(model, wav, SR_IN, segment_seconds=4.0, overlap_seconds=0.5)
    assert est.shape == (2, wav.shape[0])
    assert model.max_input_length == 4 * 8000 and model.max_batch_rows == 1
    expected = resample(resample(wav, SR_IN, 8000), 8000, SR_IN)[: wav.shape[0]]
    gains = sorted(float(np.dot(e, expected) / np.dot(expected, expected)) for e in est)
    assert gains == pytest.approx([0.2, 0.8], abs=1e-4)  # one consistent gain per output over the whole minute


def test_limit_peak_scales_all_sources_together_and_leaves_quiet_ones_alone():
    from speechsep.inference.separate import PEAK_LIMIT, limit_peak

    loud = np.array([[2.0, -1.0], [0.5, 0.25]])
    out = limit_peak(loud)
    assert np.abs(out).max() == pytest.approx(PEAK_LIMIT)
    np.testing.assert_allclose(out / loud, PEAK_LIMIT / 2.0)  # one factor for every source: ratios kept
    quiet = np.array([[0.5, -0.2]])
    assert limit_peak(quiet) is quiet
