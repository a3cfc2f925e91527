"""Evaluation metrics: SI-SDR(i), SDR(i) (bss_eval via fast_bss_eval), PESQ and STOI, and summaries.

The papers report SI-SDR (iterative paper) and SI-SNRi plus SDRi (TFACM, Sec. IV; its authors
compute SDR with fast_bss_eval). Every metric here is taken after aligning the estimates to the
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

__all__ = ["si_sdr_improvement", "sdr", "evaluate_example", "summarize", "pesq_stoi_available"]


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


def sdr(est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """bss_eval SDR (512-tap distortion filter) with its own permutation solving.

    ``(B, C, T)`` each -> ``sdr (B, C)`` in reference order and ``perm (B, C)`` (estimate matched to
    each reference, the :mod:`speechsep.losses.pit` convention). Computed in float64.
    """
    import fast_bss_eval

    _check_batch(est, ref)
    # fast_bss_eval's numpy backend: its torch backend's batched solve fails under torch 2.13 + MKL
    # ("Pivots given to lu_solve must all be greater or equal to 1").
    values, _, _, perm = fast_bss_eval.bss_eval_sources(_np64(ref), _np64(est), compute_permutation=True)
    return torch.from_numpy(values).to(est.device), torch.from_numpy(perm).long().to(est.device)


def _np64(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


def _mixture_sdr(mix: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """SDR of the mixture taken as the estimate of every source: (B, T), (B, C, T) -> (B, C)."""
    import fast_bss_eval

    est = mix.unsqueeze(1).expand_as(ref)
    # Every estimate is the same signal, so the permutation bss_eval picks is irrelevant; asking for
    # one keeps us on its pairwise code path, the one that works with numpy 2's solve().
    values, _, _, _ = fast_bss_eval.bss_eval_sources(_np64(ref), _np64(est), compute_permutation=True)
    return torch.from_numpy(values).to(mix.device)


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
        sdr_est, _ = sdr(est_b, ref_b)
        sdr_mix = _mixture_sdr(mix_b, ref_b)
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
