"""What several readers need: finding the package folder, dropping byte-identical copies, building
utterances, and decoding with errors that name the file.

Every reader used to spell these out itself; they live here so that the readers keep only what is
particular to their package (its layout, who speaks, what is left out and why). The messages are
the readers' own, so a build report reads the same whichever reader wrote it.

Also here: the silence trimming and the language-folder names of the KDE education apps (KLettres,
KTuberling), which the Hedgewars reader borrows for its short taunts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf

from speechsep.audio import AudioError, read_audio, validate_waveform
from speechsep.data.sources.base import SourceError, SourceUtterance, SpeechSource

__all__ = [
    "package_root", "require_dir", "require_files", "content_digest", "file_digest", "DuplicateFilter", "make_utterance",
    "require_file", "decode_file", "read_raw", "read_mono", "trim_silence", "decode_trimmed", "iso_language", "KDE_GROUP",
]

T = TypeVar("T")


# --- finding the files ---------------------------------------------------------------------------

def package_root(source: SpeechSource, folders: dict[str, Path]) -> Path:
    """The unpack folder of the source's (first and only) package; :class:`SourceError` if none was given."""
    package = source.packages[0]
    if package not in folders:
        raise SourceError(f"{source.name}: no folder given for package {package}")
    return Path(folders[package])


def require_dir(source: SpeechSource, folders: dict[str, Path], relative: str | Path) -> Path:
    """``package_root / relative``, which must be a folder: else :class:`SourceError` naming it."""
    root = package_root(source, folders) / relative
    if not root.is_dir():
        raise SourceError(f"{source.name}: {root} is missing (is {source.packages[0]} unpacked there?)")
    return root


def require_files(source: SpeechSource, files: list[Path], missing: str) -> list[Path]:
    """``files`` unchanged; :class:`SourceError` ``"<source>: <missing>"`` when there are none.

    An empty listing means the layout is not the one the reader knows, never "a package with no speech".
    """
    if not files:
        raise SourceError(f"{source.name}: {missing}")
    return files


# --- byte-identical copies -----------------------------------------------------------------------

def content_digest(data: bytes) -> str:
    """SHA-1 of some bytes, to drop byte-identical copies."""
    return hashlib.sha1(data).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-1 of the file's bytes, to drop byte-identical copies."""
    return content_digest(path.read_bytes())


class DuplicateFilter:
    """Keeps the first file of each content: later byte-identical copies get a skip reason naming it.

    Games and voice packs reuse one recording under several names (two levels, two stamps, a
    language folder copied to its variants); a copy kept twice would put one recording in two splits.
    The first copy in the reader's order wins, so readers sort their files before filtering, and
    call it after their other skip rules (a left-out file does not make a later copy a duplicate).
    """

    def __init__(self) -> None:
        self._first: dict[str, str] = {}

    def first(self, key: str) -> str | None:
        """Where ``key`` (a digest, or another identity such as a line number) was first kept."""
        return self._first.get(key)

    def copy_of(self, key: str) -> str:
        """``"byte-identical copy of FIRST"`` if ``key`` (a digest) was kept before, else ``""``."""
        first = self._first.get(key)
        return "" if first is None else f"byte-identical copy of {first}"

    def keep(self, key: str, where: str) -> None:
        """Remember ``where`` as the first holder of ``key``."""
        self._first.setdefault(key, where)

    def skip_reason(self, path: Path) -> str:
        """Why file ``path`` is left out as a copy, or ``""`` (and it is remembered) when its bytes are new."""
        digest = file_digest(path)
        if reason := self.copy_of(digest):
            return reason
        self.keep(digest, str(path))
        return ""


def make_utterance(source: SpeechSource, key: str, speaker: str, language: str, path: str | Path, *,
              entry: str = "", actor_group: str = "") -> SourceUtterance:
    """A listed line: the id and speaker get the source's name as prefix (unique across sources)."""
    return SourceUtterance(
        id=f"{source.name}/{key}",
        speaker=f"{source.name}/{speaker}",
        language=language,
        path=str(path),
        entry=entry,
        actor_group=actor_group,
    )


# --- decoding ------------------------------------------------------------------------------------

def require_file(path: Path) -> Path:
    """``path``, or :class:`AudioError` when it is not a file (before any format check reads it)."""
    if not path.is_file():
        raise AudioError(path, "no such file")
    return path


