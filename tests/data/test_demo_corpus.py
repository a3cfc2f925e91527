"""The CI-sized real build (`--tiny`) from the Debian packages (downloaded once into the cache)."""

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from speechsep.data.demo_corpus import DemoOptions, build_demo

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
    split_of, group_split = {}, {}
    rows = _csv(tiny_corpus / "speech" / "utterances.csv")
    for row in rows:
        assert split_of.setdefault(row["speaker"], row["split"]) == row["split"]
        # an actor group (voices that may share an actor) is never split
        assert group_split.setdefault(row["group"], row["split"]) == row["split"]
    held = {s: {r["source"] for r in rows if r["split"] == s} for s in ("valid", "test")}
    assert len(held["test"]) >= 2 and len(held["valid"]) >= 2  # held-out voices from several sources
    counts = {s: sum(v == s for v in split_of.values()) for s in ("train", "valid", "test")}
    assert counts["test"] >= 4 and counts["valid"] >= 2 and counts["train"] >= 2
    for row in _csv(tiny_corpus / "manifest.csv"):
        assert split_of[row["s1_speaker"]] == split_of[row["s2_speaker"]] == row["split"]
        assert row["s1_speaker"] != row["s2_speaker"]


def test_manifest_conditions_and_ranges(tiny_corpus):
    rows = _csv(tiny_corpus / "manifest.csv")
    assert len(rows) == 3 * (6 + 8)
    assert {(r["split"], r["condition"]) for r in rows} == {
        (s, c) for s in ("valid", "test") for c in ("clean", "noisy", "mixed")}
    for r in rows:
        assert 0.1 <= float(r["rt60_s"]) <= 0.5
        assert -5 <= float(r["relative_level_db"]) <= 5
        assert 3 <= float(r["room_width_m"]) <= 10
        assert r["s1_speed"] == r["s2_speed"] == "1.0"  # the fixed sets are never speed-perturbed
        if r["condition"] == "clean":
            assert r["noise"] == "none" and r["snr_db"] == "" and r["reverb"] == "reverberant"
            assert float(r["overlap"]) == 1.0
        elif r["condition"] == "noisy":
            assert r["noise"] == "whamr" and -6 <= float(r["snr_db"]) <= 3 and r["reverb"] == "reverberant"
        else:
            assert r["noise"] in ("none", "wide", "whamr") and 0.3 <= float(r["overlap"]) <= 1.0
            if r["noise"] == "wide":
                assert -5 <= float(r["snr_db"]) <= 20


def test_target_plus_noise_equals_mixture(tiny_corpus):
    for r in _csv(tiny_corpus / "manifest.csv")[::5]:
        d = tiny_corpus / r["split"] / r["condition"]
        mix = sf.read(d / "mix" / f"{r['id']}.wav", dtype="float32")[0]
        parts = [sf.read(d / s / f"{r['id']}.wav", dtype="float32")[0] for s in ("s1", "s2", "noise")]
        assert mix.shape == (32000,)
        np.testing.assert_allclose(mix, sum(parts), atol=1e-6)
        if r["noise"] == "none":
            assert not parts[2].any()
            continue
        # the SNR in the manifest is the one in the files
        p = max(float(np.mean(parts[0].astype(np.float64) ** 2)), float(np.mean(parts[1].astype(np.float64) ** 2)))
        snr = 10 * np.log10(p / np.mean(parts[2].astype(np.float64) ** 2))
        assert snr == pytest.approx(float(r["snr_db"]), abs=0.01)


def test_condition_specs_open_their_sets(tiny_corpus):
    from speechsep.data.spec import open_dataset

    for condition, count in (("clean", 8), ("noisy", 8), ("mixed", 8)):
        data = open_dataset(f"demo:{tiny_corpus}:test:{condition}", sample_rate=8000)
        assert len(data) == count
    assert len(open_dataset(f"demo:{tiny_corpus}:valid", sample_rate=8000)) == 6  # mixed by default
    mix, _ = open_dataset(f"demo:{tiny_corpus}:test:clean", sample_rate=8000)[0]
    noise = sf.read(tiny_corpus / "test" / "clean" / "noise" / "test_clean_000000.wav", dtype="float32")[0]
    assert mix.shape == (32000,) and not noise.any()
    with pytest.raises(ValueError, match="name one condition"):
        open_dataset(f"demo:{tiny_corpus}:test:clean:mixed", sample_rate=8000)


def test_dynamic_mixing_augments_and_can_be_switched_off(tiny_corpus):
    from speechsep.data.datasets import DynamicMixing

    on = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3)
    speeds = [s for i in range(20) for s in on.render(i)[0].speeds]
    assert all(0.9 <= f <= 1.1 for f in speeds) and len(set(speeds)) == len(speeds)
    again = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3)
    np.testing.assert_array_equal(on[5][0].numpy(), again[5][0].numpy())  # seeded: reproducible
    off = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3, mixing={"speed_range": [1.0, 1.0]})
    assert {s for i in range(10) for s in off.render(i)[0].speeds} == {1.0}
    clean = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3, condition="clean")
    assert {clean.render(i)[0].noise for i in range(10)} == {"none"}
    with pytest.raises(ValueError, match="unknown mixing field"):
        DynamicMixing(tiny_corpus, sample_rate=8000, mixing={"speeed_range": [1, 1]})


