"""One-call separation for Python users: ``speechsep.separate`` and ``speechsep.separate_file``.

They wrap :func:`speechsep.inference.separate.separate_waveform` (resampling, long-input
segmentation, the short-input warning) with model loading: a model named by string is loaded once
and kept, so calling these in a loop does not reload the checkpoint each time.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechsep.audio import read_audio, write_audio
from speechsep.inference.pretrained import resolve
from speechsep.inference.separate import limit_peak, output_paths, separate_waveform
from speechsep.models.base import SeparationModel

__all__ = ["separate", "separate_file"]


@functools.lru_cache(maxsize=4)
def _cached(name: str | None, device: str) -> SeparationModel:
    return resolve(name, device=device)


def _model(model: str | os.PathLike | SeparationModel | None, device: str) -> SeparationModel:
    if isinstance(model, SeparationModel):
        return model.eval()
    return _cached(None if model is None else str(model), device)


def separate(waveform: Any, sample_rate: int, *, model: str | os.PathLike | SeparationModel | None = None,
             device: str = "auto", **options: Any) -> Any:
    """``waveform (time,)`` (numpy or torch) at ``sample_rate`` -> ``(sources, time)`` of the same kind."""
    is_tensor = isinstance(waveform, torch.Tensor)
    wav = waveform.detach().cpu().numpy() if is_tensor else np.asarray(waveform)
    if wav.ndim != 1:
        raise ValueError(f"speechsep.separate takes mono audio shaped (time,); got shape {wav.shape} "
                         "(pick a channel, or average them, first)")
    est = separate_waveform(_model(model, device), wav, sample_rate, **options)
    return torch.from_numpy(est) if is_tensor else est


def separate_file(path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                  model: str | os.PathLike | SeparationModel | None = None, channel: int | str = 0,
                  device: str = "auto", **options: Any) -> tuple[np.ndarray, int]:
    """Read ``path``, separate it, return ``(sources (C, time), sample_rate)`` at the file's rate; with
    ``out_dir`` also write ``OUTDIR/NAME_s1.wav ...`` (peaks limited together, as ``speechsep separate``)."""
    wav, sr = read_audio(path, channel=channel)
    est = separate_waveform(_model(model, device), wav, sr, **options)
    if out_dir is not None:
        paths, _ = output_paths(out_dir, Path(path).stem, est.shape[0])
        for target, source in zip(paths, limit_peak(est, str(path)), strict=True):
            write_audio(target, source, sr)
    return est, sr
