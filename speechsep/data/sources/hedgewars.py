"""Hedgehog taunts of Hedgewars (Debian package ``hedgewars-data``).

Layout measured on version 1.0.2-6: ``usr/share/games/hedgewars/Data/Sounds/voices/PACK/*.ogg``, 15
voice packs, 839 files, 14.9 min, Ogg Vorbis at 44,100 Hz (15 British files at 48,000 Hz), mean 1.1 s:
shouted exclamations ("Take cover!", "You'll regret that!") named by the event they answer
(``Takecover.ogg``), one pack a character voice. A pack named ``NAME_xx`` is a localisation in
language ``xx`` (the game's voicepack convention: ``Default_es``, ``Default_pl``, ``Default_ru``,
``Default_uk`` is Ukrainian, ``Russian_pl`` is Polish with a Russian accent); every other pack is
English (British, Classic, Default, HillBilly, Mobster, Pirate, Russian-accented English, Surfer).
:meth:`HedgewarsVoices.decode` trims leading and trailing silence like the KDE readers.

Speakers and groups. The package has no voice credits. Upstream's about page credits four people
for all the original hedgehog voices (Stephen Alexander, John Dum, Jonatan Nilsson, Daniel Martin),
so the English packs share a handful of actors in unknown ways; upstream's ``credits.txt`` files
(not in the package) give ``Default_pl`` and ``Russian_pl`` to the same person (MTG90PL). And
``Default`` re-uses 21 of ``Classic``'s recordings (11 byte for byte, the rest re-encoded: same
loudness envelope), with the same pitch and formant ranges: one voice. So: one speaker a pack,
except ``Default_pl`` + ``Russian_pl`` (speaker ``MTG90PL``) and ``Classic`` + ``Default`` (speaker
``Classic-Default``); and ALL packs in one actor group ``hedgewars/cast``, so no held-out voice is
heard in training under another pack's name.

Left out:

- processed packs: ``Robot`` (its pitch is nearly flat, a median 0.7 semitone spread within a
  file against about 4 for the other packs: vocoded) and ``Singer`` (sung, not spoken: steadier
  pitch, 2.3 semitones, and much more harmonic, spectral flatness 0.016 against 0.03-0.09);
- non-verbal vocalizations, by file name: grunts and pain sounds (``Ooff*``, ``Ow*``, ``Jump*``,
  ``Firepunch*``), ``Laugh``, ``PoisonCough``, ``PoisonMoan`` and ``Hmm``;
- byte-identical copies of a file already kept (``Default`` and ``Default_uk`` hold copies of
  ``Classic`` lines; ``Default_uk``'s ``Ouch`` and ``Uh-oh`` are Classic's English words), and
  ``Default/Flyaway.ogg``, a re-encoded copy of ``Classic/Flyaway.ogg``.

Caveat (measured, not heard): every pack, not only Robot, looks pitch-raised like a cartoon voice:
median F0 290-400 Hz with third formant near 4.0-4.6 kHz, where the adult KLettres readers measure
2.6-3.4 kHz and a child 3.9 kHz. If that is a pitch shift, these packs are processed voices too; the
build report should treat the source with care.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from speechsep.data.sources.base import Listing, SourceUtterance, SpeechSource
from speechsep.data.sources.common import (
    DuplicateFilter,
    decode_trimmed,
    make_utterance,
    require_dir,
    require_files,
)

__all__ = ["VOICES_DIR", "PROCESSED_PACKS", "SAME_ACTOR", "CONTENT_COPIES", "HedgewarsVoices", "pack_language", "is_nonverbal"]

VOICES_DIR = "usr/share/games/hedgewars/Data/Sounds/voices"
"""Where ``dpkg -x`` puts the voice packs, relative to the unpack folder."""

PROCESSED_PACKS: dict[str, str] = {
    "Robot": "processed pack: robot voice (nearly flat pitch, vocoded)",
    "Singer": "processed pack: sung, not spoken",
}
"""Packs left out whole, and why."""

SAME_ACTOR: dict[str, str] = {
    "Default_pl": "MTG90PL", "Russian_pl": "MTG90PL",  # upstream credits.txt
    "Classic": "Classic-Default", "Default": "Classic-Default",  # shared recordings, same voice
}
"""Packs of one voice: they share one speaker name."""

CONTENT_COPIES: dict[str, str] = {"Default/Flyaway.ogg": "Classic/Flyaway.ogg"}
"""Re-encoded copies (same recording, different bytes), measured on 1.0.2-6: left out."""

CAST_GROUP = "hedgewars/cast"

_NONVERBAL = re.compile(r"^(?:Ooff\d*|Ow\d*|Jump\d*|Firepunch\d*|Laugh|PoisonCough|PoisonMoan|Hmm)$", re.I)
_LOCALIZED = re.compile(r"^.+_([a-z]{2})$")


def pack_language(pack: str) -> str:
    """ISO 639-1 language of a voice pack: the ``_xx`` suffix, else English."""
    m = _LOCALIZED.match(pack)
    return m.group(1) if m else "en"


def is_nonverbal(stem: str) -> bool:
    """Whether a taunt file (name without ``.ogg``) is a grunt, laugh or cough rather than words."""
    return _NONVERBAL.match(stem) is not None


class HedgewarsVoices(SpeechSource):
    name = "hedgewars"
    packages = ("hedgewars-data",)
    description = "Hedgewars hedgehog taunts, 13 voice packs of 11 voices (English accents, es, pl, ru, uk), 44.1 kHz Ogg"

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, VOICES_DIR)
        files = require_files(self, sorted(p for p in root.glob("*/*") if p.is_file() and p.suffix.lower() == ".ogg"),
                              f"no PACK/*.ogg files under {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            pack = path.parent.name
            if pack in PROCESSED_PACKS:
                skipped.append((str(path), PROCESSED_PACKS[pack]))
                continue
            if is_nonverbal(path.stem):
                skipped.append((str(path), "non-verbal vocalization (grunt, laugh, cough), not speech"))
                continue
            rel = f"{pack}/{path.name}"
            if rel in CONTENT_COPIES and (root / CONTENT_COPIES[rel]).is_file():
                skipped.append((str(path), f"re-encoded copy of {root / CONTENT_COPIES[rel]}"))
                continue
            if reason := copies.skip_reason(path):
                skipped.append((str(path), reason))
                continue
            utterances.append(make_utterance(self, f"{pack}/{path.stem}", SAME_ACTOR.get(pack, pack),
                                             pack_language(pack), path, actor_group=CAST_GROUP))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        return decode_trimmed(utterance.path)