def test_dynamic_mixing_measures_speaker_pitch_only_for_pitch_pairing(tiny_corpus):
    pytest.importorskip("librosa")
    import json

    from speechsep.data.datasets import DynamicMixing

    plain = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3)
    cache = tiny_corpus / "speech" / "pitch.json"
    assert plain.pitch is None and not cache.exists()
    cast = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3,
                         mixing={"distinct_pitch_semitones": 3.0, "speaker_weighting": "sqrt-seconds"})
    # every speaker of the table, train or held out, measured once and cached
    assert set(cast.pitch) == set(cast.utterances.speakers) == set(json.loads(cache.read_text())["median_hz"])
    assert all(60.0 <= hz <= 500.0 for hz in cast.pitch.values())
    # the tiny corpus trains on one cast (drascula) only: pairs still come, from that cast
    assert all(len(set(cast.render(i)[0].speakers)) == 2 for i in range(20))
    hard = DynamicMixing(tiny_corpus, sample_rate=8000, seed=3, mixing={"close_pitch_probability": 1.0})
    assert hard.pitch == pytest.approx(cast.pitch, abs=0.01)  # hard pairs read the same cached pitch


def test_same_seed_same_output(tiny_corpus, tmp_path):
    again = tmp_path / "again"
    build_demo(again, DemoOptions(tiny=True, seed=0), log=lambda msg: None)
    assert (again / "manifest.csv").read_bytes() == (tiny_corpus / "manifest.csv").read_bytes()
    assert (again / "speech" / "utterances.npy").read_bytes() == (tiny_corpus / "speech" / "utterances.npy").read_bytes()
    for rel in ("test/noisy/mix/test_noisy_000005.wav", "valid/mixed/s1_direct/valid_mixed_000003.wav"):
        np.testing.assert_array_equal(sf.read(again / rel, dtype="float32")[0],
                                      sf.read(tiny_corpus / rel, dtype="float32")[0])


def test_held_out_specs_expand_to_every_condition(tiny_corpus):
    from speechsep.data.spec import condition_specs

    assert condition_specs(f"demo:{tiny_corpus}:test") == [
        (c, f"demo:{tiny_corpus}:test:{c}") for c in ("clean", "noisy", "mixed")]
    assert condition_specs(f"demo:{tiny_corpus}:test:noisy") == [("", f"demo:{tiny_corpus}:test:noisy")]
    assert condition_specs(f"demo:{tiny_corpus}:train") == [("", f"demo:{tiny_corpus}:train")]


def test_dynamic_mixing_clean_first_epochs_curriculum(tiny_corpus):
    from speechsep.data.datasets import DynamicMixing
    from speechsep.data.spec import open_dataset
    from speechsep.train.data import open_examples

    # the trainer's route: DataConfig.clean_first_epochs -> open_examples -> open_dataset -> DynamicMixing
    data = open_examples(f"demo:{tiny_corpus}:train", sample_rate=8000, train=True, seed=4, clean_first_epochs=2)
    assert isinstance(data, DynamicMixing) and data.clean_first_epochs == 2

    def noises(epoch):
        data.set_epoch(epoch)
        return [data.render(i)[0].noise for i in range(30)]

    assert set(noises(0)) == set(noises(1)) == {"none"}
    assert set(noises(2)) - {"none"}  # from epoch 2 on, the corpus's own mix: noisy plans among them
    # an item is a function of (seed, epoch, index): the same whatever was drawn before
    data.set_epoch(1)
    first = data[7]
    data.set_epoch(3)
    data[7]
    data.set_epoch(1)
    np.testing.assert_array_equal(first[0].numpy(), data[7][0].numpy())
    np.testing.assert_array_equal(first[1].numpy(), data[7][1].numpy())
    # after the clean epochs, the very mixtures of a run without the curriculum
    plain = DynamicMixing(tiny_corpus, sample_rate=8000, seed=4)
    plain.set_epoch(2)
    data.set_epoch(2)
    np.testing.assert_array_equal(plain[5][0].numpy(), data[5][0].numpy())
    with pytest.raises(ValueError, match="clean_first_epochs applies only to dynamic mixing"):
        open_dataset(f"demo:{tiny_corpus}:valid", sample_rate=8000, clean_first_epochs=1)


def test_eval_reports_every_condition(tiny_corpus, tmp_path, capsys):
    from speechsep.checkpoint import save_checkpoint
    from speechsep.cli import main
    from speechsep.registry import build

    checkpoint = save_checkpoint(tmp_path / "tiny.pt", build("tf-mask-tiny"), step=0, epoch=0)
    out = tmp_path / "results.csv"
    assert main(["eval", str(checkpoint), "--data", f"demo:{tiny_corpus}:test", "--out", str(out),
                 "--no-pesq", "--limit", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    for condition in ("clean", "noisy", "mixed"):
        assert f"== {condition}: demo:{tiny_corpus}:test:{condition}" in printed
        assert (tmp_path / f"results_{condition}.csv").is_file() and (tmp_path / f"results_{condition}.json").is_file()
    assert not out.exists()
