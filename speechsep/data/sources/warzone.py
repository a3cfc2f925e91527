"""Voiced lines of Warzone 2100 (Debian package ``warzone2100-data``).

The game data are zip archives, ``usr/share/games/warzone2100/*.wz`` (layout measured on version
4.3.3-3: ``base.wz`` holds all the audio, ``mp.wz`` none). Sounds are Ogg Vorbis members, almost all
mono 11,025 Hz; they are read straight from the archive (``path`` = the ``.wz`` file, ``entry`` = the
member name), never unpacked to disk.

Kept, one role a folder (speaker ``warzone2100/ROLE``):

- ``audio/memressp/*`` (except ``cmndrvoc``) and ``audio/extra``: the command console's spoken messages
  ("Research completed", "Structure under attack"), role ``announcer``;
- ``audio/memressp/cmndrvoc``: commander unit reports and spoken numbers, role ``commander``;
- ``audio/countdown``: mission timer and countdown announcements, role ``countdown``;
- ``audio/tutorial``: the tutorial narration, role ``tutorial``;
- ``audio/proxmessages``: campaign field reports, role ``briefing``;
- ``audio/taunts/taunt1..3``: multiplayer taunts, three voices, roles ``taunt1``..``taunt3``.

Left out: ``audio/sfx``, ``audio/multi`` and ``audio/radclick`` (effects); ``audio/nexus`` (the NEXUS
AI: a processed, robotic voice); ``audio/coltive``, ``audio/trnsppil`` and ``audio/vtoltalk`` (radio
chatter, distorted so much that a pitch tracker finds almost no voiced frames); ``sequenceaudio`` (the
cutscene soundtracks: narration under a continuous music/effects bed, no pauses quieter than -20 dB
in most); laughs (``haha*``); any folder not listed above; byte-identical copies, and the console
lines ``pcvNNN`` that ``memressp/console`` and ``memressp/missmesg`` both hold (re-encoded: different
bytes, identical samples).

Actor groups. The game credits no cast. Every kept role but two taunts has a median pitch of
190-230 Hz (announcer ~210, commander ~220, countdown ~225, tutorial ~195, briefing ~187, taunt2 ~230)
and the same studio sound: most likely one actress reading all of the console, tutorial and
briefings, so they share ``warzone2100/narrator``. ``taunt1`` (~117 Hz) and ``taunt3`` (~130 Hz) are
low voices that may be one actor: they share ``warzone2100/taunts-low``.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speechsep.audio import validate_waveform
from speechsep.data.sources.base import Listing, SourceError, SourceUtterance, SpeechSource
from speechsep.data.sources.common import (
    DuplicateFilter,
    content_digest,
    decode_file,
    make_utterance,
    package_root,
)

__all__ = ["DATA_DIR", "Warzone2100", "classify_member"]

DATA_DIR = "usr/share/games/warzone2100"
"""Where ``dpkg -x`` puts the ``.wz`` archives, relative to the unpack folder."""

_AUDIO = (".ogg", ".wav", ".opus")

# folder prefix -> (role, actor group); the first matching prefix wins, so specific ones come first
_ROLES: tuple[tuple[str, str, str], ...] = (
    ("audio/memressp/cmndrvoc/", "commander", "narrator"),
    ("audio/memressp/", "announcer", "narrator"),
    ("audio/extra/", "announcer", "narrator"),
    ("audio/countdown/", "countdown", "narrator"),
    ("audio/tutorial/", "tutorial", "narrator"),
    ("audio/proxmessages/", "briefing", "narrator"),
    ("audio/taunts/taunt1/", "taunt1", "taunts-low"),
    ("audio/taunts/taunt2/", "taunt2", "narrator"),  # pitch like the narrator's: may be her
    ("audio/taunts/taunt3/", "taunt3", "taunts-low"),
)

_SKIPPED: tuple[tuple[str, str], ...] = (
    ("audio/sfx/", "sound effect"),
    ("audio/multi/", "sound effect"),
    ("audio/radclick/", "radio click effect"),
    ("audio/nexus/", "NEXUS AI voice: processed, robotic"),
    ("audio/coltive/", "radio chatter: heavily processed"),
    ("audio/trnsppil/", "radio chatter: heavily processed"),
    ("audio/vtoltalk/", "radio chatter: heavily processed"),
    ("sequenceaudio/", "cutscene soundtrack: speech under music/effects"),
)


def _line_number(member: str) -> str:
    """``pcv480`` for ``audio/memressp/console/pcv480.ogg``: the console line's number, else ``""``.

    The same number in two folders is the same recording encoded twice (``console`` and ``missmesg``
    share pcv480-486: different bytes, identical samples), so it is kept once.
    """
    base = member.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    return base if re.fullmatch(r"pcv\d+[a-z]?", base) else ""


def classify_member(member: str) -> tuple[str, str] | tuple[None, str]:
    """``(role, actor group)`` of a kept member, or ``(None, reason)`` for one left out."""
    base = member.rsplit("/", 1)[-1].lower()
    for prefix, reason in _SKIPPED:
        if member.startswith(prefix):
            return None, reason
    for prefix, role, group in _ROLES:
        if member.startswith(prefix):
            if base.startswith("haha"):
                return None, "laughter, not speech"
            return role, group
    return None, "folder not known to hold clean speech"


def _read_member(archive: str, member: str) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return zf.read(member)


class Warzone2100(SpeechSource):
    name = "warzone2100"
    packages = ("warzone2100-data",)
    description = "Warzone 2100 console announcer, tutorial, briefings and taunts (English), 11 kHz Ogg in .wz zips"

    def list(self, folders: dict[str, Path]) -> Listing:
        data = package_root(self, folders) / DATA_DIR
        archives = sorted(data.glob("*.wz")) if data.is_dir() else []
        if not archives:
            raise SourceError(f"{self.name}: no .wz archives in {data} (is {self.packages[0]} unpacked there?)")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()  # keys: content digests, and console line numbers (``pcv480``)
        files_seen = 0
        for archive in archives:
            try:
                with zipfile.ZipFile(archive) as zf:
                    members = sorted(n for n in zf.namelist() if n.lower().endswith(_AUDIO))
                    for member in members:
                        files_seen += 1
                        where = f"{archive}:{member}"
                        role, group = classify_member(member)
                        if role is None:
                            skipped.append((where, group))
                            continue
                        digest = content_digest(zf.read(member))
                        if reason := copies.copy_of(digest):
                            skipped.append((where, reason))
                            continue
                        line = _line_number(member)
                        if line and (first := copies.first(line)):
                            skipped.append((where, f"same console line as {first} (re-encoded copy)"))
                            continue
                        copies.keep(digest, where)
                        if line:
                            copies.keep(line, where)
                        utterances.append(make_utterance(self, member.rsplit(".", 1)[0], role, "en", archive,
                                                         entry=member, actor_group=f"{self.name}/{group}"))
            except (zipfile.BadZipFile, OSError) as err:
                raise SourceError(f"{self.name}: {archive} is not a readable zip archive ({err})") from err
        return Listing(utterances=utterances, files_seen=files_seen, skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        where = f"{utterance.path}:{utterance.entry}"
        data = decode_file(where, lambda: _read_member(utterance.path, utterance.entry), "cannot be read from the archive",
                           errors=(zipfile.BadZipFile, KeyError, OSError))
        wav, sr = decode_file(where, lambda: sf.read(io.BytesIO(data), dtype="float32", always_2d=True))
        wav = validate_waveform(wav.T, where).mean(axis=0)
        return validate_waveform(wav, where), int(sr)
