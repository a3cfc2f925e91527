"""The multi-source speech stage: fetching with failures, splits by actor group, the report."""

from __future__ import annotations

import pytest
from data_fakes import write_fake_package

from speechsep.data import sources as sources_module
from speechsep.data import voices
from speechsep.data.sources import RESERVED_PACKAGES, SOURCES, get_source, is_reserved
from speechsep.data.voices import (
    TRAIN_ONLY_SOURCES,
    WORD_SOURCES,
    SpeechOptions,
    assign_splits,
    bandwidth_edge,
    make_speech,
    power_spectrum,
)


@pytest.fixture
def fake_sources(monkeypatch, tmp_path):
    monkeypatch.setitem(SOURCES, "fake-a", "data_fakes:FakeA")
    monkeypatch.setitem(SOURCES, "fake-b", "data_fakes:FakeB")
    monkeypatch.setitem(SOURCES, "fake-c", "data_fakes:FakeC")
    monkeypatch.setenv("SPEECHSEP_CACHE", str(tmp_path / "cache"))
    paths = {
        "fake-pkg-a": write_fake_package(tmp_path / "a", {"hero": 6, "villain": 4, "fx": 2}, seed=0),
        "fake-pkg-b": write_fake_package(tmp_path / "b", {"july": 5, "ana": 5}, seed=1),
        "fake-pkg-c": write_fake_package(tmp_path / "c", {k: 5 for k in ("armelle", "paul", "marc", "lea", "jean", "zoe")},
                                         seed=2),
    }
    return {k: str(v) for k, v in paths.items()}


def test_no_reader_reads_a_reserved_package():
    for name in SOURCES:
        source = get_source(name)
        assert source.packages, name
        assert not any(is_reserved(p) for p in source.packages), (name, source.packages)
    for package in RESERVED_PACKAGES:  # every codec of the reserved packages is reserved
        assert is_reserved(package) and is_reserved(f"{package}-gsm") and is_reserved(f"{package}-wav")
    assert not is_reserved("asterisk-prompt-fr-armelle")


def test_a_reader_naming_a_reserved_package_is_refused(monkeypatch):
    monkeypatch.setitem(SOURCES, "fake-reserved", "data_fakes:FakeReserved")
    with pytest.raises(ValueError, match="reserved for independent evaluation"):
        get_source("fake-reserved")


def test_speech_stage_reports_every_source(fake_sources):
    # tiny: held-out groups may be this small (a real build wants 2 minutes a group)
    opts = SpeechOptions(sources=("fake-a", "fake-b", "fake-c"), package_paths=fake_sources, min_train_speakers=1,
                         processes=1, tiny=True)
    utts, samples, report = make_speech(opts, log=lambda m: None)
    a = report["sources"]["fake-a"]
    assert (a["files_seen"], a["decoded"], a["speakers"], a["actor_groups"]) == (12, 10, 2, 1)
    assert a["skipped_by_reason"] == {"sound effect": 2}
    assert a["sample_rates"] == {"16000": 10} and a["languages"] == ["en"]
    assert a["minutes"] == pytest.approx(10 / 60, abs=0.01)
    assert a["packages"] == {"fake-pkg-a": "unknown (folder given)"}
    assert len(samples) == len(utts) == 50 and utts.sample_rate == 8000
    assert {len(s) for s in samples} == {8000}  # resampled to the corpus rate
    assert set(utts.languages) == {"en", "es", "fr"}
    # speaker-disjoint splits, whole actor groups: fake-a's two characters share one split
    split_of = report["speaker_split"]
    assert split_of["fake-a/hero"] == split_of["fake-a/villain"]
    for spk, split in zip(utts.speakers, utts.splits, strict=True):
        assert split_of[spk] == split


def test_a_corrupt_package_is_named_and_left_out(fake_sources, tmp_path):
    broken = tmp_path / "fake-pkg-a_1.0_all.deb"
    broken.write_bytes(b"!<arch>\nthis is not a package")
    lines = []
    opts = SpeechOptions(sources=("fake-a", "fake-b", "fake-c"), processes=1, min_train_speakers=1, tiny=True,
                         package_paths={**fake_sources, "fake-pkg-a": str(broken)})
    utts, _, report = make_speech(opts, log=lines.append)
    assert "fake-a" in report["failed_sources"] and "fake-a" not in report["sources"]
    assert sum("source fake-a left out" in line and "fake-pkg-a_1.0_all.deb" in line for line in lines) == 1
    assert not any(s.startswith("fake-a/") for s in utts.speakers)
    # too few voices left: the build stops and says which source is missing
    opts.min_train_speakers = 10
    with pytest.raises(ValueError, match=r"only \d+ training voices remain .* fake-a"):
        make_speech(opts, log=lambda m: None)


