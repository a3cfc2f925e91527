"""Speech from "Flight of the Amazon Queen" (Debian package ``flight-of-the-amazon-queen``).

The game ships its resources in one table file, ``queen.1c`` (layout measured on version 1.0.0-9,
see docs/design.md#flight-of-the-amazon-queen):

- header: ``QTBL``, the version ``CEM10`` padded with NULs, a flags byte at offset 12
  (1 = speech compressed as MP3) and a big-endian uint16 entry count at offset 13;
- then one 21-byte record per entry: a 12-byte NUL-padded name, one byte, a big-endian uint32
  offset and a big-endian uint32 size, both into the same file.

Speech entries end in ``.SB`` and are plain MP3 streams. A dialogue line is named by a two-digit
"talk key", four hex digits, then ``J`` (Joe, the hero) or ``P`` (the other person of the dialogue);
names starting ``JOE`` are Joe's narration. The ``.DOG`` entry of each dialogue stores its talk key
as a big-endian int16 at byte 24; the entry's name without trailing digits is the character
(``FAYE2.DOG`` and ``FAYE5.DOG`` are both Faye). Lines that cannot be mapped this way are left out
rather than guessed.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsep.audio import AudioError, read_audio

__all__ = [
    "RESOURCE_PATH",
    "HERO",
    "ResourceEntry",
    "SpeechEntry",
    "read_resource_table",
    "speaker_map",
    "speech_entries",
    "decode_entry",
]

RESOURCE_PATH = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
"""Where ``dpkg -x`` puts the resource table, relative to the unpack folder."""
HERO = "JOE"

_MAGIC = b"QTBL"
_HEADER_SIZE = 15
_RECORD = struct.Struct(">12sBII")  # name, unused byte, offset, size
_DIALOGUE = re.compile(r"^(\d\d)[0-9A-F]{4}([JP])\d*\.SB$")


@dataclass(frozen=True)
class ResourceEntry:
    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class SpeechEntry:
    """One spoken line: ``speaker`` is the character (``JOE`` for the hero)."""

    name: str
    speaker: str
    offset: int
    size: int


def read_resource_table(path: str | os.PathLike) -> list[ResourceEntry]:
    """Parse the entry table of ``queen.1c``; raises ``ValueError`` naming the file if it is not one."""
    path = Path(path)
    with open(path, "rb") as f:
        header = f.read(_HEADER_SIZE)
        if len(header) < _HEADER_SIZE or not header.startswith(_MAGIC):
            raise ValueError(f"{path}: not a Flight of the Amazon Queen resource table (no QTBL header)")
        (count,) = struct.unpack(">H", header[13:15])
        raw = f.read(count * _RECORD.size)
    if len(raw) < count * _RECORD.size:
        raise ValueError(f"{path}: truncated entry table ({len(raw)} bytes for {count} entries)")
    file_size = path.stat().st_size
    entries = []
    for i in range(count):
        name, _, offset, size = _RECORD.unpack_from(raw, i * _RECORD.size)
        if offset + size > file_size:
            raise ValueError(f"{path}: entry {i} points past the end of the file")
        entries.append(ResourceEntry(name.rstrip(b"\0").decode("latin-1"), offset, size))
    return entries


def _character(dog_name: str) -> str:
    return re.sub(r"\d+$", "", dog_name.rsplit(".", 1)[0])


def speaker_map(path: str | os.PathLike, entries: list[ResourceEntry]) -> dict[int, str]:
    """Talk key -> character name, read from the ``.DOG`` entries."""
    keys: dict[int, str] = {}
    with open(path, "rb") as f:
        for e in entries:
            if not e.name.endswith(".DOG") or e.size < 26:
                continue
            f.seek(e.offset + 24)
            (key,) = struct.unpack(">h", f.read(2))
            keys[key] = _character(e.name)
    return keys


def speech_entries(path: str | os.PathLike) -> tuple[list[SpeechEntry], int]:
    """All speech lines whose speaker is known, and the number of ``.SB`` entries left out."""
    entries = read_resource_table(path)
    keys = speaker_map(path, entries)
    lines, unmapped = [], 0
    for e in entries:
        if not e.name.endswith(".SB"):
            continue
        speaker = None
        if e.name.startswith(HERO):
            speaker = HERO
        elif m := _DIALOGUE.match(e.name):
            speaker = HERO if m.group(2) == "J" else keys.get(int(m.group(1)))
        if speaker is None:
            unmapped += 1
            continue
        lines.append(SpeechEntry(e.name, speaker, e.offset, e.size))
    return lines, unmapped


def decode_entry(path: str | os.PathLike, entry: SpeechEntry | ResourceEntry) -> tuple[np.ndarray, int]:
    """Decode one MP3 entry to ``(time,)`` float32 at its own rate.

    libsndfile does not detect MP3 in a memory buffer, so the bytes go through a temporary
    ``.mp3`` file. Raises :class:`~speechsep.audio.AudioError` naming the entry if it cannot be decoded.
    """
    with open(path, "rb") as f:
        f.seek(entry.offset)
        data = f.read(entry.size)
    with tempfile.NamedTemporaryFile(suffix=".mp3") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            return read_audio(tmp.name, channel="mixdown")
        except AudioError as err:
            raise AudioError(f"{path}:{entry.name}", err.problem) from None
