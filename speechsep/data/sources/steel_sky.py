"""Speech from "Beneath a Steel Sky" (Debian ``beneath-a-steel-sky``, the freeware CD version 0.0372).

Layout (measured on 0.0372-8): ``usr/share/scummvm/beneath-a-steel-sky/sky.dnr`` indexes the
72 MB container ``sky.dsk``. The format, in our words, as ScummVM's sky engine reads it
(``engines/sky/disk.cpp``, ``sound.cpp``):

- ``sky.dnr``: a little-endian uint32 entry count, then one 8-byte entry each: uint16 file number;
  a 24-bit offset field whose bit 23 says the offset counts 16-byte units (bits 0-22 the value); a
  24-bit flags field: bits 0-21 the stored size in bytes, bit 22 "unpack without the file header",
  bit 23 "stored uncompressed". 0.0372 has 5,097 entries.
- A stored file starts with a 22-byte header of eleven uint16 (little-endian). The first word is
  a flag whose bit 7 marks an RNC-packed file and whose high byte is bits 16-23 of the full size;
  the seventh word (byte 12) is the low 16 bits of that size, header included. A packed file
  holds RNC method-1 data after its header (:mod:`speechsep.data.sources.rnc`), which unpacks to
  what follows the header.
- Speech: the engine plays line ``n`` of text section ``s`` from file ``50000 + start[s] + n``,
  the section starts being 0, 600, 1100, 2430, 3380, 4530 and 5080 (the last section holds at most
  150 lines), so speech is file numbers 50000-55229. Each is unsigned 8-bit mono PCM at 11,025 Hz
  (0x80 = silence) after its header. In 0.0372 all 3,487 of them are RNC-packed, none is
  uncompressed or flagged otherwise, and no two are byte-identical; every packed and unpacked CRC
  checks out. 115.9 minutes (median line 1.9 s); trimming (below) takes 0.15 minutes off.

Left out, with a reason each: the other entries of ``sky.dnr`` (graphics, music, sound effects,
scripts: not speech), entries shorter than the header, past the end of ``sky.dsk``, without the RNC
signature a packed file needs, flagged to unpack without their header, and byte-identical copies.
Files that fail to unpack are reported by the build as decoding failures.

Trimming: leading and trailing runs of exact silence (0x80) longer than 0.3 s are cut, as for
Drascula (:func:`speechsep.data.sources.drascula.trim_silence_runs`); nothing else is changed.
Clipping, measured on 0.0372: 76 % of the lines reach full scale (0x00 or 0xFF) at least once and
33 % stay there for 3 or more samples in a row (flat-topped peaks), 2.6 % for 10 or more; but only
0.26 % of all samples are at full scale, at most 30 % in one line, 3.4 % in the 99th-percentile line.
So no line is dropped for it: :data:`CLIP_DROP_SHARE` refuses only a line mostly at full scale.

Speakers. The files carry no speaker: which character says a line is in the game's scripts, and one
actor may voice several characters anyway. So every line is one speaker, ``pool``, in one actor
group, ``beneath-a-steel-sky/cast``: the mixer never pairs two lines of the game with each other
(a group of one speaker cannot be paired with itself, and pitch pairing only splits a group into
its speakers), and :data:`speechsep.data.voices.TRAIN_ONLY_SOURCES` keeps the source out of the
held-out splits, since unlabelled voices cannot be kept out of training reliably. How many voices the
pool holds is not known: the median pitch of 400 random lines (YIN, :mod:`speechsep.data.pitch`)
spreads from 97 to 274 Hz (5th to 95th percentile, 18 semitones), most lines at 100-160 Hz and 37 %
above 165 Hz, so several men and at least some women (or raised voices); pitch cannot count them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from speechsep.audio import AudioError, validate_waveform
from speechsep.data.sources.base import Listing, SourceError, SourceUtterance, SpeechSource
from speechsep.data.sources.common import DuplicateFilter, content_digest, make_utterance, require_file
from speechsep.data.sources.drascula import trim_silence_runs
from speechsep.data.sources.rnc import HEADER_SIZE as RNC_HEADER_SIZE
from speechsep.data.sources.rnc import RNC_MAGIC, RncError, unpack

__all__ = [
    "DATA_DIR", "SAMPLE_RATE", "SPEECH_FIRST", "SPEECH_END", "FILE_HEADER_SIZE", "SPEAKER", "ACTOR_GROUP",
    "CLIP_DROP_SHARE", "DnrEntry", "read_dnr", "SteelSkySource",
]

DATA_DIR = "usr/share/scummvm/beneath-a-steel-sky"
SAMPLE_RATE = 11025
SPEECH_FIRST, SPEECH_END = 50000, 55230
"""Speech file numbers are ``SPEECH_FIRST <= n < SPEECH_END`` (module docstring)."""
FILE_HEADER_SIZE = 22
SPEAKER = "pool"
ACTOR_GROUP = "beneath-a-steel-sky/cast"
CLIP_DROP_SHARE = 0.5
"""A line with more than this share of its samples at full scale (0x00 or 0xFF) is refused; none
of 0.0372's lines comes near it."""