def decode_file(where: str | Path, read: Callable[[], T], failure: str = "cannot be decoded as audio",
                errors: tuple[type[BaseException], ...] = (Exception,)) -> T:
    """``read()``, with any of ``errors`` turned into :class:`AudioError` naming ``where``.

    libsndfile raises several exception types for one meaning, "cannot decode", so by default every
    exception is caught; the message keeps its type and text after ``failure``.
    """
    try:
        return read()
    except errors as err:
        raise AudioError(where, f"{failure} ({type(err).__name__}: {err})") from err


def read_raw(path: Path, failure: str, **how) -> np.ndarray:
    """A headerless mono file as float32 samples: libsndfile reads it as ``format="RAW"`` with ``how``
    (``subtype``, ``samplerate``); :class:`AudioError` ``"<path>: <failure> (...)"`` when it cannot."""
    wav, _ = decode_file(path, lambda: sf.read(str(path), format="RAW", channels=1, dtype="float32", **how), failure)
    return validate_waveform(np.asarray(wav, dtype=np.float32).reshape(-1), path)


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """A self-describing file (WAV, Ogg, ...) as mono float32 at its own rate.

    Validated again after the mixdown: two channels in opposite phase average to silence.
    """
    wav, sr = read_audio(path, channel="mixdown")
    return validate_waveform(wav, path), sr


# --- short words with padding: silence trimming --------------------------------------------------

TRIM_FLOOR_DB = -50.0
TRIM_MARGIN_S = 0.050
_NOISE_HEADROOM_DB = 6.0
_MAX_THRESHOLD_DB = -30.0


def trim_silence(wav: np.ndarray, sample_rate: int, *, floor_db: float = TRIM_FLOOR_DB,
                 margin_s: float = TRIM_MARGIN_S) -> np.ndarray:
    """Cut the leading and trailing silence of a short word, keeping ``margin_s`` around the sound.

    Loudness is the RMS of 10 ms frames. Silence is what is ``floor_db`` (-50 dB) or more below the
    loudest frame. Many of these recordings have room noise well above that (the 5th-percentile
    frame sits 24-43 dB below the peak in the hu, ml, ar, he, es and en sets of KLettres), so where
    the file's own noise floor is higher the threshold rises to 6 dB above it, but never above
    -30 dB, so weak word edges are not cut. A silent input comes back unchanged
    (``validate_waveform`` rejects it).
    """
    hop = max(1, int(round(0.010 * sample_rate)))
    n = len(wav) // hop
    if n < 2:
        return wav
    rms = np.sqrt(np.mean(np.square(wav[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))
    peak = float(rms.max())
    if peak <= 0.0:
        return wav
    noise_db = 20.0 * np.log10(max(float(np.percentile(rms, 5)), 1e-12) / peak)
    threshold_db = min(max(floor_db, noise_db + _NOISE_HEADROOM_DB), _MAX_THRESHOLD_DB)
    loud = np.flatnonzero(rms > peak * 10.0 ** (threshold_db / 20.0))
    margin = int(round(margin_s * sample_rate))
    start = max(0, int(loud[0]) * hop - margin)
    end = min(len(wav), (int(loud[-1]) + 1) * hop + margin)
    return wav[start:end]


def decode_trimmed(path: str) -> tuple[np.ndarray, int]:
    """Read ``path`` as mono float32 and trim its silence; :class:`AudioError` naming the file on failure."""
    wav, sr = read_audio(path, channel="mixdown")
    wav = trim_silence(wav, sr)
    if len(wav) < 2:
        raise AudioError(path, "nothing left after trimming silence")
    return validate_waveform(wav, path), sr


# --- KDE education apps --------------------------------------------------------------------------

KDE_GROUP = "kde-voices/{language}"
"""Actor group of every KLettres and KTuberling file, by ISO language code: the same translators
recorded voices for several KDE apps and neither package says who did what."""

_LANGUAGE_FOLDERS = {"pt_BR": "pt", "en_GB": "en"}  # the rest are ISO 639-1 already (or nds)


def iso_language(folder: str) -> str:
    """ISO 639-1 code of a locale or KDE language folder (``pt_BR`` -> ``pt``, ``sr@latin`` -> ``sr``; ``nds`` stays)."""
    folder = _LANGUAGE_FOLDERS.get(folder, folder)
    return folder.split("@")[0].split("_")[0].lower()
