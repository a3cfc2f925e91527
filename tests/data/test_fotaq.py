"""The resource-table parser on a synthetic queen.1c built here (the real one is in test_demo_corpus)."""

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from speechsep.audio import AudioError
from speechsep.data.fotaq import decode_entry, read_resource_table, speech_entries


def _mp3(seconds=0.5, sr=11025, seed=0):
    buf = io.BytesIO()
    wav = 0.2 * np.random.default_rng(seed).standard_normal(int(seconds * sr))
    sf.write(buf, wav, sr, format="MP3")
    return buf.getvalue()


def _dog(key):
    return b"\0" * 24 + struct.pack(">h", key) + b"\0" * 10


def _resource_file(path, entries):
    header = b"QTBL" + b"CEM10\0\0\0" + bytes([1]) + struct.pack(">H", len(entries))
    offset = len(header) + 21 * len(entries)
    table, blobs = b"", b""
    for name, data in entries:
        table += name.encode().ljust(12, b"\0") + b"\0" + struct.pack(">II", offset + len(blobs), len(data))
        blobs += data
    path.write_bytes(header + table + blobs)
    return path


@pytest.fixture
def queen(tmp_path):
    return _resource_file(tmp_path / "queen.1c", [
        ("FAYE2.DOG", _dog(18)),
        ("FAYE5.DOG", _dog(21)),
        ("BOB1.DOG", _dog(6)),
        ("180001P1.SB", _mp3(seed=1)),   # Faye
        ("210004P2.SB", _mp3(seed=2)),   # Faye again, through another dialogue
        ("060002J1.SB", _mp3(seed=3)),   # Joe talking to Bob
        ("060002P1.SB", b"\xff\xfbnot really an mp3"),  # Bob, undecodable
        ("JOE00011.SB", _mp3(seed=4)),   # Joe's narration
        ("990001P1.SB", _mp3(seed=5)),   # unknown talk key: left out
        ("C12A_061.SB", _mp3(seed=6)),   # cutaway line without a speaker: left out
        ("ROOM.PCX", b"image"),
    ])


def test_table_and_speakers(queen):
    table = read_resource_table(queen)
    assert [e.name for e in table][:3] == ["FAYE2.DOG", "FAYE5.DOG", "BOB1.DOG"]
    lines, unmapped = speech_entries(queen)
    assert [(e.name, e.speaker) for e in lines] == [
        ("180001P1.SB", "FAYE"), ("210004P2.SB", "FAYE"), ("060002J1.SB", "JOE"), ("060002P1.SB", "BOB"),
        ("JOE00011.SB", "JOE"),
    ]
    assert unmapped == 2


def test_decode_and_failure_names_the_entry(queen):
    lines, _ = speech_entries(queen)
    wav, sr = decode_entry(queen, lines[0])
    assert sr == 11025 and wav.ndim == 1 and wav.size > 4000
    with pytest.raises(AudioError, match=r"queen.1c:060002P1.SB"):
        decode_entry(queen, lines[3])


def test_not_a_resource_file(tmp_path):
    (tmp_path / "x").write_bytes(b"RIFFxxxx")
    with pytest.raises(ValueError, match="no QTBL header"):
        read_resource_table(tmp_path / "x")


@pytest.mark.slow
def test_demo_build_lists_undecodable_lines(tmp_path, monkeypatch):
    """build_demo from a local queen.1c and noise folder (no apt): the bad line is reported, not lost."""
    import json

    from data_fakes import tone, write_fake_package, write_wav

    from speechsep.data.demo_corpus import DemoOptions, build_demo

    names = ["AND", "BOB", "CHEF", "DOG", "FRANK", "IAN", "JIM", "LOLA", "NAOMI", "SEC"]
    entries = [(f"{n}1.DOG", _dog(10 + k)) for k, n in enumerate(names)]
    entries += [(f"{10 + k}000{u}P1.SB", _mp3(1.0, seed=10 * k + u)) for k in range(len(names)) for u in range(2)]
    entries += [("JOE00011.SB", _mp3(1.0, seed=99)), ("110009P1.SB", b"\xff\xfbbroken")]
    queen = _resource_file(tmp_path / "queen.1c", entries)
    for k, n in enumerate(["rain1", "wind1", "crowd1", "hum1"]):
        write_wav(tmp_path / "noise" / f"{n}.wav", tone(60 + 10 * k, 8000, seed=k))
    from speechsep.data.sources import SOURCES

    monkeypatch.setitem(SOURCES, "fake-b", "data_fakes:FakeB")
    monkeypatch.setitem(SOURCES, "fake-c", "data_fakes:FakeC")
    lines = []
    fakes = {"fake-pkg-b": write_fake_package(tmp_path / "b", {"july": 4, "ana": 4, "luz": 4}, seed=1),
             "fake-pkg-c": write_fake_package(tmp_path / "c", {"armelle": 4, "paul": 4, "marc": 4}, seed=2)}
    opts = DemoOptions(tiny=True, sources=("fotaq", "fake-b", "fake-c"), noise_dir=str(tmp_path / "noise"),
                       package_paths={"flight-of-the-amazon-queen": str(queen), **{k: str(v) for k, v in fakes.items()}})
    build_demo(tmp_path / "corpus", opts, log=lines.append)
    report = json.loads((tmp_path / "corpus" / "build_report.json").read_text())
    fotaq = report["speech"]["sources"]["fotaq"]
    assert fotaq["decoded"] == 21 and fotaq["speakers"] == 11 and fotaq["actor_groups"] == 1
    assert [s["file"].rsplit(":", 3)[1] for s in fotaq["skipped"]] == ["110009P1.SB"]
    assert any("skipped" in line and "110009P1.SB" in line for line in lines)
    # the game's cast is one actor group, the largest: it trains, the other sources are held out
    assert {v for k, v in report["speech"]["speaker_split"].items() if k.startswith("fotaq/")} == {"train"}
