"""Spoken letters and syllables of KLettres (Debian package ``klettres-data``).

Layout measured on version 4:22.12.3-1: ``usr/share/klettres/LANG/{alpha,syllab}/*.ogg`` with a
``LANG/sounds.xml`` naming each file's letter or syllable; Ogg Vorbis, mono or stereo, almost all
44,100 Hz (the Danish letters say 128,000 Hz in their header and sound right at that rate; one
Malayalam file is 22,050 Hz). 20 language folders hold audio: 1,836 files, 51.3 min, mean 1.7 s, much
of it leading and trailing silence (the handbook asks contributors to pad sounds to 1.5-2 s), often
with room noise in it, so :meth:`KLettres.decode` trims it (see :func:`speechsep.data.sources.common.trim_silence`). ``id`` and ``nn`` have a ``sounds.xml``
but no audio in the package (and ``nn``'s, per its ``sounds.xml``, are CereVoice text-to-speech).

Speakers. The handbook's credits (``usr/share/doc/HTML/en/klettres/index.docbook``) and the
``sounds.xml`` comments name one contributor per language, two for some: Brazilian Portuguese (a
father and his 9-year-old son), Spanish (Ana Belén Caballero and Juan Pedro Paredes), Low Saxon
(Manfred Wiese and Sönke Dibbern). Nothing says which file is whose, and the pitch of the files
(median F0 per file) does not split those folders into two voices: the Portuguese files all sound
child-high (250-370 Hz), the Spanish all near 180 Hz, the Low Saxon all male (100-130 Hz). So each
of those folders stays one speaker, erring on the safe side (a speaker that may hold two people is
never mixed with itself). One language does split cleanly: German ``alpha`` is a high voice (median
about 230 Hz, stereo) and German ``syllab`` a man (about 115 Hz, mono) - and ``de/alpha/sz.ogg``, the
one mono letter, not in ``sounds.xml``, is the man too (122 Hz) - so German is two speakers,
``de-alpha`` and ``de-syllab``. ``en`` (a man, credited Robert Wadley) and ``en_GB`` (a woman,
uncredited) are different people and two speakers. The speaker is ``klettres/<folder>``.

Language: the folder's language part as ISO 639-1 (``pt_BR`` -> ``pt``, ``en_GB`` -> ``en``); Low
Saxon has no ISO 639-1 code and keeps its ISO 639-2/3 code ``nds``.

Actor groups: ``kde-voices/<language>`` for every file, shared with the KTuberling reader
(:mod:`speechsep.data.sources.ktuberling`). KDE's education apps took their voices from the same
small pool of translators per language, and neither package says who recorded what across apps, so
one language's KDE voices (both apps, every speaker) go to one split. This also keeps ``en`` and
``en_GB`` together. No contributor is credited for two languages within KLettres.

Left out: byte-identical copies of a file already kept (hash of the bytes), and anything that is
not ``.ogg`` (the ``sounds.xml`` and ``LANG.txt`` files are not counted as candidates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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

__all__ = ["SOUNDS_DIR", "KLettres"]

SOUNDS_DIR = "usr/share/klettres"
"""Where ``dpkg -x`` puts the language folders, relative to the unpack folder."""

# files whose voice is not their folder's: measured by pitch, see the module docstring
_SPEAKER_OVERRIDES = {"de/alpha/sz.ogg": "de-syllab"}
_SPLIT_BY_SUBFOLDER = {"de"}


class KLettres(SpeechSource):
    name = "klettres"
    packages = ("klettres-data",)
    description = "KLettres spoken letters and syllables, about 20 languages of one or two voices, 44.1 kHz Ogg"

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, SOUNDS_DIR)
        # a language folder is one with alpha/ or syllab/ inside (icons/, pics/ are not)
        files = require_files(self, sorted(
            p for sub in ("alpha", "syllab") for p in root.glob(f"*/{sub}/*")
            if p.is_file() and p.suffix.lower() == ".ogg"
        ), f"no LANG/alpha/*.ogg or LANG/syllab/*.ogg under {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            rel = path.relative_to(root).as_posix()
            folder, sub = path.parent.parent.name, path.parent.name
            if reason := copies.skip_reason(path):
                skipped.append((str(path), reason))
                continue
            speaker = _SPEAKER_OVERRIDES.get(rel) or (f"{folder}-{sub}" if folder in _SPLIT_BY_SUBFOLDER else folder)
            language = iso_language(folder)
            utterances.append(make_utterance(self, rel.rsplit(".", 1)[0], speaker, language, path,
                                             actor_group=KDE_GROUP.format(language=language)))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        return decode_trimmed(utterance.path)
