"""Evaluation metrics: SI-SDR(i), SDR(i) (bss_eval, as fast_bss_eval defines it), PESQ and STOI, summaries.

The papers report SI-SDR (iterative paper) and SI-SNRi plus SDRi (TFACM, Sec. IV; its authors
compute SDR with fast_bss_eval, whose values :func:`bss_sdr` reproduces to 1e-8 dB, faster). Every metric here is taken after aligning the estimates to the
references by PIT, and improvements are relative to the unprocessed mixture used as every estimate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from speechsep.losses.pit import apply_permutation, pit_from_pairwise
from speechsep.losses.snr import pairwise_neg_si_sdr, si_sdr

__all__ = ["si_sdr_improvement", "sdr", "bss_sdr", "SDR_FILTER_LENGTH", "evaluate_example", "summarize", "pesq_stoi_available"]


def _check_batch(est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor | None = None) -> None:
    if est.dim() != 3 or est.shape != ref.shape:
        raise ValueError(
            f"est and ref must both be (batch, sources, time); got {tuple(est.shape)} and {tuple(ref.shape)}"
        )
    if mix is not None and (mix.dim() != 2 or mix.shape[0] != est.shape[0] or mix.shape[1] != est.shape[2]):
        raise ValueError(
            f"mix must be (batch, time) matching est {tuple(est.shape)}; got {tuple(mix.shape)}"
        )


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))


def si_sdr_improvement(est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """SI-SDRi per source, ``(B, C)`` in reference order, estimates aligned by SI-SDR PIT."""
    _check_batch(est, ref, mix)
    _, perm = pit_from_pairwise(pairwise_neg_si_sdr(est, ref))
    aligned = apply_permutation(est, perm)
    baseline = si_sdr(mix.unsqueeze(1).expand_as(ref), ref)
    return si_sdr(aligned, ref) - baseline


#: bss_eval's distortion filter: 512 taps (its default since BSS Eval v3, and fast_bss_eval's).
SDR_FILTER_LENGTH = 512


def _toeplitz_indices(length: int, device: torch.device) -> torch.Tensor:
    """(L, L) lag ``k - l`` of entry (k, l)."""
    taps = torch.arange(length, device=device)
    return taps[:, None] - taps[None, :]


def _projection_coherences(
    ref: torch.Tensor, est: torch.Tensor, filter_length: int, with_joint: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Squared cosines between each estimate and the spans of the references' delayed copies.

    ``ref (C, T)``, ``est (E, T)`` float64. Returns ``coh (C, E)``: the share of estimate j's energy
    in the span of ``{ref_c delayed by 0..L-1}``, and with ``with_joint`` also ``joint (E,)``: the
    share in the span of all references' delays together. These are bss_eval's quantities:
    SDR = coh / (1 - coh); SIR = coh / (joint - coh).

    A projection onto the delays of a signal is a least-squares problem whose Gram matrix is the
    Toeplitz matrix of that signal's autocorrelation (one ``L x L`` system per reference, solved
    once for all estimates), and for all references together the block-Toeplitz matrix of their
    cross-correlations (one ``C L x C L`` system). Both are symmetric positive definite, so a
    Cholesky factorisation solves them; the mixture can ride along as one more estimate column.
    """
    num_ref, length = ref.shape
    # Unit norms, as fast_bss_eval does: the coherences are scale-free, this only helps the numerics.
    ref = ref / ref.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    est = est / est.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    n_fft = 1 << math.ceil(math.log2(2 * length - 1))
    spec_ref = torch.fft.rfft(ref, n=n_fft)  # (C, F)
    spec_est = torch.fft.rfft(est, n=n_fft)  # (E, F)
    # xcorr[c, j, k] = sum_t ref_c[t] est_j[t + k]: the projection's right-hand sides, k = 0..L-1
    xcorr = torch.fft.irfft(spec_ref.conj()[:, None] * spec_est[None], n=n_fft)[..., :filter_length]  # (C, E, L)
    lags = _toeplitz_indices(filter_length, ref.device)
    if with_joint:
        # cross[c, d, m] = sum_t ref_c[t] ref_d[t + m] for m in (-L, L), negative lags wrapped around
        cross = torch.fft.irfft(spec_ref.conj()[:, None] * spec_ref[None], n=n_fft)  # (C, C, n_fft)
        acf = cross[torch.arange(num_ref), torch.arange(num_ref)]  # (C, n_fft)
    else:
        cross = None
        acf = torch.fft.irfft(spec_ref.abs().square(), n=n_fft)  # (C, n_fft)
    # <ref_c delayed by k, ref_c delayed by l> = acf_c[|k - l|]
    gram = acf[:, lags.abs()]  # (C, L, L)
    coh = (xcorr * _spd_solve(gram, xcorr.transpose(1, 2)).transpose(1, 2)).sum(-1)  # (C, E)
    if not with_joint:
        return coh.clamp(0.0, 1.0), None
    assert cross is not None
    # <ref_c delayed by k, ref_d delayed by l> = cross[c, d, k - l]; rows (c, k), columns (d, l)
    block = cross[:, :, lags % n_fft]  # (C, C, L, L)
    block = block.permute(0, 2, 1, 3).reshape(num_ref * filter_length, num_ref * filter_length)
    rhs = xcorr.permute(0, 2, 1).reshape(num_ref * filter_length, -1)  # (C L, E)
    joint = (rhs * _spd_solve(block, rhs)).sum(0)  # (E,)
    return coh.clamp(0.0, 1.0), joint.clamp(0.0, 1.0)


