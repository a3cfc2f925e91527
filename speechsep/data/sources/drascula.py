"""Speech from "Drascula: The Vampire Strikes Back" (Debian ``drascula`` and ``drascula-spanish``).

Each package holds one language's voice files (layout measured on version 1.0+ds4-2):
``usr/share/scummvm/drascula/en/*.ALS`` (``drascula``, English) and
``usr/share/scummvm/drascula/es/*.ALS`` (``drascula-spanish``, Spanish). Italian, German and French
packages ship subtitles only (``drascula-italian`` plays the English audio), so they are not read.

Format: headerless unsigned 8-bit mono PCM, 0x80 = silence, 11,025 Hz. The rate is ScummVM's: its
drascula engine plays every ``.als`` with ``makeRawStream(stream, 11025, FLAG_UNSIGNED)``, and its
workaround for ``3.als`` skips exactly the 73,959 bytes of leading 0x80 that our copy has. The data
agree: read at 11,025 Hz the hero's median pitch is ~185 Hz, B.J.'s (a woman) ~240 Hz, Drascula's
~135 Hz; at 22,050 Hz or 8,000 Hz these would be implausible for the cast.

Speakers come from the file-name prefix, which is the engine's talk routine: ``NNN`` the hero (John
Hacker), ``I`` Igor, ``VB`` Von Braun, ``BJ`` B.J., ``T`` the bartender, ``P`` the pianist, ``B`` the
drunk, ``L`` the werewolf, ``E`` the character of ``talk_mus``. ``D`` is Drascula's text table, which
the engine also borrows for other voices: ``D57``-``D65`` are the hero (``talk_hacker``), ``D68``-``D77``
the blind man (``talk_blind``: index + 67), ``D82`` the bartender. ``D1``-``D40`` are Drascula; the other
``D`` lines (``D56``, ``D66``, ``D67``, ``D78``-``D81``, ``D83``) have no confirmed speaker and are
left out. Also left out: ``S*`` (sound effects), symbolic links (the Spanish package links three files
to the English folder), ``F1``-``F3`` (not used by the engine's talk code, and the same take in both
languages, one byte apart, so not language speech), ``B61``/``B62`` (outside the drunk's dialogue
lines, and shared with the Spanish game through links: a language-independent take) and
byte-identical copies (none in 1.0+ds4-2).

Trimming: only leading/trailing runs of pure 0x80 longer than 0.3 s are cut (152 English and 69
Spanish files have one; ``3.ALS`` starts with 6.7 s of it); nothing else is changed.

Actor groups. The game credits no voice cast; a small studio's cast usually doubles parts, and
without listening we cannot tell who voiced whom. So every utterance of both languages shares one
group, ``drascula/cast``: the whole game goes to one split. The two dubbings' pitches differ (hero
~185 vs ~160 Hz, Drascula ~135 Hz in English) so they are probably different actors, but both
come from one small Spanish developer whose English dub may reuse its actors, so we do not rely on it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from speechsep.data.sources.base import Listing, SourceUtterance, SpeechSource
from speechsep.data.sources.common import (
    DuplicateFilter,
    make_utterance,
    read_raw,
    require_dir,
    require_file,
    require_files,
)

__all__ = [
    "ALS_DIR", "SAMPLE_RATE", "SILENCE_RUN_S", "ACTOR_GROUP", "PREFIX_SPEAKERS", "speaker_of",
    "trim_silence_runs", "DrasculaSource", "DrasculaEnglish", "DrasculaSpanish",
]

ALS_DIR = "usr/share/scummvm/drascula"
"""Where ``dpkg -x`` puts the language folders (``en``, ``es``), relative to the unpack folder."""
SAMPLE_RATE = 11025
SILENCE_RUN_S = 0.3
"""Leading/trailing runs of exact silence (0x80) longer than this are cut."""
ACTOR_GROUP = "drascula/cast"
"""One group for both languages (module docstring)."""

PREFIX_SPEAKERS: dict[str, str] = {
    "": "hero",
    "I": "igor",
    "VB": "vonbraun",
    "BJ": "bj",
    "T": "bartender",
    "P": "pianist",
    "B": "drunk",
    "L": "werewolf",
    "E": "mus",  # the engine's talk_mus; the game never names it
}
"""File-name prefix -> character, for every prefix but ``D`` (see :func:`speaker_of`)."""

_D_SPEAKERS: list[tuple[range, str]] = [
    (range(1, 41), "drascula"),
    (range(57, 66), "hero"),  # talk_hacker(57..65) plays d57..d65
    (range(68, 78), "blind"),  # talk_blind(1..10) plays d68..d77
    (range(82, 83), "bartender"),  # talk_bartender(82) is a special case that plays d82
]
_NAME = re.compile(r"^([A-Z]*)(\d+)$")


def speaker_of(stem: str) -> tuple[str | None, str]:
    """``(speaker, "")`` for a file stem (``"D12"``, ``"304"``), or ``(None, why it is left out)``."""
    m = _NAME.match(stem.upper())
    if m is None:
        return None, "name is not PREFIX + number"
    prefix, number = m.group(1), int(m.group(2))
    if prefix == "S":
        return None, "sound effect (S*)"
    if prefix == "F":
        return None, "not used by the talk code; same take in both languages"
    if prefix == "D":
        for numbers, speaker in _D_SPEAKERS:
            if number in numbers:
                return speaker, ""
        return None, "Drascula's text table line with no confirmed speaker"
    if prefix == "B" and number > 14:
        return None, "outside the drunk's dialogue lines; language-independent take"
    if prefix not in PREFIX_SPEAKERS:
        return None, f"unknown prefix {prefix!r}"
    return PREFIX_SPEAKERS[prefix], ""


def trim_silence_runs(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, *, max_run_s: float = SILENCE_RUN_S) -> np.ndarray:
    """Cut a leading and a trailing run of exact zeros (0x80 in the file) longer than ``max_run_s``."""
    nonzero = np.flatnonzero(wav)
    if nonzero.size == 0:
        return wav
    start, end = int(nonzero[0]), int(nonzero[-1]) + 1
    limit = max_run_s * sample_rate
    return wav[start if start > limit else 0:end if len(wav) - end > limit else len(wav)]


class DrasculaSource(SpeechSource):
    """One language's voice files: subclasses set ``name``, ``packages``, ``language`` and ``folder``."""

    language: ClassVar[str] = ""
    #: the language folder under :data:`ALS_DIR`
    folder: ClassVar[str] = ""

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, Path(ALS_DIR) / self.folder)
        files = require_files(self, sorted((p for p in root.iterdir() if p.suffix.upper() == ".ALS"), key=_natural),
                              f"no .ALS files in {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            if path.is_symlink():  # points into another language's folder (or nowhere)
                skipped.append((str(path), "symbolic link to another file"))
                continue
            speaker, reason = speaker_of(path.stem)
            if speaker is None or (reason := copies.skip_reason(path)):
                skipped.append((str(path), reason))
                continue
            utterances.append(make_utterance(self, path.stem, speaker, self.language, path, actor_group=ACTOR_GROUP))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        wav = read_raw(require_file(Path(utterance.path)), "cannot be read as raw unsigned 8-bit PCM",
                       subtype="PCM_U8", samplerate=SAMPLE_RATE)
        return trim_silence_runs(wav), SAMPLE_RATE


def _natural(path: Path) -> tuple[str, int, str]:
    m = _NAME.match(path.stem.upper())
    return (m.group(1), int(m.group(2)), path.name) if m else (path.stem, -1, path.name)


class DrasculaEnglish(DrasculaSource):
    name = "drascula-en"
    packages = ("drascula",)
    description = "Drascula adventure game, English voices: hero, Drascula and ~10 characters, 11.025 kHz 8-bit"
    language = "en"
    folder = "en"


class DrasculaSpanish(DrasculaSource):
    name = "drascula-es"
    packages = ("drascula-spanish",)
    description = "Drascula adventure game, Spanish voices: hero, Drascula and ~10 characters, 11.025 kHz 8-bit"
    language = "es"
    folder = "es"