_OFFSET_IN_PARAGRAPHS = 1 << 23  # offset field: the value counts 16-byte units
_UNPACK_WITHOUT_HEADER = 1 << 22  # flags field
_STORED_UNCOMPRESSED = 1 << 23  # flags field
_HEADER_PACKED = 0x80  # file header's flag word


class DnrEntry:
    """One entry of ``sky.dnr``: file number, byte offset in ``sky.dsk``, stored size, flag bits."""

    __slots__ = ("number", "offset", "size", "flags")

    def __init__(self, number: int, offset: int, size: int, flags: int):
        self.number, self.offset, self.size, self.flags = number, offset, size, flags

    @property
    def compressed(self) -> bool:
        return not self.flags & _STORED_UNCOMPRESSED

    def __repr__(self) -> str:
        return f"DnrEntry({self.number}, offset={self.offset}, size={self.size}, flags={self.flags:#x})"


def read_dnr(path: Path) -> list[DnrEntry]:
    """Every entry of ``sky.dnr``; :class:`SourceError` naming the file when it is not one."""
    data = path.read_bytes()
    if len(data) < 4:
        raise SourceError(f"{path}: {len(data)} bytes, too short for a sky.dnr entry count")
    (count,) = struct.unpack_from("<I", data)
    if count == 0 or len(data) < 4 + 8 * count:
        raise SourceError(f"{path}: says {count} entries of 8 bytes but holds {len(data) - 4} bytes after the count")
    entries = []
    for k in range(count):
        number, off_lo, off_hi, size_lo, size_hi = struct.unpack_from("<HHBHB", data, 4 + 8 * k)
        offset_field, size_field = off_lo | off_hi << 16, size_lo | size_hi << 16
        offset = offset_field & 0x7FFFFF
        if offset_field & _OFFSET_IN_PARAGRAPHS:
            offset <<= 4
        entries.append(DnrEntry(number, offset, size_field & 0x3FFFFF, size_field & 0xC00000))
    return entries


def _entry_key(entry: DnrEntry) -> str:
    return f"{entry.number}:{entry.offset}:{entry.size}:{'rnc' if entry.compressed else 'raw'}"


