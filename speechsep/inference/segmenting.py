"""Offline separation of inputs of any length: overlapping segments, speaker order aligned across them.

Axis legend: B batch, C sources, T samples of the whole input, S samples of one segment.

A model trained on 3-4 s excerpts is run on a long input one segment at a time (TFACM paper,
Sec. IV-B: "longer inputs segmented into overlapping shorter segments"). Separation is defined only
up to a permutation of the sources, and a model may order the same two speakers differently in two
segments, so each segment's outputs are reordered before they are joined:

1. segment k covers ``[s_k, s_k + S)``; it overlaps the part already written, ``[s_k, e_{k-1})``;
2. the permutation of its C outputs that best agrees with the stitched output on that overlap is
   chosen by PIT (:func:`speechsep.losses.pit.pit_from_pairwise`) over the pairwise cost
   ``-<new_i, old_j>``. Minimising it is minimising the total squared distance
   ``sum_j |new_pi(j) - old_j|^2`` (the norms do not depend on the permutation), so loud speech
   decides the order and silence, which carries no information about identity, counts for nothing;
3. the reordered segment is cross-faded into the output over the overlap with complementary
   raised-cosine weights (they sum to one, so a perfect separator is reproduced exactly) and
   copied beyond it.

Memory: besides the ``(B, C, T)`` output buffer only ``batch_segments`` segments and their outputs
exist at once, so the model never sees more than ``S`` samples per call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from speechsep.losses.pit import apply_permutation, pit_from_pairwise
from speechsep.models.base import SeparationModel
from speechsep.precision import autocast
from speechsep.utils import check_waveform_batch

__all__ = ["separate_long", "segment_starts", "model_device", "DEFAULT_SEGMENT_SECONDS", "DEFAULT_OVERLAP_SECONDS"]

#: Long enough to give a model trained on 4 s excerpts several times its context, short enough that
#: a TFACM forward (1,000 frames x 33 bins x N channels per second) stays within a few GB.
DEFAULT_SEGMENT_SECONDS = 8.0
#: One second of overlap gives the alignment about a second of speech to compare.
DEFAULT_OVERLAP_SECONDS = 1.0


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights live (CPU for a model without any)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _model_dtype(model: torch.nn.Module, fallback: torch.dtype) -> torch.dtype:
    for tensor in model.parameters():
        if torch.is_floating_point(tensor):
            return tensor.dtype
    return fallback


def segment_starts(length: int, segment: int, overlap: int) -> list[int]:
    """Start samples of the segments covering ``[0, length)``.

    Segments advance by ``segment - overlap``; the last one is pulled back to end exactly at
    ``length`` so every segment has the full length the model expects (its overlap with the one
    before is then longer than ``overlap``, which only lengthens the cross-fade).
    """
    if segment <= 0 or not 0 <= overlap < segment:
        raise ValueError(f"need segment > 0 and 0 <= overlap < segment samples; got {segment} and {overlap}")
    if length <= segment:
        return [0]
    hop = segment - overlap
    starts = list(range(0, length - segment, hop))
    starts.append(length - segment)
    return starts


def _crossfade_weights(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Raised-cosine ramp (n,) rising from ~0 to ~1; the old output gets ``1 - w``."""
    pos = (torch.arange(n, device=device, dtype=torch.float64) + 0.5) / n
    return (0.5 - 0.5 * torch.cos(math.pi * pos)).to(dtype)


def _run_model(model: SeparationModel, chunks: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``chunks (N, S)`` on the model's device -> ``(N, C, S)`` float32; the output shape is checked."""
    with autocast(chunks.device, precision):
        out = model(chunks).float()
    if out.dim() != 3 or out.shape[0] != chunks.shape[0] or out.shape[-1] != chunks.shape[-1]:
        raise ValueError(
            f"{type(model).__name__} returned shape {tuple(out.shape)} for input {tuple(chunks.shape)}; "
            "separate_long needs (batch, sources, time) of the input's length"
        )
    return out


def _segment_batches(
    mixture: torch.Tensor, starts: list[int], segment: int, batch_segments: int
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Yield ``(starts, chunks)`` with ``chunks (len(starts) * B, S)``, segment-major."""
    for i in range(0, len(starts), batch_segments):
        group = starts[i : i + batch_segments]
        # (k, B, S) -> (k * B, S): segment-major, so rows [j * B, (j + 1) * B) are segment j.
        chunks = torch.stack([mixture[:, s : s + segment] for s in group]).flatten(0, 1)
        yield group, chunks


def separate_long(
    model: SeparationModel,
    mixture: torch.Tensor,
    *,
    segment_seconds: float | None = DEFAULT_SEGMENT_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    batch_segments: int = 1,
    sample_rate: int | None = None,
    precision: str = "fp32",
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Separate ``mixture (B, T)`` or ``(B, 1, T)`` of any length into ``(B, C, T)``.

    Inputs no longer than ``segment_seconds`` (or any input when it is ``None``) go through the
    model in one call. Longer ones are cut into segments of ``segment_seconds`` overlapping by
    ``overlap_seconds``, separated ``batch_segments`` at a time, aligned and cross-faded (see the
    module docstring). ``sample_rate`` defaults to the model's. Runs without gradients on the model's
    device, in ``precision`` (:mod:`speechsep.precision`); the result is float32 on the mixture's device.
    ``progress(done, total)`` is called after each model call with the segments done so far.
    """
    mixture = check_waveform_batch(mixture)
    if batch_segments < 1:
        raise ValueError(f"batch_segments must be >= 1, got {batch_segments}")
    sample_rate = sample_rate or model.sample_rate
    device = model_device(model)
    dtype = _model_dtype(model, mixture.dtype)
    batch, length = mixture.shape

    if segment_seconds is None or length <= round(segment_seconds * sample_rate):
        with torch.no_grad():
            out = _run_model(model, mixture.to(device, dtype), precision).to(mixture.device)
        if progress is not None:
            progress(1, 1)
        return out

    segment = round(segment_seconds * sample_rate)
    overlap = round(overlap_seconds * sample_rate)
    if overlap <= 0:
        # Without an overlap there is nothing to align the next segment's speakers with.
        raise ValueError(f"overlap_seconds must give at least one sample of overlap; got {overlap_seconds}")
    starts = segment_starts(length, segment, overlap)

    out: torch.Tensor | None = None  # (B, C, T), allocated once the model has told us C
    written = 0  # out[..., :written] holds the stitched result so far
    done = 0  # segments separated
    with torch.no_grad():
        for group, chunks in _segment_batches(mixture, starts, segment, batch_segments):
            est_all = _run_model(model, chunks.to(device, dtype), precision)  # (k * B, C, S)
            if out is None:
                out = torch.zeros(batch, est_all.shape[1], length, device=mixture.device)
            for j, start in enumerate(group):
                est = est_all[j * batch : (j + 1) * batch]  # (B, C, S)
                if written > start:
                    old = out[..., start:written].to(device)  # (B, C, n): the overlap already written
                    head = est[..., : written - start]
                    cost = -torch.bmm(head.double(), old.double().transpose(1, 2))  # (B, C_new, C_old)
                    _, perm = pit_from_pairwise(cost)
                    est = apply_permutation(est, perm)
                    w = _crossfade_weights(written - start, device, est.dtype)
                    faded = old * (1.0 - w) + est[..., : written - start] * w
                    out[..., start:written] = faded.to(out.device)
                end = start + segment
                out[..., written:end] = est[..., written - start :].to(out.device)
                written = end
            if progress is not None:
                done += len(group)
                progress(done, len(starts))
    assert out is not None and written == length
    return out