def _five_sources() -> tuple[dict, dict, dict]:
    """Six 10-minute speakers from each of five sources: one game cast (one group), the rest one group each."""
    seconds, group_of, source_of = {}, {}, {}
    for src in ("game", "prompts", "reads", "stamps", "klettres"):
        for k in range(6):
            spk = f"{src}/{k}"
            seconds[spk] = 600.0
            group_of[spk] = f"{src}/cast" if src == "game" else spk
            source_of[spk] = src
    return seconds, group_of, source_of


def test_assign_splits_moves_whole_groups_and_mixes_sources():
    seconds, group_of, source_of = _five_sources()
    for seed in range(5):
        split_of = assign_splits(seconds, group_of, source_of, seed, test_share=0.1, valid_share=0.1,
                                 max_group_share=0.3)
        assert split_of == assign_splits(seconds, group_of, source_of, seed, test_share=0.1, valid_share=0.1,
                                         max_group_share=0.3)
        assert len({split_of[f"game/{k}"] for k in range(6)}) == 1  # a cast is never split
        assert all(split_of[f"klettres/{k}"] == "train" for k in range(6))  # words never held out
        for split, speakers, groups in (("test", 4, 5), ("valid", 3, 4)):
            held = [s for s, v in split_of.items() if v == split]
            assert len(held) >= speakers and len({source_of[s] for s in held}) >= 3
            assert len({group_of[s] for s in held}) >= groups
            assert sum(seconds[s] for s in held) >= 0.1 * sum(seconds.values())
    assert "klettres" in WORD_SOURCES


def test_train_only_sources_are_never_held_out_and_move_no_other_speaker():
    seconds, group_of, source_of = _five_sources()
    bass = "beneath-a-steel-sky/pool"
    assert "beneath-a-steel-sky" in TRAIN_ONLY_SOURCES
    kwargs = {"test_share": 0.1, "valid_share": 0.1, "max_group_share": 0.3}
    for pool_seconds in (600.0, 6000.0, 60000.0):  # an eligible size; the largest group; most of all speech
        with_pool = {**seconds, bass: pool_seconds}
        groups = {**group_of, bass: "beneath-a-steel-sky/cast"}
        sources = {**source_of, bass: "beneath-a-steel-sky"}
        for seed in range(5):
            before = assign_splits(seconds, group_of, source_of, seed, **kwargs)
            after = assign_splits(with_pool, groups, sources, seed, **kwargs)
            assert after[bass] == "train"
            assert {s: after[s] for s in before} == before  # every other speaker keeps its split
            assert list(after) == list(with_pool)
            # even when a caller names it as a source that may be held out
            named = assign_splits(with_pool, groups, sources, seed, held_out_sources=frozenset(sources.values()),
                                  **kwargs)
            assert named[bass] == "train"
    with pytest.raises(ValueError, match="every source read is training-only"):
        assign_splits({bass: 600.0}, {bass: "beneath-a-steel-sky/cast"}, {bass: "beneath-a-steel-sky"}, 0)


def test_speech_stage_adds_a_train_only_source_to_training_only(fake_sources, monkeypatch):
    opts = SpeechOptions(sources=("fake-b", "fake-c"), package_paths=fake_sources, min_train_speakers=1,
                         processes=1, tiny=True)
    before = make_speech(opts, log=lambda m: None)[2]["speaker_split"]
    monkeypatch.setattr(voices, "TRAIN_ONLY_SOURCES", frozenset({"fake-a"}))
    opts.sources = ("fake-b", "fake-c", "fake-a")
    utts, _, report = make_speech(opts, log=lambda m: None)
    after = report["speaker_split"]
    assert {s: v for s, v in after.items() if not s.startswith("fake-a/")} == before
    assert {after["fake-a/hero"], after["fake-a/villain"]} == {"train"}
    assert {utts.splits[i] for i, s in enumerate(utts.sources) if s == "fake-a"} == {"train"}


def test_bandwidth_edge_finds_a_codec_cutoff():
    import numpy as np

    from speechsep.data.mixing import lowpass

    noise = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32)
    assert bandwidth_edge(power_spectrum(noise, 16000), 16000) > 7500
    # summed over utterances, as a source's long-term spectrum is
    psd = sum(power_spectrum(lowpass(noise[k::3], 3600.0, 16000), 16000) for k in range(3))
    assert bandwidth_edge(psd, 16000) == pytest.approx(3600, abs=150)


def test_sources_module_lists_real_readers():
    assert sources_module.DEFAULT_SOURCES[0] == "fotaq" and len(SOURCES) >= 10