def _spd_solve(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve symmetric positive-definite systems by Cholesky; singular ones (a silent reference) by
    least squares, where bss_eval's own solver would return NaN or infinity."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    if not bool((info != 0).any()):
        return torch.cholesky_solve(rhs, factor)
    return torch.linalg.lstsq(matrix, rhs).solution


def _ratio_db(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(numerator / denominator)


def bss_sdr(
    est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor | None = None, filter_length: int = SDR_FILTER_LENGTH
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """bss_eval SDR of one example, the definition and permutation of ``fast_bss_eval.bss_eval_sources``.

    ``est``, ``ref`` ``(C, T)``; optional ``mix (T,)``. Returns ``sdr (C,)`` in reference order,
    ``perm (C,)`` (estimate matched to each reference, chosen, as bss_eval does, to maximise the
    SIR), and the SDR of the mixture taken as every source's estimate ``(C,)`` (or None).

    Computed here rather than by calling fast_bss_eval, which gives the same values (tests compare
    them) but in its numpy path factorises every system by LU once per call: twice the work of
    Cholesky, the per-reference systems solved again for the mixture, and OpenBLAS threads that
    stall on a shared machine (measured: 1.4-2 s an utterance on 2 busy cores, see
    bench/fragments/training.md). Its torch path fails under torch 2.13 with MKL.
    """
    if est.dim() != 2 or est.shape != ref.shape:
        raise ValueError(f"bss_sdr needs est and ref of shape (sources, time); got {tuple(est.shape)} and {tuple(ref.shape)}")
    if mix is not None and (mix.dim() != 1 or mix.shape[0] != est.shape[1]):
        raise ValueError(f"bss_sdr needs mix (time,) matching est {tuple(est.shape)}; got {tuple(mix.shape)}")
    num = est.shape[0]
    columns = est if mix is None else torch.cat([est, mix[None]])
    coh, joint = _projection_coherences(ref.double(), columns.double(), filter_length, with_joint=num > 1)
    coh_est = coh[:, :num]  # (C_ref, C_est)
    if num > 1:
        assert joint is not None
        neg_sir = -_ratio_db(coh_est, joint[None, :num] - coh_est)  # (C_ref, C_est)
        # pit_from_pairwise wants (B, C_est, C_ref)
        _, perm = pit_from_pairwise(neg_sir.T[None])
        perm = perm[0]
    else:
        perm = torch.zeros(1, dtype=torch.long, device=est.device)
    matched = coh_est[torch.arange(num, device=coh_est.device), perm]
    values = _ratio_db(matched, 1.0 - matched)
    mix_values = None if mix is None else _ratio_db(coh[:, num], 1.0 - coh[:, num])
    return values, perm, mix_values


def sdr(est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bss_eval SDR (512-tap distortion filter) with its own permutation solving.

    ``(B, C, T)`` each -> ``sdr (B, C)`` in reference order and ``perm (B, C)`` (estimate matched to
    each reference, the :mod:`speechsep.losses.pit` convention). Computed in float64 by
    :func:`bss_sdr`.
    """
    _check_batch(est, ref)
    results = [bss_sdr(e, r)[:2] for e, r in zip(est, ref, strict=True)]
    values = torch.stack([v for v, _ in results]).to(est.device)
    return values, torch.stack([p for _, p in results]).to(est.device)


def pesq_stoi_available() -> bool:
    try:
        import pesq  # noqa: F401
        import pystoi  # noqa: F401
    except ImportError:
        return False
    return True


def _pesq_one(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """PESQ P.862: narrow-band at 8 kHz, wide-band at 16 kHz; other rates are resampled to 16 kHz."""
    from pesq import pesq

    if sample_rate not in (8000, 16000):
        from speechsep.audio import resample

        ref, est = resample(ref, sample_rate, 16000), resample(est, sample_rate, 16000)
        sample_rate = 16000
    mode = "nb" if sample_rate == 8000 else "wb"
    try:
        return float(pesq(sample_rate, ref.astype(np.float64), est.astype(np.float64), mode))
    except Exception as err:  # pesq raises its own errors for silence or too-short input
        warnings.warn(f"PESQ failed ({type(err).__name__}: {err}); reporting NaN", stacklevel=3)
        return math.nan


def _stoi_one(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    from pystoi import stoi

    return float(stoi(ref.astype(np.float64), est.astype(np.float64), sample_rate, extended=False))


def evaluate_example(
    est: Any, ref: Any, mix: Any, sample_rate: int, pesq_stoi: bool = True
) -> dict[str, float]:
    """All metrics of one example, averaged over sources.

    ``est`` and ``ref`` are ``(C, T)``, ``mix`` is ``(T,)`` (tensors or arrays). Keys: ``si_sdr``,
    ``si_sdri``, ``sdr``, ``sdri``, and ``pesq``, ``stoi`` when requested and the packages import.
    SI-SDR and PESQ/STOI use the SI-SDR-optimal permutation; SDR uses bss_eval's own.
    """
    est, ref, mix = _as_tensor(est), _as_tensor(ref), _as_tensor(mix)
    if est.dim() != 2 or est.shape != ref.shape or mix.dim() != 1 or mix.shape[0] != est.shape[1]:
        raise ValueError(
            f"evaluate_example needs est (sources, time), ref (sources, time), mix (time,); "
            f"got {tuple(est.shape)}, {tuple(ref.shape)}, {tuple(mix.shape)}"
        )
    est_b, ref_b, mix_b = est[None].float(), ref[None].float(), mix[None].float()
    with torch.no_grad():
        _, perm = pit_from_pairwise(pairwise_neg_si_sdr(est_b, ref_b))
        aligned = apply_permutation(est_b, perm)
        si = si_sdr(aligned, ref_b)
        si_mix = si_sdr(mix_b.unsqueeze(1).expand_as(ref_b), ref_b)
        sdr_est, _, sdr_mix = bss_sdr(est_b[0], ref_b[0], mix_b[0])
    out = {
        "si_sdr": float(si.mean()),
        "si_sdri": float((si - si_mix).mean()),
        "sdr": float(sdr_est.mean()),
        "sdri": float((sdr_est - sdr_mix).mean()),
    }
    if pesq_stoi and pesq_stoi_available():
        ref_np, est_np = ref_b[0].cpu().numpy(), aligned[0].cpu().numpy()
        out["pesq"] = float(np.mean([_pesq_one(r, e, sample_rate) for r, e in zip(ref_np, est_np, strict=True)]))
        out["stoi"] = float(np.mean([_stoi_one(r, e, sample_rate) for r, e in zip(ref_np, est_np, strict=True)]))
    return out


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, median and the 95 % Student-t confidence interval of the mean.

    Non-finite values (a failed PESQ, say) are left out and ``n`` counts what was kept. With fewer
    than two values the interval is undefined (NaN).
    """
    from scipy import stats

    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return {"mean": math.nan, "median": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "n": 0}
    mean = float(arr.mean())
    if n < 2:
        half = math.nan
    else:
        half = float(stats.t.ppf(0.975, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "median": float(np.median(arr)), "ci95_low": mean - half, "ci95_high": mean + half, "n": n}
