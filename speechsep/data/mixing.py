"""The mixture generator shared by the fixed sets and dynamic mixing.

One mixture is planned from a random generator (speakers, utterances and where they sit, levels,
noise clip and offset) and then rendered (room responses, gains, noise). Planning and rendering
are separate so the fixed sets and dynamic mixing draw mixtures the same way.

Level conventions follow WHAM!/WHAMR! (Wichern et al., Interspeech 2019, Sec. 3; Maciejewski et
al., ICASSP 2020, which keeps WHAM!'s levels):
- the two speakers come from wsj0-2mix's rule, a relative level uniform in 0-5 dB with either
  speaker the louder one, i.e. a signed relative level uniform in [-5, 5] dB, applied half to
  each speaker (+d/2 and -d/2 dB around a common reference);
- the noise SNR, relative to the louder speaker, is uniform in [-6, +3] dB.
Levels are measured on the targets (the reverberant sources at the microphone), so the SNR in the
manifest is the SNR a model sees. The direct-path source of a speaker gets that speaker's gain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from speechsep.data.noise import loop_crossfade

__all__ = [
    "MixingConfig", "Placement", "MixturePlan", "Rendered", "plan_mixture", "assemble", "render", "synthesize",
]

_EPS = 1e-12


@dataclass
class MixingConfig:
    segment_seconds: float = 4.0
    num_speakers: int = 2
    relative_level_db: tuple[float, float] = (-5.0, 5.0)
    snr_db: tuple[float, float] = (-6.0, 3.0)
    level_dbfs: tuple[float, float] = (-30.0, -20.0)  # RMS of the louder target
    lead_seconds: tuple[float, float] = (0.0, 0.5)  # silence before a speaker's first word
    gap_seconds: tuple[float, float] = (0.1, 0.6)  # pause between a speaker's consecutive lines
    noise_fade_seconds: float = 0.25  # crossfade when a noise clip is looped
    peak: float = 0.95  # the whole mixture is scaled down if its peak would exceed this


@dataclass(frozen=True)
class Placement:
    """``count`` samples of utterance ``utterance`` from ``source_offset`` on, at ``start`` in the segment."""

    utterance: int
    start: int
    source_offset: int
    count: int


@dataclass
class MixturePlan:
    speakers: list[str]
    placements: list[list[Placement]]  # one list per speaker
    relative_level_db: float
    snr_db: float
    level_dbfs: float
    noise_clip: int
    noise_offset: int
    room: int = -1  # index in a room bank, or -1 when the room is simulated for this mixture
    extra: dict = field(default_factory=dict)


@dataclass
class Rendered:
    mixture: np.ndarray  # (T,)
    reverb: np.ndarray  # (C, T) reverberant sources at the microphone, the default target
    direct: np.ndarray  # (C, T) direct-path sources, the dereverberation target
    noise: np.ndarray  # (T,)
    gains_db: np.ndarray  # (C,) gain applied to each source's response
    noise_gain_db: float


def _fill(
    rng: np.random.Generator, pool: np.ndarray, lengths: np.ndarray, segment: int, cfg: MixingConfig, sr: int
) -> list[Placement]:
    """Lines of one speaker, one after another with short pauses, until the segment is full."""
    placements: list[Placement] = []
    t = int(rng.uniform(*cfg.lead_seconds) * sr)
    first = True
    while t < segment:
        u = int(pool[rng.integers(len(pool))])
        n = int(lengths[u])
        # A first line longer than the room left starts at a random point inside it (a random crop).
        offset = int(rng.integers(0, n - (segment - t) + 1)) if first and n > segment - t else 0
        count = min(n - offset, segment - t)
        placements.append(Placement(u, t, offset, count))
        t += count + int(rng.uniform(*cfg.gap_seconds) * sr)
        first = False
    return placements


def plan_mixture(
    rng: np.random.Generator,
    speaker_pools: dict[str, np.ndarray],
    lengths: np.ndarray,
    noise_lengths: Sequence[int],
    cfg: MixingConfig,
    sample_rate: int,
) -> MixturePlan:
    """Draw one mixture. ``speaker_pools`` maps each speaker of the split to its utterance indices."""
    names = sorted(speaker_pools)
    if len(names) < cfg.num_speakers:
        raise ValueError(f"need at least {cfg.num_speakers} speakers, the split has {len(names)}: {names}")
    segment = int(round(cfg.segment_seconds * sample_rate))
    picked = [names[i] for i in rng.choice(len(names), size=cfg.num_speakers, replace=False)]
    placements = [_fill(rng, speaker_pools[s], lengths, segment, cfg, sample_rate) for s in picked]
    noise_lengths = np.asarray(noise_lengths)
    clip = int(rng.choice(len(noise_lengths), p=noise_lengths / noise_lengths.sum()))
    return MixturePlan(
        speakers=picked,
        placements=placements,
        relative_level_db=float(rng.uniform(*cfg.relative_level_db)),
        snr_db=float(rng.uniform(*cfg.snr_db)),
        level_dbfs=float(rng.uniform(*cfg.level_dbfs)),
        noise_clip=clip,
        noise_offset=int(rng.integers(0, int(noise_lengths[clip]))),
    )


def assemble(placements: list[Placement], load: Callable[[int], np.ndarray], segment: int) -> np.ndarray:
    """The dry source ``(T,)`` of one speaker from its placements."""
    out = np.zeros(segment, dtype=np.float32)
    for p in placements:
        out[p.start : p.start + p.count] = load(p.utterance)[p.source_offset : p.source_offset + p.count]
    return out


def _power(x: np.ndarray) -> np.ndarray:
    return np.square(x).mean(axis=-1, dtype=np.float64) + _EPS


def _convolve_head(dry: np.ndarray, responses: list[np.ndarray]) -> list[np.ndarray]:
    """First ``T`` samples of the linear convolution of ``dry (C, T)`` with each ``(C, L)`` response.

    One FFT of the dry sources serves every response (reverberant and direct path); the FFT size
    covers ``T + L - 1``, so no circular wrap-around reaches the kept samples.
    """
    t = dry.shape[-1]
    n = scipy.fft.next_fast_len(t + max(h.shape[-1] for h in responses) - 1, real=True)
    spectrum = scipy.fft.rfft(dry, n, axis=-1)
    return [scipy.fft.irfft(spectrum * scipy.fft.rfft(h, n, axis=-1), n, axis=-1)[:, :t] for h in responses]


def render(
    dry: np.ndarray,
    reverb_rir: np.ndarray,
    direct_rir: np.ndarray,
    noise_clip: np.ndarray,
    plan: MixturePlan,
    cfg: MixingConfig,
    sample_rate: int,
) -> Rendered:
    """Convolve, set levels and add noise. ``dry`` is ``(C, T)``, the responses ``(C, L)``."""
    if dry.ndim != 2 or reverb_rir.ndim != 2 or dry.shape[0] != reverb_rir.shape[0]:
        raise ValueError(f"dry sources (C, T) and responses (C, L) must agree, got {dry.shape}, {reverb_rir.shape}")
    segment = dry.shape[1]
    # FFT convolution, a few ms for 4 s and a 0.5 s RT60, so dynamic mixing keeps up.
    reverb, direct = _convolve_head(dry.astype(np.float32), [reverb_rir, direct_rir])
    c = dry.shape[0]
    # Speaker levels: each target normalised to unit power, then spread +-d/2 dB (d = relative level).
    spread = np.zeros(c)
    spread[0], spread[1] = plan.relative_level_db / 2, -plan.relative_level_db / 2
    gains_db = -10 * np.log10(_power(reverb)) + spread
    loud = float(np.max(spread))
    # The louder target sits at level_dbfs RMS.
    gains_db += plan.level_dbfs - loud
    g = 10 ** (gains_db / 20)
    reverb = reverb * g[:, None]
    direct = direct * g[:, None]
    noise = loop_crossfade(
        noise_clip, segment, fade=int(cfg.noise_fade_seconds * sample_rate), offset=plan.noise_offset
    )
    noise_gain_db = float(plan.level_dbfs - plan.snr_db - 10 * np.log10(_power(noise)))
    noise = noise * 10 ** (noise_gain_db / 20)
    mixture = reverb.sum(axis=0) + noise
    peak = float(np.abs(mixture).max())
    if peak > cfg.peak:  # scale everything together so target + noise = mixture still holds
        k = cfg.peak / peak
        mixture, reverb, direct, noise = mixture * k, reverb * k, direct * k, noise * k
        gains_db += 20 * np.log10(k)
        noise_gain_db += 20 * np.log10(k)
    f32 = np.float32
    return Rendered(mixture.astype(f32), reverb.astype(f32), direct.astype(f32), noise.astype(f32),
                    gains_db, noise_gain_db)


Responses = Callable[[np.random.Generator], tuple[int, np.ndarray, np.ndarray]]
"""Given the generator, return ``(room index or -1, reverberant (C, L), direct (C, Ld))``."""


def synthesize(
    rng: np.random.Generator,
    speaker_pools: dict[str, np.ndarray],
    lengths: np.ndarray,
    load_utterance: Callable[[int], np.ndarray],
    noise_clips: Sequence[np.ndarray],
    responses: Responses,
    cfg: MixingConfig,
    sample_rate: int,
) -> tuple[MixturePlan, Rendered]:
    """Plan and render one mixture: the single code path of the fixed sets and dynamic mixing."""
    plan = plan_mixture(rng, speaker_pools, lengths, [c.size for c in noise_clips], cfg, sample_rate)
    plan.room, reverb_rir, direct_rir = responses(rng)
    segment = int(round(cfg.segment_seconds * sample_rate))
    dry = np.stack([assemble(p, load_utterance, segment) for p in plan.placements])
    return plan, render(dry, reverb_rir, direct_rir, noise_clips[plan.noise_clip], plan, cfg, sample_rate)
