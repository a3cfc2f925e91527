"""Audio I/O: read, validate, resample and write waveforms.

Everything that enters the toolkit from disk passes through :func:`read_audio`, so a bad file is
reported once, here, with its path and what is wrong with it. Shapes follow the project legend:
mono audio is ``(time,)``; multichannel audio read with ``channel=None`` is ``(channels, time)``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

__all__ = ["AudioError", "read_audio", "write_audio", "resample", "validate_waveform", "ChannelPolicy"]

log = logging.getLogger(__name__)

ChannelPolicy = int | Literal["mixdown"] | None
"""How multichannel input becomes mono: an int picks that channel, ``"mixdown"`` averages all
channels, ``None`` keeps every channel and returns ``(channels, time)``."""


class AudioError(ValueError):
    """Raised for audio that cannot be used. The message names the source and the problem."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def validate_waveform(
    wav: np.ndarray, source: str | os.PathLike = "<array>", *, allow_silence: bool = False
) -> np.ndarray:
    """Check that ``wav`` is a usable, finite, non-empty waveform and return it as float32.

    Accepts ``(time,)`` or ``(channels, time)``; anything else raises :class:`AudioError`.
    """
    wav = np.asarray(wav)
    if wav.ndim not in (1, 2):
        raise AudioError(source, f"expected a waveform shaped (time,) or (channels, time), got shape {wav.shape}")
    if wav.size == 0 or wav.shape[-1] == 0:
        raise AudioError(source, f"empty audio (shape {wav.shape})")
    if not np.issubdtype(wav.dtype, np.floating) and not np.issubdtype(wav.dtype, np.integer):
        raise AudioError(source, f"unsupported sample type {wav.dtype}")
    wav = wav.astype(np.float32, copy=False)
    bad = ~np.isfinite(wav)
    if bad.any():
        first = int(np.argmax(bad.reshape(-1)))
        raise AudioError(source, f"contains {int(bad.sum())} NaN/Inf samples (first at flat index {first})")
    if not allow_silence and not np.any(wav):
        raise AudioError(source, "all samples are zero (silent file)")
    return wav


def _apply_channel_policy(wav: np.ndarray, channel: ChannelPolicy, source: str) -> np.ndarray:
    """``wav`` is ``(channels, time)``; returns ``(time,)`` or ``(channels, time)`` per the policy."""
    if channel is None:
        return wav
    if channel == "mixdown":
        return wav.mean(axis=0)
    if isinstance(channel, (int, np.integer)) and not isinstance(channel, bool):
        if not -wav.shape[0] <= channel < wav.shape[0]:
            raise AudioError(source, f"channel {channel} requested but the file has {wav.shape[0]} channel(s)")
        return wav[channel]
    raise AudioError(source, f"unknown channel policy {channel!r}: use an integer, 'mixdown' or None")


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    channel: ChannelPolicy = 0,
    allow_silence: bool = False,
) -> tuple[np.ndarray, int]:
    """Read wav/flac/ogg/mp3 through libsndfile; optionally resample with soxr.

    Returns ``(waveform, sample_rate)`` where the waveform is float32 in [-1, 1],
    ``(time,)`` for an int or ``"mixdown"`` channel policy and ``(channels, time)`` for ``None``.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types; all mean "cannot decode"
        raise AudioError(path, f"cannot be decoded as audio ({type(err).__name__}: {err})") from err
    wav = validate_waveform(data.T, path, allow_silence=allow_silence)  # (channels, time)
    wav = _apply_channel_policy(wav, channel, str(path))
    if sample_rate is not None and sample_rate != sr:
        log.info("resampling %s from %d Hz to %d Hz", path, sr, sample_rate)
        wav = resample(wav, sr, sample_rate)
        sr = sample_rate
    return wav, int(sr)


def resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``(time,)`` or ``(channels, time)`` audio with soxr's high-quality filter."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    wav = np.asarray(wav, dtype=np.float32)
    if orig_sr == target_sr:
        return wav
    if wav.ndim == 1:
        return soxr.resample(wav, orig_sr, target_sr, quality="HQ").astype(np.float32)
    if wav.ndim == 2:
        # soxr wants (time, channels)
        return np.ascontiguousarray(soxr.resample(wav.T, orig_sr, target_sr, quality="HQ").T, dtype=np.float32)
    raise ValueError(f"resample expects (time,) or (channels, time), got shape {wav.shape}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_audio(path: str | os.PathLike, wav: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16") -> Path:
    """Write ``(time,)`` or ``(channels, time)`` audio atomically (temp file + rename).

    Samples beyond [-1, 1] are clipped for integer subtypes (logged), never wrapped around.
    """
    path = Path(path)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim not in (1, 2):
        raise ValueError(f"write_audio expects (time,) or (channels, time), got shape {wav.shape}")
    if not np.all(np.isfinite(wav)):
        raise AudioError(path, "refusing to write NaN/Inf samples")
    if subtype.startswith("PCM"):
        peak = float(np.abs(wav).max(initial=0.0))
        if peak > 1.0:
            log.warning("%s: peak %.3f exceeds full scale; clipping", path, peak)
            wav = np.clip(wav, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, wav.T if wav.ndim == 2 else wav, sample_rate, subtype=subtype, format="WAV")
        # mkstemp creates 0600; give the file the permissions a plain open() would (umask applied)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
