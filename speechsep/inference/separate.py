"""File-level separation: read -> resample to the model's rate -> separate -> resample back -> write.

Every input (and reference) is read and checked before anything is written, so one bad file on a
command line leaves the output folder exactly as it was; each output is then written atomically.
Inputs of any sample rate, channel count and length are accepted: the channel policy picks one
channel or averages them, soxr resamples to the model's rate and back, and
:func:`speechsep.inference.segmenting.separate_long` bounds the memory a long file needs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechsep.audio import AudioError, ChannelPolicy, read_audio, resample, write_audio
from speechsep.inference.segmenting import (
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_SEGMENT_SECONDS,
    separate_long,
)
from speechsep.models.base import SeparationModel

__all__ = [
    "SeparatedFile",
    "separate_waveform",
    "separate_files",
    "SkippedFile",
    "output_paths",
    "limit_peak",
    "check_out_dir",
    "band_limit_note",
    "PEAK_LIMIT",
    "SHORT_INPUT_SECONDS",
]

log = logging.getLogger(__name__)

#: Separated sources are scaled down together, never clipped, when their peak would exceed this.
PEAK_LIMIT = 0.99
#: Inputs shorter than this are separated with a warning: the models were trained on 3-4 s
#: excerpts, and a fraction of a second gives them almost no context to tell voices apart.
SHORT_INPUT_SECONDS = 0.5


def limit_peak(sources: np.ndarray, what: str = "output") -> np.ndarray:
    """Scale all ``sources`` together so none peaks above :data:`PEAK_LIMIT` (never clip one of them:
    clipping distorts, and scaling one source alone would change the sources' level ratio)."""
    peak = float(np.abs(sources).max(initial=0.0))
    if peak <= PEAK_LIMIT:
        return sources
    log.info("%s: separated peak %.3f; scaling the sources by %.3f", what, peak, PEAK_LIMIT / peak)
    return sources * (PEAK_LIMIT / peak)


@dataclasses.dataclass(frozen=True)
class SeparatedFile:
    input: Path
    sources: list[Path]
    spectrogram: Path | None
    sample_rate: int
    seconds: float
    #: SI-SNRi (dB) per reference, estimates matched by PIT; None without references
    si_snri: list[float] | None = None
    #: what the user should know about this result (band-limited output, very short input), one line each
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SkippedFile:
    """An input left out by ``skip_bad``: the file and what is wrong with it."""

    input: Path
    problem: str


@dataclasses.dataclass(frozen=True)
class _Job:
    """One input that passed validation: where it is, what it becomes, and its references."""

    input: Path
    stem: str
    refs: tuple[Path, ...]


def output_paths(out_dir: str | os.PathLike, stem: str, num_sources: int) -> tuple[list[Path], Path]:
    """``OUTDIR/STEM_s1.wav ... STEM_sC.wav`` and ``OUTDIR/STEM_spectrogram.png``."""
    out_dir = Path(out_dir)
    return [out_dir / f"{stem}_s{c + 1}.wav" for c in range(num_sources)], out_dir / f"{stem}_spectrogram.png"


def separate_waveform(
    model: SeparationModel,
    wav: np.ndarray,
    sample_rate: int,
    *,
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    batch_segments: int = 1,
    precision: str = "fp32",
    progress: Callable[[int, int], None] | None = None,
    source: str = "input",
    warn_short: bool = True,
) -> np.ndarray:
    """Separate mono ``wav (T,)`` at ``sample_rate`` into ``(C, T)`` at the same rate and length.

    ``progress(done, total)`` follows the segments (:func:`separate_long`); an input shorter than
    :data:`SHORT_INPUT_SECONDS` is separated with a warning naming ``source``.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"separate_waveform needs mono audio shaped (time,); got {wav.shape}")
    note = short_input_note(wav.shape[0], sample_rate) if warn_short else None
    if note:
        log.warning("%s: %s", source, note)
    at_model_rate = resample(wav, sample_rate, model.sample_rate)
    est = separate_long(
        model,
        torch.from_numpy(at_model_rate)[None],
        segment_seconds=segment_seconds,
        overlap_seconds=overlap_seconds,
        batch_segments=batch_segments,
        precision=precision,
        progress=progress,
    )[0].numpy()  # (C, T_model)
    est = resample(est, model.sample_rate, sample_rate)
    # Resampling there and back can land a sample or two off the input's length.
    return fit_length(est, wav.shape[0])


def short_input_note(samples: int, sample_rate: int) -> str | None:
    """A warning for inputs under :data:`SHORT_INPUT_SECONDS`, else None."""
    seconds = samples / sample_rate
    if seconds >= SHORT_INPUT_SECONDS:
        return None
    return (f"only {1000 * seconds:.0f} ms long; separated anyway, but the models were trained on 3-4 s "
            f"excerpts and need at least {SHORT_INPUT_SECONDS:g} s to tell voices apart")


def band_limit_note(input_rate: int, model_rate: int) -> str | None:
    """Said when the input's rate is above the model's: the output keeps the input's rate but has
    nothing above the model's Nyquist frequency (the model never sees that band)."""
    if input_rate <= model_rate:
        return None
    return (f"the model works at {model_rate} Hz: the outputs are written at the input's {input_rate} Hz but "
            f"hold nothing above {model_rate // 2} Hz")


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` must be a folder or not exist yet; checked before any separating."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"-o {out_dir}: a file of that name exists; -o names the output folder "
                              "(give a new or existing folder)")
    return out_dir


def fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the last axis to ``length``."""
    if wav.shape[-1] >= length:
        return wav[..., :length]
    return np.pad(wav, [(0, 0)] * (wav.ndim - 1) + [(0, length - wav.shape[-1])])


def _read_mono(path: Path, channel: ChannelPolicy, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    if channel is None:
        raise ValueError("separation needs one channel: pick one with an integer or use 'mixdown'")
    return read_audio(path, sample_rate, channel=channel)


def _validate(
    inputs: Sequence[Path], refs: Sequence[Path], channel: ChannelPolicy, num_sources: int,
    skipped: list[SkippedFile] | None = None,
) -> list[_Job]:
    """Decode every input and reference once, and check names and lengths, before any write.

    With ``skipped`` (a list), an input whose file or references cannot be used is recorded there
    and left out instead of stopping the run. Audio is not kept: a long list of long files would
    otherwise all sit in memory at once.
    """
    if not inputs:
        raise ValueError("no input files given")
    if refs and len(refs) != num_sources * len(inputs):
        raise ValueError(
            f"--ref needs {num_sources} reference file(s) per input (the model separates {num_sources} "
            f"sources), in input order: got {len(refs)} for {len(inputs)} input(s)"
        )
    jobs: list[_Job] = []
    seen: dict[str, Path] = {}
    for i, path in enumerate(inputs):
        try:
            wav, sr = _read_mono(path, channel)
            channels = sf.info(str(path)).channels
            stem = path.stem
            if stem in seen:
                raise AudioError(path, f"its outputs would overwrite those of {seen[stem]} (same file name)")
            mine = tuple(refs[i * num_sources : (i + 1) * num_sources])
            for ref in mine:
                ref_wav, _ = _read_mono(ref, channel, sr)
                # soxr may round the resampled length by a sample or two
                if abs(ref_wav.shape[0] - wav.shape[0]) > 2:
                    raise AudioError(
                        ref, f"reference has {ref_wav.shape[0]} samples at {sr} Hz but {path} has {wav.shape[0]}"
                    )
        except AudioError as err:
            if skipped is None:
                raise
            skipped.append(SkippedFile(path, str(err)))
            continue
        if channels > 1:
            log.info("%s: %d channels; using %s", path, channels,
                     "their average" if channel == "mixdown" else f"channel {channel}")
        seen[stem] = path
        jobs.append(_Job(path, stem, mine))
    return jobs


def _si_snri(est: np.ndarray, refs: Sequence[Path], mixture: np.ndarray, sample_rate: int,
             channel: ChannelPolicy) -> list[float]:
    from speechsep.metrics import si_sdr_improvement

    ref = np.stack([fit_length(_read_mono(r, channel, sample_rate)[0], mixture.shape[0]) for r in refs])
    improvement = si_sdr_improvement(
        torch.from_numpy(est)[None], torch.from_numpy(ref)[None], torch.from_numpy(mixture)[None]
    )
    return [float(v) for v in improvement[0]]


def separate_files(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: SeparationModel,
    *,
    channel: ChannelPolicy = 0,
    refs: Sequence[str | os.PathLike] = (),
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    batch_segments: int = 1,
    plot: bool = True,
    precision: str = "fp32",
    skipped: list[SkippedFile] | None = None,
    progress: Callable[[Path], Callable[[int, int], None] | None] | None = None,
) -> list[SeparatedFile]:
    """Separate each input into ``OUTDIR/NAME_s1.wav ... NAME_sC.wav`` (+ ``NAME_spectrogram.png``).

    Outputs have the input's sample rate and length. ``refs`` are C clean sources per input, in
    input order; with them each result carries SI-SNRi after PIT. Raises :class:`AudioError` naming
    the file, before writing anything, when any input or reference cannot be used; with ``skipped``
    (a list) such inputs are appended to it instead and the others separated. ``out_dir`` naming an
    existing file raises ``FileExistsError`` before anything is separated. ``progress(input)``
    may return a ``(done, total)`` callback for that input's segments.
    """
    from speechsep.inference.plots import save_spectrograms

    check_out_dir(out_dir)
    jobs = _validate([Path(p) for p in inputs], [Path(r) for r in refs], channel, model.num_sources, skipped)
    results = []
    for job in jobs:
        wav, sr = _read_mono(job.input, channel)
        notes = tuple(n for n in (band_limit_note(sr, model.sample_rate), short_input_note(wav.shape[0], sr)) if n)
        est = separate_waveform(
            model, wav, sr, segment_seconds=segment_seconds, overlap_seconds=overlap_seconds,
            batch_segments=batch_segments, precision=precision,
            progress=progress(job.input) if progress else None, warn_short=False,  # said in ``notes``
        )
        si_snri = _si_snri(est, job.refs, wav, sr, channel) if job.refs else None
        est = limit_peak(est, str(job.input))
        source_paths, png = output_paths(out_dir, job.stem, est.shape[0])
        for path, source in zip(source_paths, est, strict=True):
            write_audio(path, source, sr)
        if plot:
            save_spectrograms(png, wav, est, sr, title=job.input.name)
        results.append(SeparatedFile(job.input, source_paths, png if plot else None, sr, wav.shape[0] / sr,
                                     si_snri, notes))
    return results
