import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError, read_audio, resample, validate_waveform, write_audio


def _tone(sr=16000, seconds=0.5, freq=440.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x * (c + 1) / channels for c in range(channels)]) if channels > 1 else x


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_read_formats_roundtrip(tmp_path, fmt, subtype):
    x = _tone()
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    y, sr = read_audio(path)
    assert sr == 16000 and y.shape == x.shape and y.dtype == np.float32
    tol = 1e-3 if fmt != "OGG" else 0.05
    assert np.max(np.abs(y - x)) < tol


def test_channel_policies(tmp_path):
    x = _tone(channels=2)  # channel 1 is twice channel 0
    path = tmp_path / "stereo.wav"
    sf.write(path, x.T, 16000)
    ch0, _ = read_audio(path, channel=0)
    ch1, _ = read_audio(path, channel=1)
    mix, _ = read_audio(path, channel="mixdown")
    both, _ = read_audio(path, channel=None)
    assert both.shape == (2, x.shape[1])
    np.testing.assert_allclose(mix, (ch0 + ch1) / 2, atol=1e-6)
    np.testing.assert_allclose(ch1, 2 * ch0, atol=1e-3)
    with pytest.raises(AudioError, match="channel 5 requested but the file has 2"):
        read_audio(path, channel=5)


def test_resample_on_read(tmp_path):
    x = _tone(sr=16000, seconds=1.0)
    path = tmp_path / "a.wav"
    sf.write(path, x, 16000)
    y, sr = read_audio(path, sample_rate=8000)
    assert sr == 8000 and y.shape == (8000,)
    # a 440 Hz tone keeps its energy through a 16k -> 8k conversion
    assert abs(np.sqrt(np.mean(y[500:-500] ** 2)) - np.sqrt(np.mean(x ** 2))) < 0.01
    assert resample(np.zeros((2, 1600), np.float32), 16000, 8000).shape == (2, 800)


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage that is not audio"), "cannot be decoded"),
        (lambda p: p.write_bytes(b""), "cannot be decoded"),
        (lambda p: sf.write(p, np.zeros(800, np.float32), 8000), "all samples are zero"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 8000), "empty audio|cannot be decoded"),
        (lambda p: sf.write(p, np.array([0.1, np.nan, 0.2], np.float32), 8000, subtype="FLOAT"), "NaN/Inf"),
    ],
    ids=["corrupt", "zero-bytes", "silent", "empty", "nan"],
)
def test_bad_files_name_the_file_and_problem(tmp_path, setup, message):
    path = tmp_path / "bad.wav"
    setup(path)
    with pytest.raises(AudioError, match=message) as info:
        read_audio(path)
    assert str(path) in str(info.value)


def test_missing_file_and_bad_shapes(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match=r"shape \(1, 2, 3\)"):
        validate_waveform(np.ones((1, 2, 3), np.float32))


def test_write_is_atomic_and_refuses_nan(tmp_path):
    path = tmp_path / "out.wav"
    write_audio(path, _tone(), 16000)
    before = path.read_bytes()
    with pytest.raises(AudioError, match="NaN"):
        write_audio(path, np.array([0.0, np.inf], np.float32), 16000)
    assert path.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temp files left behind


def test_atomic_writes_get_umask_permissions_not_0600(tmp_path):
    import os
    import stat

    from speechsep.utils import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
