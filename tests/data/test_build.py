"""The corpus builder on synthetic inputs (no network): layout, manifest, resume, determinism."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from data_fakes import synthetic_inputs

from speechsep.data import open_dataset
from speechsep.data.corpus import CorpusConfig, build_corpus
from speechsep.data.datasets import make_loader

pytestmark = pytest.mark.slow  # the module fixture builds a corpus with a 2-process pool (~5 s)


def _cfg(seed=0):
    cfg = CorpusConfig(seed=seed, counts={"train": 0, "valid": 3, "test": 4}, room_bank_size=4, train_hours=0.01)
    cfg.mixing.segment_seconds = 1.0
    return cfg


def _build(root, cfg=None, processes=2):
    utts, chunks, clips = synthetic_inputs()
    calls = []

    def speech():
        calls.append("speech")
        return utts, chunks, {"skipped": []}

    def noise():
        calls.append("noise")
        return clips, {}

    report = build_corpus(root, cfg or _cfg(), speech, noise, processes=processes, log=lambda msg: None)
    return report, calls


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "corpus"
    _build(root)
    return root


def _same_audio(a, b):
    # float wavs carry a PEAK chunk with a timestamp, so compare the samples, not the bytes
    np.testing.assert_array_equal(sf.read(a, dtype="float32")[0], sf.read(b, dtype="float32")[0])


def _rows(root):
    with open(root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_layout_and_manifest(built):
    rows = _rows(built)
    assert [r["split"] for r in rows] == ["valid"] * 3 + ["test"] * 4
    for r in rows:
        for stream in ("mix", "s1", "s2", "s1_direct", "s2_direct", "noise"):
            wav, sr = sf.read(built / r["split"] / stream / f"{r['id']}.wav", dtype="float32")
            assert sr == 8000 and wav.shape == (8000,)
        assert r["s1_speaker"] != r["s2_speaker"]
        assert 0.1 <= float(r["rt60_s"]) <= 0.5 and -6 <= float(r["snr_db"]) <= 3
        assert 3 <= float(r["room_length_m"]) <= 10 and 2.5 <= float(r["room_height_m"]) <= 4
    # speaker-disjoint: each split draws only its own speakers
    split_of = {f"spk{s}": ("train" if s < 4 else "valid" if s < 6 else "test") for s in range(9)}
    assert all(split_of[r[k]] == r["split"] for r in rows for k in ("s1_speaker", "s2_speaker"))
    assert (built / ".stages" / "complete.done").exists()


def test_target_plus_noise_is_the_mixture(built):
    d = built / "valid"
    mix, _ = sf.read(d / "mix" / "valid_000000.wav", dtype="float32")
    parts = [sf.read(d / s / "valid_000000.wav", dtype="float32")[0] for s in ("s1", "s2", "noise")]
    np.testing.assert_allclose(mix, sum(parts), atol=1e-6)


def test_rerun_skips_and_resumes_identically(built, tmp_path):
    before = sf.read(built / "test" / "mix" / "test_000002.wav", dtype="float32")[0]
    stamp = (built / "valid" / "mix" / "valid_000001.wav").stat().st_mtime_ns
    _, calls = _build(built)
    assert calls == []  # speech and noise stages were complete
    assert (built / "valid" / "mix" / "valid_000001.wav").stat().st_mtime_ns == stamp
    # an interrupted run: the mixture's completion marker is missing, a temp file is lying around
    (built / "test" / "meta" / "test_000002.json").unlink()
    (built / "test" / "mix" / "test_000002.wav").write_bytes(b"half")
    (built / "test" / "mix" / ".test_000003.wav.abc.tmp").write_bytes(b"junk")
    (built / ".stages" / "mix-test.done").unlink()
    _build(built)
    np.testing.assert_array_equal(sf.read(built / "test" / "mix" / "test_000002.wav", dtype="float32")[0], before)
    assert len(_rows(built)) == 7


def test_same_seed_same_corpus_any_process_count(built, tmp_path):
    other = tmp_path / "again"
    _build(other, processes=1)
    assert (other / "manifest.csv").read_bytes() == (built / "manifest.csv").read_bytes()
    for rel in ("test/s1/test_000003.wav", "valid/noise/valid_000002.wav", "valid/s2_direct/valid_000001.wav"):
        _same_audio(other / rel, built / rel)
    with np.load(other / "train/rooms.npz") as a, np.load(built / "train/rooms.npz") as b:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


def test_other_settings_are_refused(built):
    with pytest.raises(ValueError, match="differs in: seed"):
        _build(built, _cfg(seed=1))


def test_dynamic_mixing_repeats_per_epoch_and_index(built):
    ds = open_dataset(f"demo:{built}:train", sample_rate=8000, seed=4)
    assert len(ds) == int(0.01 * 3600 / 1.0)
    mix, src = ds[3]
    assert mix.shape == (8000,) and src.shape == (2, 8000) and mix.dtype == src.dtype
    np.testing.assert_array_equal(ds[3][0].numpy(), mix.numpy())
    ds.set_epoch(1)
    assert not np.array_equal(ds[3][0].numpy(), mix.numpy())
    ds.set_epoch(0)
    # noise = mixture - sources, so SNR can be checked without the noise stream
    _, out = ds.render(3)
    p = (out.reverb.astype(np.float64) ** 2).mean(1)
    snr = 10 * np.log10(p.max() / (out.noise.astype(np.float64) ** 2).mean())
    assert -6 - 1e-3 <= snr <= 3 + 1e-3
    direct = open_dataset(f"demo:{built}:train:direct", sample_rate=8000, seed=4)
    np.testing.assert_allclose(direct[3][1].numpy(), out.direct)
    short = open_dataset(f"demo:{built}:train", sample_rate=8000, segment_seconds=0.5)
    assert short[0][1].shape == (2, 4000)


def test_loader_workers_do_not_change_the_data(built):
    ds = open_dataset(f"demo:{built}:train", sample_rate=8000, seed=1)
    a = [b for _, b in zip(range(2), make_loader(ds, 4, shuffle=True, num_workers=0, seed=2, epoch=1), strict=False)]
    b = [b for _, b in zip(range(2), make_loader(ds, 4, shuffle=True, num_workers=2, seed=2, epoch=1), strict=False)]
    for (m1, s1), (m2, s2) in zip(a, b, strict=True):
        assert m1.shape == (4, 8000) and s1.shape == (4, 2, 8000)
        np.testing.assert_array_equal(m1.numpy(), m2.numpy())
        np.testing.assert_array_equal(s1.numpy(), s2.numpy())


def test_fixed_sets_open_by_spec(built):
    ds = open_dataset(f"demo:{built}:valid", sample_rate=8000)
    assert len(ds) == 3 and ds[0][1].shape == (2, 8000)
    direct = open_dataset(f"demo:{built}:valid:direct", sample_rate=8000)
    assert direct.items[0].sources[0].parent.name == "s1_direct"
    meta = json.loads((built / "valid" / "meta" / "valid_000000.json").read_text())
    assert meta["id"] == "valid_000000"
