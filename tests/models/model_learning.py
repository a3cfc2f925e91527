"""Shared by the model tests (a uniquely named module: the test folders have no __init__): a tiny
model trained on a fixed two-tone mixture must improve, the cheapest proof that it can learn."""

from __future__ import annotations

import math

import torch

from speechsep.losses import PITLoss, pairwise_neg_snr


def two_tones(seconds: float = 0.5, sr: int = 8000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mixture (1, T), references (1, 2, T))``: two amplitude-modulated tones."""
    t = torch.arange(int(seconds * sr)) / sr
    s1 = 0.5 * torch.sin(2 * math.pi * 440 * t) * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t))
    s2 = 0.3 * torch.sin(2 * math.pi * 1500 * t) * (0.6 + 0.4 * torch.cos(2 * math.pi * 2 * t))
    refs = torch.stack([s1, s2])[None]
    return refs.sum(1), refs


def two_tone_losses(model: torch.nn.Module, steps: int = 30, lr: float = 1e-2) -> list[float]:
    """PIT negative SNR (dB) after each of ``steps`` Adam steps on :func:`two_tones`."""
    mix, refs = two_tones()
    pit = PITLoss(pairwise_neg_snr)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = pit(model(mix), refs)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
