"""Background noise: reading a folder of clips and looping short clips without seams.

LinCity-NG's city sounds (Debian ``lincity-ng-data``) are a few seconds each, shorter than a
mixture. Butt-joining copies leaves a click at every seam that a model can learn to detect, so
clips are looped with an equal-power crossfade: each repeat fades in over ``fade`` samples while
the previous one fades out (sin/cos ramps keep the power of uncorrelated material constant).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechsep.audio import AudioError, read_audio, resample

__all__ = ["NOISE_SUBDIR", "NoiseClip", "LoadReport", "loop_crossfade", "load_noise_folder", "noise_stage"]

log = logging.getLogger(__name__)

NOISE_SUBDIR = "usr/share/games/lincity-ng/sounds"
"""Where ``dpkg -x lincity-ng-data`` puts the clips, relative to the unpack folder."""

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class NoiseClip:
    name: str
    wav: np.ndarray  # (time,) float32


@dataclass
class LoadReport:
    """What a loader could not use, and what it converted: every skipped file is listed."""

    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    resampled: Counter = field(default_factory=Counter)  # (from_sr, to_sr) -> files

    def log_resampling(self, what: str) -> None:
        for (src, dst), n in sorted(self.resampled.items()):
            log.info("resampled %d %s from %d Hz to %d Hz", n, what, src, dst)


def loop_crossfade(clip: np.ndarray, length: int, *, fade: int, offset: int = 0) -> np.ndarray:
    """Return ``length`` samples of ``clip`` repeated with crossfades, starting ``offset`` samples in.

    The fade is shortened to a quarter of the clip for very short clips, so every repeat keeps a
    stretch at full level.
    """
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim != 1 or clip.size == 0:
        raise ValueError(f"loop_crossfade expects a non-empty (time,) clip, got shape {clip.shape}")
    if length < 0 or offset < 0:
        raise ValueError(f"length and offset must be >= 0, got {length}, {offset}")
    n = clip.size
    fade = int(min(fade, n // 4))
    if offset + length <= n:
        return clip[offset : offset + length].copy()
    period = n - fade  # distance between the starts of consecutive repeats
    repeats = int(np.ceil((offset + length - fade) / period)) + 1
    out = np.zeros(period * repeats + fade, dtype=np.float32)
    if fade > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(fade, dtype=np.float32) + 0.5) / fade)
        fade_in, fade_out = ramp, ramp[::-1]
    for k in range(repeats):
        piece = clip.copy()
        if fade > 0:
            if k > 0:
                piece[:fade] *= fade_in
            piece[-fade:] *= fade_out
        out[k * period : k * period + n] += piece
    return out[offset : offset + length]


def load_noise_folder(
    folder: str | os.PathLike, sample_rate: int, *, min_seconds: float = 1.0
) -> tuple[list[NoiseClip], LoadReport]:
    """Every audio clip in ``folder`` (sorted by name), mono at ``sample_rate``.

    Undecodable, silent and too-short clips are skipped and listed in the report, never silently.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"noise folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"noise folder {folder} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    report = LoadReport()
    clips = []
    for p in paths:
        try:
            wav, sr = read_audio(p, channel="mixdown")
        except AudioError as err:
            report.skipped.append((str(p), err.problem))
            continue
        if sr != sample_rate:
            report.resampled[(sr, sample_rate)] += 1
            wav = resample(wav, sr, sample_rate)
        if wav.size < min_seconds * sample_rate:
            report.skipped.append((str(p), f"shorter than {min_seconds} s"))
            continue
        clips.append(NoiseClip(str(p.relative_to(folder)), wav.astype(np.float32)))
    report.log_resampling("noise clips")
    if not clips:
        raise ValueError(f"noise folder {folder}: no usable clip ({len(report.skipped)} skipped)")
    return clips, report


def noise_stage(folder: str | os.PathLike, sample_rate: int, log=print) -> tuple[list[NoiseClip], dict]:
    """The corpus builder's noise stage: the clips, each skip printed, and the report as JSON."""
    clips, rep = load_noise_folder(folder, sample_rate)
    for path, why in rep.skipped:
        log(f"[noise] skipped {path}: {why}")
    return clips, {
        "clips": len(clips),
        "skipped": [{"file": p, "reason": r} for p, r in rep.skipped],
        "resampled": {f"{a}->{b}": n for (a, b), n in rep.resampled.items()},
    }
