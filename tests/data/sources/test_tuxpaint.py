"""The Tux Paint stamp-description reader on a fake stamps tree, plus one check on the real package."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.sources.tuxpaint import STAMPS_DIR, TuxpaintStamps, parse_name

SR = 44100


def _tone(seed: int, seconds: float = 0.05) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (200 + 20 * seed) * t)).astype(np.float32)


@pytest.fixture
def stamps(tmp_path):
    root = tmp_path / "tux"
    base = root / STAMPS_DIR
    for i, rel in enumerate([
        "animals/birds/hen_desc.ogg",  # English
        "animals/birds/hen_desc_es.ogg",
        "animals/birds/hen_desc_da.ogg.ogg",  # a real oddity of the package
        "animals/birds/hen_desc_pt_BR.wav",  # school children: left out
        "animals/birds/hen.ogg",  # the hen's cluck: a sound effect
        "symbols/math/7_sv.ogg",  # a localized sound, not a description
        "food/fruit/kiwi_desc_sr@latin.ogg",
        "food/fruit/kiwi_desc_es.ogg",
    ]):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "WAV" if rel.endswith(".wav") else "OGG"
        sf.write(path, _tone(i), SR, format=fmt, subtype="PCM_16" if fmt == "WAV" else "VORBIS")
    # a second stamp sharing the Spanish hen recording byte for byte
    (base / "animals/birds/hen_large_desc_es.ogg").write_bytes((base / "animals/birds/hen_desc_es.ogg").read_bytes())
    (base / "animals/birds/hen.txt").write_text("A hen.")
    return root


def test_parse_name():
    assert parse_name("hen_desc.ogg") == "en"
    assert parse_name("hen_desc_es.ogg") == "es"
    assert parse_name("hen_desc_pt_BR.wav") == "pt_BR"
    assert parse_name("hen_desc_da.ogg.ogg") == "da"
    assert parse_name("pumpkin_small_desc_ca.ogg") == "ca"
    assert parse_name("hen.ogg") is None
    assert parse_name("7_en_GB.ogg") is None


def test_list_speakers_languages_and_skips(stamps):
    listing = TuxpaintStamps().list({"tuxpaint-stamps-default": stamps})
    assert listing.files_seen == 9  # every .ogg/.wav, not the .txt
    got = {u.id: (u.speaker, u.language) for u in listing.utterances}
    assert got == {
        "tuxpaint-stamps/animals/birds/hen_desc": ("tuxpaint-stamps/desc_en", "en"),
        "tuxpaint-stamps/animals/birds/hen_desc_es": ("tuxpaint-stamps/desc_es", "es"),
        "tuxpaint-stamps/animals/birds/hen_desc_da": ("tuxpaint-stamps/desc_da", "da"),
        "tuxpaint-stamps/food/fruit/kiwi_desc_sr@latin": ("tuxpaint-stamps/desc_sr@latin", "sr"),
        "tuxpaint-stamps/food/fruit/kiwi_desc_es": ("tuxpaint-stamps/desc_es", "es"),
    }
    assert all(u.group == u.speaker for u in listing.utterances)  # one reader a language set
    reasons = collections.Counter(why.split(" of ")[0] for _, why in listing.skipped)
    assert reasons == {
        "sound effect, not a _desc description": 2,
        "recorded by various unnamed school children (changelog): speaker unknown": 1,
        "byte-identical copy": 1,
    }


def test_decode_samples_and_corrupt_file(stamps):
    source = TuxpaintStamps()
    listing = source.list({"tuxpaint-stamps-default": stamps})
    line = next(u for u in listing.utterances if u.id.endswith("hen_desc_es"))
    wav, sr = source.decode(line)
    assert sr == SR and wav.dtype == np.float32 and wav.shape == (len(_tone(1)),)
    assert np.corrcoef(wav, _tone(1))[0, 1] > 0.99
    Path(line.path).write_bytes(b"garbage, not an ogg stream")
    with pytest.raises(AudioError, match="hen_desc_es.ogg"):
        source.decode(line)



@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing("tuxpaint-stamps")
    assert len(listing.utterances) >= 6000
    speakers = collections.Counter(u.speaker.split("/", 1)[1] for u in listing.utterances)
    assert len(speakers) >= 12
    assert all(speakers[s] > 600 for s in ("desc_ca", "desc_ro", "desc_ru", "desc_bg", "desc_fr", "desc_es"))
    assert {u.language for u in listing.utterances} >= {"en", "es", "fr", "ru", "ca", "el", "be", "da"}
    reasons = collections.Counter(why.split(" of ")[0] for _, why in listing.skipped)
    assert reasons["byte-identical copy"] > 500
    line = next(u for u in listing.utterances if u.id == "tuxpaint-stamps/animals/birds/hen_desc_es")
    wav, sr = source.decode(line)
    assert sr == 44100 and 0.3 * sr < len(wav) < 5 * sr
