"""Spoken stamp descriptions of Tux Paint (Debian package ``tuxpaint-stamps-default``).

Layout measured on version 2022.06.04-1: every stamp is ``usr/share/tuxpaint/stamps/CATEGORY/.../NAME.png``
(or ``.svg``) with, next to it, optional sounds:

- ``NAME.ogg`` / ``NAME_LOCALE.ogg``: the stamp's sound effect (animal calls, engines, ...) or a localized
  one (the digits of ``symbols/math`` spoken in one language); not descriptions, left out;
- ``NAME_desc.ogg`` (English) and ``NAME_desc_LOCALE.ogg``: a person reading the stamp's description
  ("A hen."), Ogg Vorbis, almost all 44,100 Hz. These are the utterances kept.

The package's changelog credits each language's descriptive sounds to one person (Belarusian Kseniya
Buraya, Bulgarian Krasimir Petkov, Catalan Pere Pujal Carabantes, Danish Joe Dalton, Greek Kiriaki
Serafeim, Spanish Estefanía Ortiz, Romanian "Tabbytha", Russian Edwin Veber; French Jacques Chion and,
later, "PaulK"). So the speaker is the language set, ``desc_LOCALE`` (``desc_en`` for the unsuffixed
English files, which are uncredited). A set may hold a second voice (French) that we cannot separate
without listening; the set stays one speaker and one group, which only errs on the safe side for the
speaker-disjoint splits. The language is the locale's language part (``pt_BR`` -> ``pt``).

Left out: the sound effects above; the Brazilian Portuguese ``.wav`` descriptions ("recorded by various
Brazilian school children", one unnamed child a file: not attributable); byte-identical copies of a
file already kept (some stamps share one recording); a Danish file named ``*_desc_da.ogg.ogg`` is
read like the others.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from speechsep.data.sources.base import Listing, SourceUtterance, SpeechSource
from speechsep.data.sources.common import (
    DuplicateFilter,
    iso_language,
    make_utterance,
    read_mono,
    require_dir,
    require_files,
)

__all__ = ["STAMPS_DIR", "UNATTRIBUTED_LOCALES", "TuxpaintStamps", "parse_name"]

STAMPS_DIR = "usr/share/tuxpaint/stamps"
"""Where ``dpkg -x`` puts the stamps, relative to the unpack folder."""

UNATTRIBUTED_LOCALES: dict[str, str] = {
    "pt_BR": "recorded by various unnamed school children (changelog): speaker unknown",
}
"""Description sets whose speakers the package does not name one by one."""

_AUDIO = (".ogg", ".wav")
# NAME_desc[_LOCALE].EXT, LOCALE like ``es``, ``pt_BR``, ``sr@latin``; ``.ogg.ogg`` occurs once
_DESC = re.compile(r"^(?P<stamp>.+)_desc(?:_(?P<locale>[a-z]{2,3}(?:_[A-Z]{2})?(?:@[a-z]+)?))?(?:\.ogg|\.wav)+$")


def parse_name(filename: str) -> str | None:
    """The locale of a description file (``"en"`` for none), or ``None`` when it is not one."""
    m = _DESC.match(filename)
    if m is None:
        return None
    return m.group("locale") or "en"


class TuxpaintStamps(SpeechSource):
    name = "tuxpaint-stamps"
    packages = ("tuxpaint-stamps-default",)
    description = "Tux Paint stamp descriptions read aloud, about 14 language sets of one reader each, 44.1 kHz Ogg"

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, STAMPS_DIR)
        files = require_files(self, sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(_AUDIO)),
                              f"no .ogg/.wav files under {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            locale = parse_name(path.name)
            if locale is None:
                skipped.append((str(path), "sound effect, not a _desc description"))
                continue
            if reason := UNATTRIBUTED_LOCALES.get(locale) or copies.skip_reason(path):
                skipped.append((str(path), reason))
                continue
            rel = path.relative_to(root).as_posix()
            # the id drops every extension: ``hen_desc_da.ogg.ogg`` -> ``hen_desc_da``
            utterances.append(make_utterance(self, rel.split(".", 1)[0], f"desc_{locale}", iso_language(locale), path))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        return read_mono(utterance.path)
