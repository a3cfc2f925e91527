"""Speech from "Fish Fillets - Next Generation" (Debian ``fillets-ng-data-cs`` and ``fillets-ng-data-nl``).

Each package holds one dubbing of the game's dialogue (layout measured on version 1.0.1-1.1):
``usr/share/games/fillets-ng/sound/LEVEL/LANG/NAME.ogg`` (and ``sound/share/TOPIC/LANG/`` for
lines shared by all levels), Ogg Vorbis at 22,050 Hz; a few Czech levels added later (``linux``,
``keys``, ``hanoi``, ``fdto``, ``hole``, ``nowall``, ``rush``) are 44,100 Hz, some of them stereo
(mixed down). ``decode`` returns each file's own rate.

Who speaks is in the file name, ``PREFIX-SPEAKER-ID`` (``vit-m-hlava``: level prefix ``vit``, the
small fish ``m``, line ``hlava``); some levels drop the prefix (``m-hazet``, ``b1-zasah3``) or put the
speaker last (``mene-m``). ``m`` (Czech *malá*) is the small fish and ``v`` (*velká*) the big fish:
the two leads, the same two actors throughout (a woman and a man in the Czech original). Every other
code is a minor character of its level (``pap`` the parrot of ``cabin1``, ``hs`` the talking statue of
``city``, ``1``/``2`` the two penguins of ``linux``, ``1``..``8`` the vikings, ...); its speaker id is
``LEVEL-CODE``, because one short code means different characters in different levels. The 23
``help*.ogg`` of ``briefcase`` are the boss's tape (speaker ``briefcase-help``).

Left out (see :func:`parse_name`): ``-x-`` lines (the game's catch-all code: an effect, both fish at
once, or an unnamed character such as the grandpa of ``elevator2``, so not attributable from the
name), ``-hurt-`` screams and ``shout`` calls, the numbered dialogue steps of ``keys``, ``key`` and
``electromagnet`` (the level script, not the name, says which fish speaks: ``addm(0, "rand-0-0")``),
names that fit no pattern, and byte-identical copies (a line reused by two levels is kept once).

Actor groups. The game credits no cast for its minor characters, and a dubbing usually gives small
parts to the lead actors or to one or two extras; we cannot tell them apart without listening. So all
minor characters of a dubbing share one group, ``<source>/cast``, and a lead whose voice a minor part
may be (median pitch close to the lead's) joins it (``minors_join``). Measured (autocorrelation pitch,
25 files a character): Czech small fish ~275 Hz, big fish ~150 Hz, minor characters 90-345 Hz, close
to both leads, so the whole Czech dubbing is one group. Dutch small fish ~220 Hz, big fish ~145 Hz;
the only attributable minor voice is the boss's tape at ~200 Hz, close to the small fish, so the small
fish and the tape share ``fillets-nl/cast`` and the big fish is a group of its own.

The Dutch recordings are dull (99 % of the energy below about 2.4 kHz, docs/design.md#fish-fillets-dubbings; on
60 random kept files the 99 % rolloff has a median of 1.2 kHz, against 4.8 kHz for the Czech): they
are kept; the build report's bandwidth column shows it.
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
    read_mono,
    require_dir,
    require_files,
)

__all__ = ["SOUND_DIR", "LEADS", "FilletsSource", "FilletsCzech", "FilletsDutch", "parse_name"]

SOUND_DIR = "usr/share/games/fillets-ng/sound"
"""Where ``dpkg -x`` puts the level sound folders, relative to the unpack folder."""

LEADS: dict[str, str] = {"m": "small", "v": "big"}
"""File-name code -> speaker name of the two lead fish."""

_SPLIT = re.compile(r"[-_]")  # the Dutch dubbing sometimes writes ``bar_v_fotka``

_SCRIPTED_LEVELS = frozenset({"keys", "key", "electromagnet"})
"""Levels whose file names number the steps of a dialogue (``rand-0-5-3``, ``init-0``): the level
script, not the name, says which fish speaks each step, so these lines cannot be attributed."""


def parse_name(level: str, stem: str) -> tuple[str | None, str]:
    """``(speaker, "")`` for a line we can attribute, ``(None, reason)`` otherwise.

    ``speaker`` is ``small``/``big`` for the leads and ``LEVEL-CODE`` for a minor character.
    """
    tokens = _SPLIT.split(stem)
    if len(tokens) >= 3:
        code = tokens[1]
    elif len(tokens) == 2:
        first, last = tokens
        if len(last) <= 2 and len(first) > 2:  # ``mene-m``, ``init-0``: speaker last
            code = last
        elif len(first) <= 2:  # ``m-hazet``, ``b1-zasah3``, ``kd-silver``: no level prefix
            code = first
        else:  # ``cactus-0big``: no speaker in the name
            return None, "no speaker code in the name"
    else:
        code = re.sub(r"\d+$", "", stem)  # ``help4``: one numbered series, one voice
        if not code:
            return None, "no speaker code in the name"
    if code == "x":
        return None, "-x- line: effect or unnamed/several speakers"
    if "hurt" in tokens or code == "shout":
        return None, "scream/shout, not speech"
    if code in LEADS:
        return LEADS[code], ""
    if level in _SCRIPTED_LEVELS:
        return None, "numbered dialogue step: the level script picks the fish"
    return f"{level}-{code}", ""


class FilletsSource(SpeechSource):
    """One dubbing of Fish Fillets NG: subclasses set ``name``, ``packages`` and ``language``."""

    language: ClassVar[str] = ""
    #: leads whose voice the minor characters may share (pitch close to theirs): they join the
    #: minor characters' group ``<source>/cast``; a lead not named here keeps a group of its own
    minors_join: ClassVar[frozenset[str]] = frozenset(LEADS.values())

    def list(self, folders: dict[str, Path]) -> Listing:
        sound = require_dir(self, folders, SOUND_DIR)
        files = require_files(
            self, sorted(sound.glob(f"*/{self.language}/*.ogg")) + sorted(sound.glob(f"share/*/{self.language}/*.ogg")),
            f"no {self.language} .ogg files under {sound}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            level = path.parent.parent.name
            speaker, reason = parse_name(level, path.stem)
            if speaker is None or (reason := copies.skip_reason(path)):
                skipped.append((str(path), reason))
                continue
            utterances.append(make_utterance(self, f"{level}/{path.stem}", speaker, self.language, path,
                                             actor_group=self._group(speaker)))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def _group(self, speaker: str) -> str:
        if speaker in LEADS.values() and speaker not in self.minors_join:
            return ""  # a lead no minor part sounds like: its own group
        return f"{self.name}/cast"  # every minor part, and the leads they may be

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        return read_mono(utterance.path)


class FilletsCzech(FilletsSource):
    name = "fillets-cs"
    packages = ("fillets-ng-data-cs",)
    description = "Fish Fillets NG, Czech dubbing: two lead fish and minor characters, 22.05 kHz Ogg"
    language = "cs"
    minors_join = frozenset({"small", "big"})  # minor pitches span both leads' (module docstring)


class FilletsDutch(FilletsSource):
    name = "fillets-nl"
    packages = ("fillets-ng-data-nl",)
    description = "Fish Fillets NG, Dutch dubbing: two lead fish and a few other voices, 22.05 kHz Ogg (dull, <2.4 kHz)"
    language = "nl"
    minors_join = frozenset({"small"})  # the boss's tape (200 Hz) is close to the small fish (220 Hz)