class SteelSkySource(SpeechSource):
    name = "beneath-a-steel-sky"
    packages = ("beneath-a-steel-sky",)
    description = ("Beneath a Steel Sky adventure game, English dialogue, unlabelled cast as one pool "
                   "(RNC-packed 8-bit, 11.025 kHz; training only)")

    def _files(self, folders: dict[str, Path]) -> tuple[Path, Path]:
        if self.packages[0] not in folders:
            raise SourceError(f"{self.name}: no folder given for package {self.packages[0]}")
        given = Path(folders[self.packages[0]])
        # the unpacked package, or a folder holding sky.dnr and sky.dsk
        folder = next((p for p in (given / DATA_DIR, given) if (p / "sky.dnr").is_file()), given / DATA_DIR)
        dnr, dsk = folder / "sky.dnr", folder / "sky.dsk"
        for path in (dnr, dsk):
            if not path.is_file():
                raise SourceError(f"{self.name}: {path} is missing (is {self.packages[0]} unpacked there?)")
        return dnr, dsk

    def list(self, folders: dict[str, Path]) -> Listing:
        dnr, dsk = self._files(folders)
        entries = read_dnr(dnr)
        dsk_size = dsk.stat().st_size
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        with open(dsk, "rb") as f:
            for entry in sorted(entries, key=lambda e: e.number):
                where = f"{dsk}:{entry.number}"
                reason = ""
                if not SPEECH_FIRST <= entry.number < SPEECH_END:
                    reason = f"not speech (file number outside {SPEECH_FIRST}-{SPEECH_END - 1})"
                elif entry.size < FILE_HEADER_SIZE + (RNC_HEADER_SIZE if entry.compressed else 1):
                    reason = f"empty or shorter than its header ({entry.size} bytes)"
                elif entry.offset + entry.size > dsk_size:
                    reason = "extends past the end of sky.dsk"
                elif entry.flags & _UNPACK_WITHOUT_HEADER:
                    reason = "flagged to unpack without its header: not the speech layout"
                else:
                    f.seek(entry.offset)
                    data = f.read(entry.size)
                    packed = entry.compressed and data[0] & _HEADER_PACKED
                    if packed and data[FILE_HEADER_SIZE:FILE_HEADER_SIZE + 4] != RNC_MAGIC:
                        reason = "packed, but no RNC method-1 signature after the header"
                    elif not (reason := copies.copy_of(digest := content_digest(data))):
                        copies.keep(digest, where)
                if reason:
                    skipped.append((where, reason))
                    continue
                utterances.append(make_utterance(self, str(entry.number), SPEAKER, "en", dsk,
                                                 entry=_entry_key(entry), actor_group=ACTOR_GROUP))
        if not utterances:
            raise SourceError(f"{self.name}: no speech entries ({SPEECH_FIRST}-{SPEECH_END - 1}) in {dnr}")
        return Listing(utterances=utterances, files_seen=len(entries), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        path = require_file(Path(utterance.path))
        where = f"{path}:{utterance.entry}"
        try:
            number, offset, size, kind = utterance.entry.split(":")
            offset, size = int(offset), int(size)
        except ValueError:
            raise AudioError(where, "entry is not NUMBER:OFFSET:SIZE:rnc|raw") from None
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) < FILE_HEADER_SIZE:
            raise AudioError(where, f"{len(data)} bytes, shorter than the {FILE_HEADER_SIZE}-byte file header")
        flag, low = struct.unpack_from("<H", data, 0)[0], struct.unpack_from("<H", data, 12)[0]
        audio_size = ((flag & 0xFF00) << 8 | low) - FILE_HEADER_SIZE
        if audio_size <= 0:
            raise AudioError(where, f"the file header gives {audio_size + FILE_HEADER_SIZE} bytes, no audio")
        if kind == "rnc" and flag & _HEADER_PACKED:
            try:
                pcm = unpack(data[FILE_HEADER_SIZE:], where)
            except RncError as err:
                raise AudioError(where, f"cannot be unpacked ({err})") from err
        else:
            pcm = data[FILE_HEADER_SIZE:]
        if len(pcm) != audio_size:
            raise AudioError(where, f"{len(pcm)} bytes of audio, the file header gives {audio_size}")
        raw = np.frombuffer(pcm, dtype=np.uint8)
        clipped = np.count_nonzero((raw == 0) | (raw == 255))
        if clipped > CLIP_DROP_SHARE * raw.size:
            raise AudioError(where, f"{clipped / raw.size:.0%} of the samples at full scale (clipped)")
        wav = validate_waveform((raw.astype(np.float32) - 128.0) / 128.0, where)
        return trim_silence_runs(wav, SAMPLE_RATE), SAMPLE_RATE
