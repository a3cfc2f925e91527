"""Spoken words of KTuberling, the "potato guy" game (Debian package ``ktuberling-data``).

Layout measured on version 4:22.12.3-1: ``usr/share/ktuberling/sounds/LANG/*`` with one
``LANG.soundtheme`` XML beside each folder naming the object each file says ("ball", "egypt_camel",
...). 26 folders, 1,892 files, 32.4 min: Ogg Vorbis at 44,100 or 22,050 Hz for most languages, 8 kHz
(some 22,050 or 44,100 Hz) 16-bit WAV for the oldest sets (es, fi, fr, it, nds, nl, pt, sv), 48 kHz
Opus for ``nn``. A few files are not in their ``.soundtheme`` (spare takes); they are the same voice
and kept. :meth:`KTuberling.decode` trims leading and trailing silence like the KLettres reader.

Speakers. The package credits no one per language (the handbook only credits John Calhoun for the
original English sounds), but the files' Vorbis comments do, and the recording dates separate sessions:

- ``ca``: every file has an ARTIST tag, seven names, two families (Mas, Lladó); each name is one
  speaker, with "Bernat" read as "Bernat Mas" (same family set, same pitch range);
- ``da``: 40 files tagged "Martha Schou" (the robin-tux theme, a high voice) and 106 untagged
  (a man, median F0 100-160 Hz): two speakers. 20 more untagged ``xmas_*`` files, tagged
  "Processed by SoX", have a high voice like Martha Schou's but no name: not attributable, left out;
- ``ru``: files dated 2010-11 (base, egypt, moon, pizzeria themes; a man, 120-150 Hz) and 2010-12
  (tux, robin, tv, xmas themes; a woman, 190-250 Hz) are two speakers; the one undated file
  (``egypt_column``, 128 Hz, an egypt-theme word) belongs to the November set;
- every other folder is one speaker. Where pitch hints at two voices without a way to tell files
  apart (``en`` alternates between about 110 and 200 Hz within every theme; ``pt``'s eight 8 kHz
  files spread from 116 to 320 Hz), the folder stays one speaker, erring on the safe side: a
  speaker that may hold two people is never mixed with itself.

The speaker is ``ktuberling/<folder>`` or ``ktuberling/<folder>-<name or session>``.

Language: the folder's language part as ISO 639-1 (``sr@latin`` -> ``sr``); Low Saxon keeps its
ISO 639-2/3 code ``nds`` (there is no 639-1 code); Walloon is ``wa``.

Actor groups: ``kde-voices/<language>`` for every file, shared with the KLettres reader: the same
translators recorded voices for several KDE education apps and neither package says who did what,
so one language's KDE voices (both apps, every speaker) go to one split.

Left out: ``nn`` (all 190 files): tagged "Karl Ove Hufthammer / Øystein Steffensen-Alværvik", the
two people KLettres' ``nn/sounds.xml`` credits for its Nynorsk sounds, which it says "were generated
using the commercial CereVoice Cloud text-to-speech service"; same people, same years, same Opus
encoding as GCompris' - taken to be text-to-speech. The four Serbian folders (``sr``, ``sr@latin``,
``sr@ijekavian``, ``sr@ijekavianlatin``) hold the same 15 files byte for byte: the copies are
left out by hash, like any other byte-identical copy.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import soundfile as sf

from speechsep.data.sources.base import Listing, SourceUtterance, SpeechSource
from speechsep.data.sources.common import (
    KDE_GROUP,
    DuplicateFilter,
    decode_trimmed,
    iso_language,
    make_utterance,
    require_dir,
    require_files,
)

__all__ = ["SOUNDS_DIR", "TTS_FOLDERS", "KTuberling", "speaker_of"]

SOUNDS_DIR = "usr/share/ktuberling/sounds"
"""Where ``dpkg -x`` puts the language folders, relative to the unpack folder."""

TTS_FOLDERS: dict[str, str] = {
    "nn": "text-to-speech (CereVoice): tagged by the people KLettres' nn/sounds.xml credits for CereVoice sounds",
}
"""Language folders left out whole, and why."""

_AUDIO = (".ogg", ".wav", ".opus")
_TAGGED = {"ca", "da", "ru"}  # folders whose speaker comes from the files' tags
_CA_ALIASES = {"Bernat": "Bernat Mas"}
_UNATTRIBUTED = "no speaker tag in a folder of several tagged voices: speaker unknown"


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def _tags(path: Path) -> dict[str, str]:
    try:
        with sf.SoundFile(str(path)) as f:
            return {"artist": f.artist.strip(), "date": f.date.strip(), "comment": f.comment.strip()}
    except Exception:  # an unreadable file: no tags here; decode() reports it properly
        return {"artist": "", "date": "", "comment": ""}


def speaker_of(folder: str, tags: dict[str, str]) -> str | None:
    """Speaker name (without the source prefix) of a file in ``folder`` with Vorbis ``tags``; ``None``: unknown."""
    if folder == "ca":
        artist = _CA_ALIASES.get(tags["artist"], tags["artist"])
        return f"ca-{_slug(artist)}" if artist else None
    if folder == "da":
        if tags["artist"]:
            return f"da-{_slug(tags['artist'])}"
        # the untagged SoX-processed xmas set is a different, higher voice than the untagged man
        return None if "sox" in tags["comment"].lower() else "da"
    if folder == "ru":
        return "ru-2010-12" if tags["date"].startswith("2010-12") else "ru-2010-11"
    return folder


class KTuberling(SpeechSource):
    name = "ktuberling"
    packages = ("ktuberling-data",)
    description = "KTuberling spoken object names, about 23 languages of one to seven voices, 8-44.1 kHz"

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, SOUNDS_DIR)
        files = require_files(self, sorted(p for p in root.glob("*/*") if p.is_file() and p.suffix.lower() in _AUDIO),
                              f"no LANG/*.ogg, *.wav or *.opus files under {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        ids: set[str] = set()
        for path in files:
            folder = path.parent.name
            if reason := TTS_FOLDERS.get(folder) or copies.skip_reason(path):
                skipped.append((str(path), reason))
                continue
            tags = _tags(path) if folder in _TAGGED else {"artist": "", "date": "", "comment": ""}
            speaker = speaker_of(folder, tags)
            if speaker is None:
                skipped.append((str(path), _UNATTRIBUTED))
                continue
            language = iso_language(folder)
            rel = path.relative_to(root).as_posix()
            key = rel.rsplit(".", 1)[0]
            if key in ids:  # the same word as .wav and .ogg: keep the extension to tell them apart
                key = rel
            ids.add(key)
            utterances.append(make_utterance(self, key, speaker, language, path,
                                             actor_group=KDE_GROUP.format(language=language)))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        return decode_trimmed(utterance.path)
