"""Every real-speech source the demo corpus can draw from, one reader a file.

``SOURCES`` maps a source name to ``module:Class``; modules are imported only when a source is
used, so listing the names costs nothing. Adding a source = one reader file + one line here.

Reserved packages: the Debian packages in :data:`RESERVED_PACKAGES` are kept for an independent
evaluation and are never read by the project (training, validation, test, examples, tests).
:func:`get_source` refuses a reader that names one, and a test checks every reader.
"""

from __future__ import annotations

import importlib

from speechsep.data.sources.base import Listing, SourceError, SourceUtterance, SpeechSource

__all__ = [
    "SOURCES", "DEFAULT_SOURCES", "RESERVED_PACKAGES", "get_source", "Listing", "SourceError", "SourceUtterance",
    "SpeechSource",
]

SOURCES: dict[str, str] = {
    "fotaq": "speechsep.data.sources.fotaq:FotaqSource",
    "drascula-en": "speechsep.data.sources.drascula:DrasculaEnglish",
    "drascula-es": "speechsep.data.sources.drascula:DrasculaSpanish",
    "festvox-ru": "speechsep.data.sources.festvox_ru:FestvoxRussian",
    "asterisk-fr-armelle": "speechsep.data.sources.asterisk_prompts:ArmelleFrench",
    "asterisk-es-co": "speechsep.data.sources.asterisk_prompts:ColombianSpanish",
    "fillets-cs": "speechsep.data.sources.fillets:FilletsCzech",
    "fillets-nl": "speechsep.data.sources.fillets:FilletsDutch",
    "tuxpaint-stamps": "speechsep.data.sources.tuxpaint:TuxpaintStamps",
    "warzone2100": "speechsep.data.sources.warzone:Warzone2100",
    "klettres": "speechsep.data.sources.klettres:KLettres",
    "ktuberling": "speechsep.data.sources.ktuberling:KTuberling",
    "hedgewars": "speechsep.data.sources.hedgewars:HedgewarsVoices",
    "beneath-a-steel-sky": "speechsep.data.sources.steel_sky:SteelSkySource",
}

DEFAULT_SOURCES: tuple[str, ...] = tuple(name for name in SOURCES if name != "hedgewars")
"""What ``speechsep data demo`` reads when ``--sources`` is not given. Hedgewars is left out: every
pack measures as pitch-raised (median F0 290-400 Hz, third formant 4.0-4.6 kHz against 2.6-3.4 kHz
for adult readers), i.e. processed cartoon voices, not natural speech; ``--sources`` can add it.
Beneath a Steel Sky is read, last, for training only (its lines carry no speaker:
``speechsep.data.voices.TRAIN_ONLY_SOURCES``); being last, it leaves every other utterance's index
in the corpus as it was."""

RESERVED_PACKAGES: frozenset[str] = frozenset({
    "asterisk-core-sounds-en", "asterisk-core-sounds-es", "asterisk-core-sounds-fr", "asterisk-core-sounds-it",
    "asterisk-core-sounds-ru", "asterisk-prompt-it-menardi",
})
"""Prefixes: every codec variant (``-wav``, ``-gsm``, ``-g722``, ...) of these is reserved too."""


def is_reserved(package: str) -> bool:
    return any(package == p or package.startswith(p + "-") for p in RESERVED_PACKAGES)


def get_source(name: str) -> SpeechSource:
    """An instance of the reader registered as ``name``."""
    if name not in SOURCES:
        raise KeyError(f"unknown speech source {name!r}; known: {', '.join(SOURCES)}")
    module, cls_name = SOURCES[name].split(":")
    source = getattr(importlib.import_module(module), cls_name)()
    if source.name != name:
        raise ValueError(f"{SOURCES[name]} calls itself {source.name!r}, registered as {name!r}")
    reserved = [p for p in source.packages if is_reserved(p)]
    if reserved:
        raise ValueError(f"speech source {name!r} reads {reserved}: reserved for independent evaluation, never used")
    return source
