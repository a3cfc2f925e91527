"""The Hedgewars voice-pack reader on a fake package tree, plus one check on the real package."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources.hedgewars import VOICES_DIR, HedgewarsVoices, is_nonverbal, pack_language

SR = 44100


def _taunt(seed: int) -> np.ndarray:
    t = np.arange(int(0.2 * SR)) / SR
    tone = (0.6 * np.sin(2 * np.pi * (300 + 40 * seed) * t)).astype(np.float32)
    return np.concatenate([np.zeros(SR // 10, np.float32), tone, np.zeros(SR // 10, np.float32)])


@pytest.fixture
def package(tmp_path):
    root = tmp_path / "hedgewars-data"
    base = root / VOICES_DIR
    for i, rel in enumerate([
        "Pirate/Takecover.ogg",
        "Pirate/Ow1.ogg",  # a pain sound
        "Pirate/Firepunch1.ogg",
        "Pirate/Laugh.ogg",
        "Classic/Hello.ogg",
        "Classic/Flyaway.ogg",
        "Default/Victory.ogg",
        "Default/Flyaway.ogg",  # re-encoded Classic/Flyaway in the real package
        "Default_ru/Hello.ogg",
        "Default_pl/Hello.ogg",
        "Russian_pl/Hello.ogg",
        "Robot/Hello.ogg",
        "Singer/Hello.ogg",
    ]):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, _taunt(i), SR, format="OGG", subtype="VORBIS")
    (base / "Default_uk").mkdir()
    (base / "Default_uk/Ouch.ogg").write_bytes((base / "Classic/Hello.ogg").read_bytes())
    (base / "Pirate/readme.txt").write_text("arr")
    return root


def test_pack_language_and_nonverbal():
    assert pack_language("Default_uk") == "uk"
    assert pack_language("Russian_pl") == "pl"
    assert pack_language("Russian") == "en"
    assert pack_language("HillBilly") == "en"
    assert all(is_nonverbal(s) for s in ("Ow3", "Ooff1", "Jump2", "Firepunch6", "Laugh", "PoisonCough", "Hmm"))
    assert not any(is_nonverbal(s) for s in ("Ouch", "Nooo", "Uh-oh", "Oops", "Owch", "Hello"))


def test_list_speakers_languages_groups_and_skips(package):
    base = package / VOICES_DIR
    listing = HedgewarsVoices().list({"hedgewars-data": package})
    assert listing.files_seen == 14  # the .ogg files, not readme.txt
    got = {u.id: (u.speaker, u.language) for u in listing.utterances}
    assert got == {
        "hedgewars/Pirate/Takecover": ("hedgewars/Pirate", "en"),
        "hedgewars/Classic/Hello": ("hedgewars/Classic-Default", "en"),
        "hedgewars/Classic/Flyaway": ("hedgewars/Classic-Default", "en"),
        "hedgewars/Default/Victory": ("hedgewars/Classic-Default", "en"),
        "hedgewars/Default_ru/Hello": ("hedgewars/Default_ru", "ru"),
        "hedgewars/Default_pl/Hello": ("hedgewars/MTG90PL", "pl"),
        "hedgewars/Russian_pl/Hello": ("hedgewars/MTG90PL", "pl"),
    }
    assert {u.actor_group for u in listing.utterances} == {"hedgewars/cast"}
    skipped = {Path(p).relative_to(base).as_posix(): why.split(" (")[0].split(":")[0].split(" of ")[0]
               for p, why in listing.skipped}
    assert skipped == {
        "Pirate/Ow1.ogg": "non-verbal vocalization",
        "Pirate/Firepunch1.ogg": "non-verbal vocalization",
        "Pirate/Laugh.ogg": "non-verbal vocalization",
        "Default/Flyaway.ogg": "re-encoded copy",
        "Default_uk/Ouch.ogg": "byte-identical copy",
        "Robot/Hello.ogg": "processed pack",
        "Singer/Hello.ogg": "processed pack",
    }


def test_decode_trims_and_corrupt_file(package):
    source = HedgewarsVoices()
    lines = {u.id: u for u in source.list({"hedgewars-data": package}).utterances}
    wav, sr = source.decode(lines["hedgewars/Pirate/Takecover"])
    assert sr == SR and wav.dtype == np.float32 and wav.ndim == 1
    assert int(0.29 * SR) <= len(wav) <= int(0.33 * SR)  # 0.2 s + 2 x 50 ms of the 0.4 s file
    assert 0.5 < np.abs(wav).max() < 0.7
    line = lines["hedgewars/Default_ru/Hello"]
    Path(line.path).write_bytes(b"OggS but not really")
    with pytest.raises(AudioError, match="Default_ru/Hello.ogg"):
        source.decode(line)



@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing("hedgewars")
    assert listing.files_seen >= 800  # 839 in 1.0.2-6
    assert 450 <= len(listing.utterances) <= 560  # 499
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert set(speakers) >= {"British", "Classic-Default", "Pirate", "Mobster", "MTG90PL", "Default_ru", "Default_uk"}
    assert not {"Robot", "Singer", "Classic", "Default", "Default_pl"} & set(speakers)
    assert {u.language for u in listing.utterances} == {"en", "es", "pl", "ru", "uk"}
    assert {u.actor_group for u in listing.utterances} == {"hedgewars/cast"}
    reasons = collections.Counter(why.split(":")[0].split(" of ")[0] for _, why in listing.skipped)
    assert reasons["processed pack"] == 119 and reasons["byte-identical copy"] >= 10
    wav, sr = source.decode(next(u for u in listing.utterances if u.id == "hedgewars/Pirate/Takecover"))
    assert sr == 44100 and 0.2 * sr < len(wav) < 3 * sr
