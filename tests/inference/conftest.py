"""Closed-form separators for the inference tests.

``_BandSplit`` is a real (parameter-free) separation model whose output is known in closed form:

* ``mode="bandsplit"``: source 0 is the part of the input below ``cutoff_hz``, source 1 the rest (an
  FFT brick-wall mask over the whole input). On a mixture of two sources that live in disjoint sets
  of DFT bins it is a perfect separator.
* ``mode="gain"``: source 0 is ``gain * mix``, source 1 ``(1 - gain) * mix``: linear and
  time-invariant, so a segmented run must equal the whole-input run.

``noise`` adds a known tone of ``noise_hz + 100 c`` Hz to source ``c``; ``shuffle`` returns the
sources in a random order per call and per example (a separator with no consistent speaker order).
Every call records the longest input it has seen, so tests can bound what the model was given.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from speechsep.models.base import ModelConfig, SeparationModel
from speechsep.registry import register_model


@dataclasses.dataclass
class _BandSplitConfig(ModelConfig):
    mode: str = "bandsplit"
    cutoff_hz: float = 300.0
    gain: float = 0.8
    noise: float = 0.0
    noise_hz: float = 1000.0
    shuffle: bool = False
    seed: int = 0


@register_model
class _BandSplit(SeparationModel):
    family = "_test-inference-bandsplit"
    config_class = _BandSplitConfig

    def __init__(self, config):
        super().__init__(config)
        if config.num_sources != 2:
            raise ValueError("the band-split test model separates exactly two sources")
        self._gen = torch.Generator().manual_seed(config.seed)
        self.max_input_length = 0
        self.max_batch_rows = 0
        self.calls = 0
        self.permutations: list[list[int]] = []

    def forward(self, mixture):
        b, t = mixture.shape
        self.calls += 1
        self.max_input_length = max(self.max_input_length, t)
        self.max_batch_rows = max(self.max_batch_rows, b)
        cfg = self.config
        if cfg.mode == "gain":
            out = torch.stack([cfg.gain * mixture, (1.0 - cfg.gain) * mixture], dim=1)
        else:
            spec = torch.fft.rfft(mixture.double(), dim=-1)  # (B, t // 2 + 1)
            freqs = torch.fft.rfftfreq(t, d=1.0 / self.sample_rate)
            low = (freqs < cfg.cutoff_hz).to(spec.dtype)
            out = torch.stack(
                [torch.fft.irfft(spec * low, n=t), torch.fft.irfft(spec * (1 - low), n=t)], dim=1
            ).to(mixture.dtype)
        if cfg.noise:
            time = torch.arange(t, dtype=torch.float64) / self.sample_rate
            tones = torch.stack([torch.sin(2 * math.pi * (cfg.noise_hz + 100 * c) * time) for c in range(2)])
            out = out + cfg.noise * tones.to(out.dtype)
        if cfg.shuffle:
            perms = [torch.randperm(2, generator=self._gen) for _ in range(b)]
            self.permutations.extend(p.tolist() for p in perms)
            out = torch.stack([o[p] for o, p in zip(out, perms, strict=True)])
        return out


def _tones(bins, length, rng, sample_rate=8000):
    """Sum of unit-ish sinusoids at the given frequencies (Hz), random amplitudes and phases."""
    t = np.arange(length) / sample_rate
    amps = rng.uniform(0.2, 1.0, len(bins))
    phases = rng.uniform(0, 2 * np.pi, len(bins))
    x = sum(a * np.sin(2 * np.pi * f * t + p) for f, a, p in zip(bins, amps, phases, strict=True))
    return (x / np.abs(x).max() * 0.3).astype(np.float32)


@pytest.fixture
def band_model():
    def make(**overrides):
        return _BandSplit(_BandSplitConfig(**overrides)).eval()

    return make


@pytest.fixture
def tones():
    return _tones
