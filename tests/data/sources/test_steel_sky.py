"""The Beneath a Steel Sky reader on a tiny sky.dnr/sky.dsk pair written here, plus checks on the real package."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from rnc_fakes import encode

from speechsep.audio import AudioError
from speechsep.data.sources import DEFAULT_SOURCES, SOURCES, SourceError, get_source
from speechsep.data.sources.steel_sky import ACTOR_GROUP, DATA_DIR, SAMPLE_RATE, SteelSkySource, read_dnr
from speechsep.data.voices import TRAIN_ONLY_SOURCES

NAME = "beneath-a-steel-sky"


def _pcm(seconds: float, seed: int) -> bytes:
    samples = np.random.default_rng(seed).integers(1, 255, int(seconds * SAMPLE_RATE), dtype=np.uint8)
    samples[samples == 0x80] = 0x81  # no exact silence inside the "speech"
    return samples.tobytes()


def _file(audio: bytes, *, packed: bool = True) -> bytes:
    """A stored file: the 22-byte header (flag, then 0x8080 words but the size) and the audio, RNC-packed."""
    total = len(audio) + 22
    words = [0x8080] * 11
    words[0] = (0x80 if packed else 0) | ((total >> 16) << 8) | 0x01
    words[6] = total & 0xFFFF
    header = struct.pack("<11H", *words)
    if not packed:
        return header + audio
    # silence runs as overlapping matches, the rest as literals: as a real packer would
    lead = len(audio) - len(audio.lstrip(b"\x80"))
    steps = [(audio[:1], (1, lead - 1)), (audio[lead:], None)] if lead > 2 else [(audio, None)]
    return header + encode([steps])[0]


SPEECH = b"\x80" * int(0.5 * SAMPLE_RATE) + _pcm(0.6, 1) + b"\x80" * int(0.1 * SAMPLE_RATE)


@pytest.fixture
def package(tmp_path):
    """``(unpack root, {file number: stored bytes})`` with one of each kind of entry."""
    files = {
        1234: (b"graphics" * 10, 0),  # not speech
        50001: (_file(SPEECH), 0),  # packed speech with 0.5 s of leading silence
        50002: (_file(_pcm(0.4, 2), packed=False), 1 << 23),  # stored uncompressed
        50003: (_file(SPEECH), 0),  # byte-identical to 50001
        50004: (b"\x81\x00" * 5, 0),  # shorter than the header
        50005: (_file(_pcm(0.4, 3))[:22] + b"XXXX" + b"\0" * 40, 0),  # packed flag, no RNC signature
        50006: (_file(_pcm(0.4, 4)), 1 << 22),  # flagged to unpack without its header
        50007: (_file(_pcm(0.4, 5)), 0),  # its packed data is damaged below
        50008: (_file(b"\xff" * 3000 + _pcm(0.2, 6)), 0),  # mostly at full scale
        55230: (_file(_pcm(0.4, 7)), 0),  # past the speech numbers
    }
    root = tmp_path / "bass"
    folder = root / DATA_DIR
    folder.mkdir(parents=True)
    dsk, dnr = bytearray(), bytearray(struct.pack("<I", len(files)))
    for number, (data, flags) in sorted(files.items(), key=lambda kv: -kv[0]):  # the table need not be sorted
        if number == 50007:
            data = data[:60] + bytes([data[60] ^ 0xFF]) + data[61:]
        dsk += b"\0" * (-len(dsk) % 16)  # every file starts on a 16-byte boundary
        offset_field = (len(dsk) >> 4) | 1 << 23 if number % 2 else len(dsk)  # both offset forms
        dnr += struct.pack("<HHBHB", number, offset_field & 0xFFFF, offset_field >> 16,
                           (len(data) | flags) & 0xFFFF, (len(data) | flags) >> 16)
        dsk += data
    (folder / "sky.dnr").write_bytes(bytes(dnr))
    (folder / "sky.dsk").write_bytes(bytes(dsk))
    return root, {n: d for n, (d, _) in files.items()}


def test_read_dnr_offsets_and_flags(package):
    root, files = package
    entries = {e.number: e for e in read_dnr(root / DATA_DIR / "sky.dnr")}
    assert set(entries) == set(files)
    dsk = (root / DATA_DIR / "sky.dsk").read_bytes()
    assert dsk[entries[50001].offset:entries[50001].offset + entries[50001].size] == files[50001]  # 16-byte units
    assert dsk[entries[50002].offset:entries[50002].offset + entries[50002].size] == files[50002]  # bytes
    assert not entries[50002].compressed and entries[50001].compressed
    (root / "short.dnr").write_bytes(struct.pack("<I", 3) + b"\0" * 8)
    with pytest.raises(SourceError, match="short.dnr: says 3 entries"):
        read_dnr(root / "short.dnr")


def test_list_one_pool_and_skips(package):
    root, _ = package
    listing = SteelSkySource().list({NAME: root})
    assert listing.files_seen == 10
    assert [u.id for u in listing.utterances] == [f"{NAME}/{n}" for n in (50001, 50002, 50007, 50008)]
    assert {u.speaker for u in listing.utterances} == {f"{NAME}/pool"}
    assert {u.actor_group for u in listing.utterances} == {ACTOR_GROUP}
    assert {u.language for u in listing.utterances} == {"en"}
    skipped = {where.rsplit(":", 1)[1]: why for where, why in listing.skipped}
    assert skipped == {
        "1234": "not speech (file number outside 50000-55229)",
        "55230": "not speech (file number outside 50000-55229)",
        "50003": f"byte-identical copy of {root / DATA_DIR / 'sky.dsk'}:50001",
        "50004": "empty or shorter than its header (10 bytes)",
        "50005": "packed, but no RNC method-1 signature after the header",
        "50006": "flagged to unpack without its header: not the speech layout",
    }


def test_decode_unpacks_and_cuts_long_silence(package):
    root, _ = package
    source = SteelSkySource()
    lines = {u.id.rsplit("/", 1)[1]: u for u in source.list({NAME: root}).utterances}
    wav, sr = source.decode(lines["50001"])
    assert sr == 11025 and wav.dtype == np.float32 and wav.ndim == 1
    kept = SPEECH[int(0.5 * SAMPLE_RATE):]  # 0.5 s of leading 0x80 cut, 0.1 s at the end kept
    np.testing.assert_array_equal(wav, (np.frombuffer(kept, np.uint8).astype(np.float32) - 128) / 128)
    wav, _ = source.decode(lines["50002"])  # stored uncompressed
    assert wav.size == int(0.4 * SAMPLE_RATE)


def test_decode_errors_name_the_entry(package):
    root, _ = package
    source = SteelSkySource()
    lines = {u.id.rsplit("/", 1)[1]: u for u in source.list({NAME: root}).utterances}
    with pytest.raises(AudioError, match=r"sky.dsk:50007:\d+:\d+:rnc: cannot be unpacked \(.*CRC of the packed"):
        source.decode(lines["50007"])
    with pytest.raises(AudioError, match=r"sky.dsk:50008:.*: 58% of the samples at full scale \(clipped\)"):
        source.decode(lines["50008"])


def test_missing_files(tmp_path):
    with pytest.raises(SourceError, match=f"{NAME}: .*{DATA_DIR}/sky.dnr is missing"):
        SteelSkySource().list({NAME: tmp_path})
    with pytest.raises(SourceError, match=f"no folder given for package {NAME}"):
        SteelSkySource().list({})


def test_registered_as_a_training_only_default_source():
    assert SOURCES[NAME].endswith(":SteelSkySource") and get_source(NAME).name == NAME
    assert DEFAULT_SOURCES[-1] == NAME  # last: every other utterance keeps its index in the corpus
    assert NAME in TRAIN_ONLY_SOURCES


@pytest.mark.corpus
def test_real_package(real_listing):
    source, listing = real_listing(NAME)
    assert len(listing.utterances) == 3487  # 0.0372: every speech entry, none skipped
    assert listing.files_seen == 5097
    assert {why for _, why in listing.skipped} == {"not speech (file number outside 50000-55229)"}
    for line in (listing.utterances[0], listing.utterances[len(listing.utterances) // 2], listing.utterances[-1]):
        wav, sr = source.decode(line)  # both CRCs checked
        assert sr == 11025 and 0.3 * sr < wav.size < 20 * sr
