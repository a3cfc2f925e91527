"""Telephone prompts of two community Asterisk voice packs, each read by one credited speaker.

- ``asterisk-prompt-fr-armelle`` (version 20070613-2.2): French, read by Armelle Desjardins
  (``debian/copyright``); files in ``usr/share/asterisk/sounds/fr/`` and its ``digits/``,
  ``letters/``, ``phonetic/`` and ``dictate/`` folders.
- ``asterisk-prompt-es-co`` (version 0.20070403-2.1): Colombian Spanish, read by July E. Jiménez for
  Avatar Ltda. (``LEEME``); files in ``usr/share/asterisk/sounds/es/`` and ``es/digits/``.

Format: raw GSM 06.10 (``.gsm``, 33-byte frames of 160 samples, no header), mono, 8,000 Hz, as
Asterisk plays them. libsndfile decodes it with ``format="RAW", subtype="GSM610"``.

Both packages also install symbolic links (``sounds/digits/fr`` -> ``../fr/digits`` ...) outside
the language folder; only the language folder is walked and links are not followed, so no file is
read twice. Left out: the two tones of the Colombian pack, ``beep`` and ``beeperr`` (the only files
whose spectrum is one strong peak, checked on every file; neither pack has music on hold) and
byte-identical copies (five in the Colombian pack: ``pbx-invalid`` = ``invalid``, ``vm-minutes`` =
``queue-minutes``, ``transfer2`` = ``transfer``, ``digits/h-1`` = ``vm-first``, ``vm-forwardoptions``
= ``vm-forward``; the first in path order is kept).

Each pack is one person, so each source has one speaker and its own actor group.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from speechsep.audio import AudioError
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
    "SOUNDS_DIR", "SAMPLE_RATE", "GSM_FRAME_BYTES", "non_speech_reason", "AsteriskPromptSource",
    "ArmelleFrench", "ColombianSpanish",
]

SOUNDS_DIR = "usr/share/asterisk/sounds"
"""Where ``dpkg -x`` puts the prompt folders, relative to the unpack folder."""
SAMPLE_RATE = 8000
GSM_FRAME_BYTES = 33
"""One GSM 06.10 frame (20 ms); a raw ``.gsm`` file is a whole number of them."""

# Asterisk's names for tones, music on hold and silence fillers; only ``beep``/``beeperr`` occur in
# these two packs, the rest guards a newer version of them.
_NON_SPEECH = re.compile(r"^(beep\w*|tone\w*|moh\w*|music\w*|silence\w*|dtmf\w*|ring\w*)$", re.IGNORECASE)


def non_speech_reason(relative: str) -> str:
    """Why the prompt at ``relative`` (``"digits/1.gsm"``) is not speech, or ``""`` if it is."""
    parts = Path(relative).with_suffix("").parts
    if any(_NON_SPEECH.match(part) for part in parts):
        return "tone/music, not speech"
    return ""


class AsteriskPromptSource(SpeechSource):
    """One voice pack: subclasses set ``name``, ``packages``, ``language``, ``folder`` and ``speaker``."""

    language: ClassVar[str] = ""
    #: the pack's folder under :data:`SOUNDS_DIR`
    folder: ClassVar[str] = ""
    speaker: ClassVar[str] = ""

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, Path(SOUNDS_DIR) / self.folder)
        files = require_files(self, sorted(
            Path(dirpath) / f
            for dirpath, _, names in os.walk(root)  # does not follow directory links
            for f in names if f.lower().endswith(".gsm")
        ), f"no .gsm files under {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                skipped.append((str(path), "symbolic link to another file"))
                continue
            if reason := non_speech_reason(relative) or copies.skip_reason(path):
                skipped.append((str(path), reason))
                continue
            utterances.append(make_utterance(self, relative[:-len(".gsm")], self.speaker, self.language, path))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        path = require_file(Path(utterance.path))
        size = path.stat().st_size
        # any bytes decode to *something*: the frame count is the one structural check raw GSM has
        if size == 0 or size % GSM_FRAME_BYTES:
            raise AudioError(path, f"{size} bytes is not a whole number of {GSM_FRAME_BYTES}-byte GSM 06.10 frames")
        wav = read_raw(path, "cannot be decoded as raw GSM 06.10", subtype="GSM610", samplerate=SAMPLE_RATE)
        return wav, SAMPLE_RATE


class ArmelleFrench(AsteriskPromptSource):
    name = "asterisk-fr-armelle"
    packages = ("asterisk-prompt-fr-armelle",)
    description = "Asterisk telephone prompts in French read by Armelle Desjardins, 8 kHz GSM"
    language = "fr"
    folder = "fr"
    speaker = "armelle"


class ColombianSpanish(AsteriskPromptSource):
    name = "asterisk-es-co"
    packages = ("asterisk-prompt-es-co",)
    description = "Asterisk telephone prompts in Colombian Spanish read by July E. Jiménez, 8 kHz GSM"
    language = "es"
    folder = "es"
    speaker = "july"
