"""Read Russian sentences of the Festival voice ``msu_ru_nsh_clunits`` (Debian ``festvox-ru``).

Version 0.5+dfsg-6 installs the voice's recording database under
``usr/share/festival/voices/russian/msu_ru_nsh_clunits/``: ``wav/ru_0001.wav`` .. ``ru_0620.wav``
(RIFF WAV, 16-bit mono, 16,000 Hz, 99.5 minutes in all) with their prompts in
``etc/txt.done.data``. These are whole sentences of fiction read aloud by one man (``nsh`` in the
voice's name: the initials of its author, Nickolay Shmyrev) and recorded for a unit-selection (clunits) voice: natural read
speech, not diphones and not synthesis, so every file is kept. Byte-identical copies would be
left out (there are none).

One speaker, ``nsh``, with his own actor group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechsep.data.sources.base import Listing, SourceUtterance, SpeechSource
from speechsep.data.sources.common import (
    DuplicateFilter,
    make_utterance,
    read_mono,
    require_dir,
    require_files,
)

__all__ = ["WAV_DIR", "SPEAKER", "FestvoxRussian"]

WAV_DIR = "usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav"
"""Where ``dpkg -x`` puts the recordings, relative to the unpack folder."""
SPEAKER = "nsh"


class FestvoxRussian(SpeechSource):
    name = "festvox-ru"
    packages = ("festvox-ru",)
    description = "Russian read sentences of one male speaker (Festival clunits voice database), 16 kHz WAV"
    language = "ru"

    def list(self, folders: dict[str, Path]) -> Listing:
        root = require_dir(self, folders, WAV_DIR)
        files = require_files(self, sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav"),
                              f"no .wav files in {root}")
        utterances: list[SourceUtterance] = []
        skipped: list[tuple[str, str]] = []
        copies = DuplicateFilter()
        for path in files:
            if reason := copies.skip_reason(path):
                skipped.append((str(path), reason))
                continue
            utterances.append(make_utterance(self, path.stem, SPEAKER, self.language, path))
        return Listing(utterances=utterances, files_seen=len(files), skipped=skipped)

    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        return read_mono(utterance.path)
