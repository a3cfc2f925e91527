import csv

import numpy as np
import pytest
import soundfile as sf
from data_fakes import tone, write_wav

from speechsep.data import open_dataset
from speechsep.data.iterative_corpus import build_iterative, iterative_config, scan_speech_folder


def _librispeech(base, speakers=10, per=2, sr=16000):
    for s in range(speakers):
        for u in range(per):
            write_wav(base / f"{100 + s}" / "7" / f"{100 + s}-7-{u:04d}.flac", tone(120 + 30 * s, int(1.5 * sr), sr, seed=s),
                      sr, subtype="PCM_16")
    return base


def test_scan_splits_speakers_and_lists_bad_files(tmp_path):
    base = _librispeech(tmp_path / "speech")
    (base / "100" / "7" / "100-7-0009.flac").write_bytes(b"fLaC garbage")
    utts, report = scan_speech_folder(base, 8000, seed=0)
    assert len(utts) == 20 and utts.lengths[0] == 12000
    assert [s["file"].rsplit("/", 1)[-1] for s in report["skipped"]] == ["100-7-0009.flac"]
    split_of = {}
    for spk, split in zip(utts.speakers, utts.splits, strict=True):
        assert split_of.setdefault(spk, split) == split
    assert [list(split_of.values()).count(s) for s in ("train", "valid", "test")] == [6, 2, 2]
    np.testing.assert_allclose(utts.load(0)[:100], tone(120, 12000, 8000, seed=0)[:100], atol=0.05)


def test_scan_uses_librispeech_split_folders(tmp_path):
    for name, first in (("train-clean-100", 0), ("dev-clean", 5), ("test-clean", 8)):
        for s in range(first, first + 2):
            write_wav(tmp_path / name / f"{s}" / "1" / f"{s}-1-0.flac", tone(100, 1600, 16000), 16000, subtype="PCM_16")
    utts, _ = scan_speech_folder(tmp_path, 16000)
    assert dict(zip(utts.speakers, utts.splits, strict=True)) == {
        "0": "train", "1": "train", "5": "valid", "6": "valid", "8": "test", "9": "test"}


def test_recipe_defaults_match_the_paper():
    cfg = iterative_config()
    assert cfg.counts == {"train": 20000, "valid": 5000, "test": 3000}
    assert cfg.sample_rate == 16000 and cfg.mixing.segment_seconds == 4.0
    assert cfg.rooms.rt60 == (0.1, 0.5) and cfg.rooms.length == (3.0, 10.0) and cfg.rooms.height == (2.5, 4.0)


@pytest.mark.slow
def test_small_recipe_build(tmp_path):
    speech = _librispeech(tmp_path / "speech")
    for k, n in enumerate(["fan1", "rain1", "bell1"]):
        write_wav(tmp_path / "noise" / f"{n}.wav", tone(60 + 9 * k, 32000, 16000, seed=k), 16000)
    build_iterative(speech, tmp_path / "noise", tmp_path / "out", (3, 2, 2), log=lambda msg: None)
    with open(tmp_path / "out" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["split"] for r in rows] == ["train"] * 3 + ["valid"] * 2 + ["test"] * 2
    train = open_dataset(f"corpus:{tmp_path / 'out'}:train", sample_rate=16000)
    mix, src = train[0]
    assert mix.shape == (64000,) and src.shape == (2, 64000)
    noise = sf.read(tmp_path / "out" / "train" / "noise" / "train_000000.wav", dtype="float32")[0]
    np.testing.assert_allclose(mix.numpy(), src.sum(0).numpy() + noise, atol=4 / 32768)  # 16-bit files
