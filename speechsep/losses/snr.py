"""Signal-to-noise ratios used as training objectives and metrics.

Every function reduces only the last (time) axis: ``(..., T) -> (...)``. The pairwise forms take
``(B, C, T)`` estimates and references and return ``(B, C_est, C_ref)``, the input of
:func:`speechsep.losses.pit.pit_from_pairwise`.

Both ratios are computed from three inner products per pair, ``<e, e>``, ``<r, r>`` and ``<e, r>``:

* SNR    = 10 log10(|r|^2 / |r - e|^2),          |r - e|^2 = <r, r> + <e, e> - 2 <e, r>
* SI-SDR = 10 log10(|a r|^2 / |e - a r|^2),      a = <e, r> / <r, r>   (Le Roux et al. 2019)

so the element-wise and the pairwise forms share the same arithmetic; the pairwise form gets all
C x C inner products from one batched matrix product instead of a (B, C, C, T) broadcast. The inner
products are taken in float64: expanding |r - e|^2 cancels catastrophically in float32 once the
estimate is within ~30 dB of the reference, while float64 keeps it exact far past 100 dB. The
result is cast back to the input's precision (at least float32, so bf16 autocast still gets a
float32 loss).
"""

from __future__ import annotations

import torch

__all__ = [
    "snr",
    "si_sdr",
    "neg_snr",
    "neg_si_sdr",
    "pairwise_snr",
    "pairwise_si_sdr",
    "pairwise_neg_snr",
    "pairwise_neg_si_sdr",
    "EPS",
]

EPS = 1e-8


def _check_same(est: torch.Tensor, ref: torch.Tensor) -> None:
    if est.shape != ref.shape or est.dim() < 1:
        raise ValueError(
            f"estimate and reference must have the same shape (..., time); got {tuple(est.shape)} and {tuple(ref.shape)}"
        )
    if not (torch.is_floating_point(est) and torch.is_floating_point(ref)):
        raise ValueError(f"estimate and reference must be floating point; got {est.dtype} and {ref.dtype}")


def _check_sources(est: torch.Tensor, ref: torch.Tensor) -> None:
    if est.dim() != 3 or ref.dim() != 3 or est.shape != ref.shape:
        raise ValueError(
            "pairwise losses need estimate and reference shaped (batch, sources, time) alike; "
            f"got {tuple(est.shape)} and {tuple(ref.shape)}"
        )


def _out_dtype(est: torch.Tensor) -> torch.dtype:
    return torch.promote_types(est.dtype, torch.float32)


def _prepare(x: torch.Tensor, zero_mean: bool) -> torch.Tensor:
    x = x.double()
    return x - x.mean(dim=-1, keepdim=True) if zero_mean else x


def _snr_from_products(ee: torch.Tensor, rr: torch.Tensor, er: torch.Tensor, eps: float) -> torch.Tensor:
    # |r - e|^2 expanded; rounding can leave it a hair below zero for e == r.
    noise = (rr + ee - 2.0 * er).clamp_min(0.0)
    return 10.0 * torch.log10((rr + eps) / (noise + eps))


def _si_sdr_from_products(ee: torch.Tensor, rr: torch.Tensor, er: torch.Tensor, eps: float) -> torch.Tensor:
    # Optimal scaling of the reference, a = <e, r> / |r|^2; target = a r, noise = e - a r.
    alpha = er / (rr + eps)
    target = alpha * alpha * rr
    noise = (ee - 2.0 * alpha * er + target).clamp_min(0.0)
    return 10.0 * torch.log10((target + eps) / (noise + eps))


def snr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """SNR in dB, ``10 log10(|ref|^2 / |ref - est|^2)``; ``(..., T) -> (...)``."""
    _check_same(est, ref)
    e, r = _prepare(est, False), _prepare(ref, False)
    out = _snr_from_products((e * e).sum(-1), (r * r).sum(-1), (e * r).sum(-1), eps)
    return out.to(_out_dtype(est))


def si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS, zero_mean: bool = True) -> torch.Tensor:
    """Scale-invariant SDR in dB (Le Roux et al., "SDR - half-baked or well done?", 2019); ``(..., T) -> (...)``."""
    _check_same(est, ref)
    e, r = _prepare(est, zero_mean), _prepare(ref, zero_mean)
    out = _si_sdr_from_products((e * e).sum(-1), (r * r).sum(-1), (e * r).sum(-1), eps)
    return out.to(_out_dtype(est))


def neg_snr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return -snr(est, ref)


def neg_si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return -si_sdr(est, ref)


def _pairwise_products(
    est: torch.Tensor, ref: torch.Tensor, zero_mean: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``<e_i, e_i>`` (B, C, 1), ``<r_j, r_j>`` (B, 1, C) and ``<e_i, r_j>`` (B, C, C)."""
    _check_sources(est, ref)
    e, r = _prepare(est, zero_mean), _prepare(ref, zero_mean)
    ee = (e * e).sum(-1).unsqueeze(2)
    rr = (r * r).sum(-1).unsqueeze(1)
    er = torch.bmm(e, r.transpose(1, 2))  # (B, C_est, T) x (B, T, C_ref) -> (B, C_est, C_ref)
    return ee, rr, er


def pairwise_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``out[b, i, j] = snr(est[b, i], ref[b, j])``; ``(B, C, T) x (B, C, T) -> (B, C_est, C_ref)``."""
    return _snr_from_products(*_pairwise_products(est, ref, False), eps).to(_out_dtype(est))


def pairwise_si_sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS, zero_mean: bool = True) -> torch.Tensor:
    """``out[b, i, j] = si_sdr(est[b, i], ref[b, j])``; ``(B, C, T) x (B, C, T) -> (B, C_est, C_ref)``."""
    return _si_sdr_from_products(*_pairwise_products(est, ref, zero_mean), eps).to(_out_dtype(est))


def pairwise_neg_snr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return -pairwise_snr(est, ref)


def pairwise_neg_si_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return -pairwise_si_sdr(est, ref)
