"""The festvox-ru reader on a fake voice database of small WAVs, plus one check on the real package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources.festvox_ru import WAV_DIR, FestvoxRussian


def _wav(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(np.float32)


@pytest.fixture
def voice(tmp_path):
    root = tmp_path / "festvox-ru"
    wav_dir = root / WAV_DIR
    wav_dir.mkdir(parents=True)
    for i, seconds in [(1, 0.3), (2, 0.2), (3, 0.1)]:
        sf.write(str(wav_dir / f"ru_{i:04d}.wav"), _wav(seconds, i), 16000, subtype="PCM_16")
    (wav_dir / "ru_0004.wav").write_bytes((wav_dir / "ru_0002.wav").read_bytes())
    (wav_dir.parent / "etc").mkdir()
    (wav_dir.parent / "etc" / "txt.done.data").write_text('( ru_0001 "Привет." )\n', encoding="utf-8")
    return root


def test_list(voice):
    listing = FestvoxRussian().list({"festvox-ru": voice})
    assert listing.files_seen == 4
    assert [u.id for u in listing.utterances] == ["festvox-ru/ru_0001", "festvox-ru/ru_0002", "festvox-ru/ru_0003"]
    assert {(u.speaker, u.language, u.actor_group) for u in listing.utterances} == {("festvox-ru/nsh", "ru", "")}
    assert listing.skipped == [
        (str(voice / WAV_DIR / "ru_0004.wav"), f"byte-identical copy of {voice / WAV_DIR / 'ru_0002.wav'}")]


def test_decode(voice):
    source = FestvoxRussian()
    utt = source.list({"festvox-ru": voice}).utterances[0]
    wav, sr = source.decode(utt)
    expected, _ = sf.read(utt.path, dtype="float32")
    assert sr == 16000 and wav.dtype == np.float32 and wav.shape == (4800,)
    np.testing.assert_allclose(wav, expected)
    assert np.abs(wav - _wav(0.3, 1)).max() < 1e-4  # 16-bit quantisation only


def test_corrupt_file_names_the_file(voice):
    source = FestvoxRussian()
    utt = source.list({"festvox-ru": voice}).utterances[1]
    Path(utt.path).write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(AudioError, match="ru_0002.wav"):
        source.decode(utt)


@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing("festvox-ru")
    assert len(listing.utterances) == 620 and not listing.skipped
    assert {u.speaker for u in listing.utterances} == {"festvox-ru/nsh"}
    seconds = 0.0
    for utt in listing.utterances[::31]:  # 20 of them
        wav, sr = source.decode(utt)
        assert sr == 16000
        seconds += len(wav) / sr
    assert 5.0 < seconds / 20 < 15.0  # whole read sentences (9.6 s on average), not diphones
