"""The CI-sized real build (`--tiny`) from the Debian packages (downloaded once into the cache)."""

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from speechsep.data.demo import DemoOptions, build_demo

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def _needs_packages():
    from speechsep.data.packages import cache_dir

    cached = list((cache_dir() / "debs").glob("*.deb"))
    if len(cached) < 2 and shutil.which("apt-get") is None:
        pytest.skip("neither cached .deb files nor apt-get: cannot fetch the Debian packages")


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    _needs_packages()
    root = tmp_path_factory.mktemp("demo") / "tiny"
    build_demo(root, DemoOptions(tiny=True, seed=0), log=lambda msg: None)
    return root


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_speaker_disjoint_splits(tiny_corpus):
    split_of = {}
    for row in _csv(tiny_corpus / "speech" / "utterances.csv"):
        assert split_of.setdefault(row["speaker"], row["split"]) == row["split"]
    assert split_of["JOE"] == "train"
    counts = {s: sum(v == s for v in split_of.values()) for s in ("train", "valid", "test")}
    assert counts["test"] >= 4 and counts["valid"] >= 3
    for row in _csv(tiny_corpus / "manifest.csv"):
        assert split_of[row["s1_speaker"]] == split_of[row["s2_speaker"]] == row["split"]
        assert row["s1_speaker"] != row["s2_speaker"]


def test_manifest_ranges(tiny_corpus):
    rows = _csv(tiny_corpus / "manifest.csv")
    assert len(rows) == 28
    for r in rows:
        assert 0.1 <= float(r["rt60_s"]) <= 0.5
        assert -6 <= float(r["snr_db"]) <= 3
        assert -5 <= float(r["relative_level_db"]) <= 5
        assert 3 <= float(r["room_width_m"]) <= 10


def test_target_plus_noise_equals_mixture(tiny_corpus):
    for r in _csv(tiny_corpus / "manifest.csv")[::7]:
        d = tiny_corpus / r["split"]
        mix = sf.read(d / "mix" / f"{r['id']}.wav", dtype="float32")[0]
        parts = [sf.read(d / s / f"{r['id']}.wav", dtype="float32")[0] for s in ("s1", "s2", "noise")]
        assert mix.shape == (32000,)
        np.testing.assert_allclose(mix, sum(parts), atol=1e-6)
        # the SNR in the manifest is the one in the files
        p = max(float(np.mean(parts[0].astype(np.float64) ** 2)), float(np.mean(parts[1].astype(np.float64) ** 2)))
        snr = 10 * np.log10(p / np.mean(parts[2].astype(np.float64) ** 2))
        assert snr == pytest.approx(float(r["snr_db"]), abs=0.01)


def test_same_seed_same_output(tiny_corpus, tmp_path):
    again = tmp_path / "again"
    build_demo(again, DemoOptions(tiny=True, seed=0), log=lambda msg: None)
    assert (again / "manifest.csv").read_bytes() == (tiny_corpus / "manifest.csv").read_bytes()
    assert (again / "speech" / "utterances.npy").read_bytes() == (tiny_corpus / "speech" / "utterances.npy").read_bytes()
    for rel in ("test/mix/test_000005.wav", "valid/s1_direct/valid_000003.wav"):
        np.testing.assert_array_equal(sf.read(again / rel, dtype="float32")[0],
                                      sf.read(tiny_corpus / rel, dtype="float32")[0])
