"""What a speech source is: one Debian package's recordings, listed and decoded by one small reader.

A reader (one file under ``speechsep/data/sources/``) knows one package layout and one audio format.
It does two things, both cheap to call from a worker process:

- ``list(folders)`` walks the unpacked package(s) and says which files are natural speech, who
  speaks in each and in which language, and which files it left out and why (effects, duplicates,
  music, lines it cannot attribute to a speaker);
- ``decode(utterance)`` turns one listed utterance into float32 samples at the file's own rate.

Everything after that (decoding in parallel, resampling, the bandwidth and minutes of the build
report, speaker-disjoint splits, mixing) is shared code in ``speechsep.data.voices`` and
``speechsep.data.corpus``, so adding a source is one file plus one line in ``sources/__init__.py``.

Speaker names are prefixed with the source name, so they are unique across sources. Where a source
cannot tell two characters' actors apart (one actor may voice several characters of a game),
its utterances share an ``actor_group``: a whole group goes to one split, so a held-out voice is
never also heard in training under another character's name.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

__all__ = ["SourceUtterance", "Listing", "SpeechSource", "SourceError"]


class SourceError(RuntimeError):
    """A source's files are missing or not in the layout its reader knows; the message names them."""


@dataclass(frozen=True)
class SourceUtterance:
    """One recorded line, before decoding."""

    id: str  # unique across the corpus: "<source>/<file stem or entry>"
    speaker: str  # unique across sources: "<source>/<speaker>"
    language: str  # ISO 639-1 code ("en", "es", ...)
    path: str  # the file to decode
    entry: str = ""  # for container formats: which part of ``path`` (an archive member, an index)
    actor_group: str = ""  # utterances that may share an actor share a group ("" = the speaker itself)

    @property
    def group(self) -> str:
        return self.actor_group or self.speaker


@dataclass
class Listing:
    """What ``SpeechSource.list`` found."""

    utterances: list[SourceUtterance]
    files_seen: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why it was left out)


class SpeechSource(abc.ABC):
    """One reader. Subclasses set the class attributes and implement ``list`` and ``decode``."""

    #: short unique name, used as the prefix of speaker and utterance ids ("drascula-en")
    name: ClassVar[str] = ""
    #: the Debian packages this reader needs, fetched with ``apt-get download`` and unpacked
    packages: ClassVar[tuple[str, ...]] = ()
    #: one line for the build report: what the recordings are
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def list(self, folders: dict[str, Path]) -> Listing:
        """Utterances of the unpacked packages (``folders[package]`` is each one's unpack root).

        Raises :class:`SourceError` naming the path when the layout is not the expected one.
        """

    @abc.abstractmethod
    def decode(self, utterance: SourceUtterance) -> tuple[np.ndarray, int]:
        """``(samples (T,) float32 mono, sample rate)`` at the recording's own rate.

        Raises :class:`speechsep.audio.AudioError` naming the file when it cannot be decoded.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, packages={self.packages})"
