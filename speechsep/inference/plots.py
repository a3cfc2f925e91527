"""Spectrogram figure of a mixture and its separated sources (matplotlib, Agg backend, no display)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from speechsep.utils import atomic_path

__all__ = ["save_spectrograms"]


def _log_spectrogram(wav: np.ndarray, sample_rate: int, window_ms: float, max_frames: int) -> np.ndarray:
    """|STFT| in dB, (freq, frames), Hann window.

    Frames hop by a quarter window, or further apart on long inputs so that at most ``max_frames``
    are computed: a figure a few hundred pixels wide cannot show more, and an hour of audio must not
    cost gigabytes to draw.
    """
    n = max(16, int(round(window_ms * sample_rate / 1000)))
    wav = np.pad(wav, (0, max(0, n - wav.shape[0])))
    frames = min(max_frames, (wav.shape[0] - n) // max(1, n // 4) + 1)
    starts = np.linspace(0, wav.shape[0] - n, frames).round().astype(np.int64)
    windowed = wav[starts[:, None] + np.arange(n)] * np.hanning(n).astype(np.float32)  # (frames, n)
    return 20.0 * np.log10(np.abs(np.fft.rfft(windowed, axis=-1)).T + 1e-8)


def save_spectrograms(
    path: str | os.PathLike,
    mixture: np.ndarray,
    sources: np.ndarray,
    sample_rate: int,
    *,
    title: str = "",
    window_ms: float = 32.0,
    dynamic_range_db: float = 80.0,
    max_frames: int = 2000,
) -> Path:
    """Write a PNG with the spectrogram of ``mixture (T,)`` above one per source of ``sources (C, T)``.

    All panels share one colour scale (the loudest bin of any panel minus ``dynamic_range_db``), so
    how much of the mixture's energy went to each source reads directly off the figure. Written
    atomically.
    """
    mixture = np.asarray(mixture, dtype=np.float32)
    sources = np.asarray(sources, dtype=np.float32)
    if mixture.ndim != 1 or sources.ndim != 2 or sources.shape[1] != mixture.shape[0]:
        raise ValueError(
            f"save_spectrograms needs mixture (time,) and sources (sources, time); "
            f"got {mixture.shape} and {sources.shape}"
        )
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a Figure without pyplot keeps no global state

    panels = [("mixture", mixture)] + [(f"source {c + 1}", s) for c, s in enumerate(sources)]
    specs = [_log_spectrogram(wav, sample_rate, window_ms, max_frames) for _, wav in panels]
    top = max(float(s.max()) for s in specs)
    seconds = mixture.shape[0] / sample_rate
    fig = Figure(figsize=(10, 2.2 * len(panels)), constrained_layout=True)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, _), spec in zip(axes, panels, specs, strict=True):
        image = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            extent=(0.0, seconds, 0.0, sample_rate / 2000.0),
            vmin=top - dynamic_range_db,
            vmax=top,
            cmap="magma",
        )
        ax.set_ylabel(f"{label}\nkHz")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=list(axes), label="dB")
    if title:
        fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    return Path(path)
