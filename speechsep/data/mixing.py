"""The mixture generator shared by the fixed sets and dynamic mixing.

One mixture is planned from a random generator (speakers, utterances and where they sit, levels,
condition, noise clip and offset, augmentation) and then rendered (room responses, gains, noise).
Planning and rendering are separate so the fixed sets and dynamic mixing draw mixtures the same way.

Level conventions follow WHAM!/WHAMR! (Wichern et al., Interspeech 2019, Sec. 3; Maciejewski et
al., ICASSP 2020, which keeps WHAM!'s levels):
- the two speakers come from wsj0-2mix's rule, a relative level uniform in 0-5 dB with either
  speaker the louder one, i.e. a signed relative level uniform in [-5, 5] dB, applied half to
  each speaker (+d/2 and -d/2 dB around a common reference);
- the noise SNR, relative to the louder speaker, is uniform in [-6, +3] dB (the ``whamr`` noise
  condition).
Levels are measured on the targets (the reverberant sources at the microphone), so the SNR in the
manifest is the SNR a model sees. The direct-path source of a speaker gets that speaker's gain.

Conditions (each drawn per mixture and recorded in its plan; the defaults keep the single WHAMR!-like
condition, a corpus sets its own mix, see ``speechsep.data.demo_corpus``):
- noise: ``none`` (noise-free), ``wide`` (SNR uniform in ``wide_snr_db``, -5..+20 dB) or ``whamr``
  (-6..+3 dB), drawn with ``noise_weights``;
- room: reverberant, or anechoic (the direct path only) with probability ``dry_probability``;
- overlap: full, or with probability ``partial_overlap_probability`` partial: the two speakers talk
  in windows that overlap by a fraction uniform in ``overlap_range`` of the segment (one starts
  late, the other stops early), as in LibriMix's "max" mode and real conversations;
- augmentation (dynamic mixing): each speaker's utterances are played at a speed uniform in
  ``speed_range`` (resampling with soxr: tempo, pitch and formants move together, so one voice
  becomes many; Ko et al., Interspeech 2015), the levels above are the gain augmentation, and with
  ``channel_eq_db`` > 0 each speaker gets a random smooth equaliser (a spectral tilt and three
  bumps on a log-frequency axis, at most that many dB; :func:`random_equalizer`): the recording
  chain of a game or a prompt set stops being a cue that tells two voices apart, and the timbre of
  one voice varies from mixture to mixture. The EQ is applied to the dry source, so the targets
  carry it too. With ``formant_shift_range`` or ``pitch_shift_semitones`` set, each speaker's dry
  track also gets its formants and its pitch moved independently (Praat's PSOLA,
  :mod:`speechsep.data.voice`): new voices, where speed perturbation only rescales a voice.
Bandwidths: sources differ (GSM prompts end near 3.6 kHz, one game's speech near 2.4 kHz); when the
two speakers of a mixture differ, both are low-passed to the narrower band (``match_bandwidth``), so
a model cannot separate by bandwidth instead of by voice.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import soxr

from speechsep.data.noise import loop_crossfade
from speechsep.data.pitch import semitones_apart
from speechsep.data.voice import VoiceShift, change_voice, random_voice_shift

__all__ = [
    "NOISE_CONDITIONS", "SPEAKER_WEIGHTINGS", "MixingConfig", "Placement", "MixturePlan", "Rendered", "plan_mixture", "assemble",
    "render", "synthesize", "lowpass", "change_speed", "Equalizer", "random_equalizer", "equalize",
]

_EPS = 1e-12

SPEAKER_WEIGHTINGS = ("groups", "sqrt-seconds")
"""How a mixture's speakers are drawn (``MixingConfig.speaker_weighting``)."""

NOISE_CONDITIONS = ("none", "wide", "whamr")
"""Noise conditions: noise-free, SNR over a wide range, WHAMR!'s range."""


@dataclass
class MixingConfig:
    segment_seconds: float = 4.0
    num_speakers: int = 2
    relative_level_db: tuple[float, float] = (-5.0, 5.0)
    snr_db: tuple[float, float] = (-6.0, 3.0)  # the "whamr" noise condition
    wide_snr_db: tuple[float, float] = (-5.0, 20.0)  # the "wide" noise condition
    noise_weights: dict[str, float] = field(default_factory=lambda: {"whamr": 1.0})
    dry_probability: float = 0.0  # share of anechoic mixtures (direct path only)
    partial_overlap_probability: float = 0.0
    overlap_range: tuple[float, float] = (0.3, 1.0)  # overlap as a fraction of the segment, when partial
    speed_range: tuple[float, float] = (1.0, 1.0)  # speed perturbation per speaker; (1, 1) = off
    channel_eq_db: float = 0.0  # largest gain of the random per-speaker equaliser; 0 = off
    # a new voice per speaker and mixture (speechsep.data.voice): formants times a ratio drawn
    # log-uniformly in this range, pitch moved by semitones drawn uniformly in the other; (1, 1) and
    # (0, 0) = off
    formant_shift_range: tuple[float, float] = (1.0, 1.0)
    pitch_shift_semitones: tuple[float, float] = (0.0, 0.0)
    # two speakers of one actor group may share a mixture when their median pitches are at least this
    # many semitones apart (speechsep.data.pitch says why); 0 = never
    distinct_pitch_semitones: float = 0.0
    # hard pairs: with this probability each further speaker is drawn among those whose median pitch lies
    # within ``close_pitch_semitones`` of the first one's (when any may join). Separation of voices of
    # similar pitch is the failure measured on held-out voices (BENCHMARKS.md, "Where the bundled models
    # fail": 1.5 dB under 2 semitones apart against 6.0 dB at 7-12); no gain measured on the CPU; 0 = off
    close_pitch_probability: float = 0.0
    close_pitch_semitones: float = 3.0
    # how a mixture's speakers are drawn: "groups" (an actor group by the square root of its number
    # of speakers) or "sqrt-seconds" (a speaker by the square root of their seconds of speech)
    speaker_weighting: str = "groups"
    match_bandwidth: bool = True
    level_dbfs: tuple[float, float] = (-30.0, -20.0)  # RMS of the louder target
    lead_seconds: tuple[float, float] = (0.0, 0.5)  # silence before a speaker's first word
    gap_seconds: tuple[float, float] = (0.1, 0.6)  # pause between a speaker's consecutive lines
    noise_fade_seconds: float = 0.25  # crossfade when a noise clip is looped
    peak: float = 0.95  # the whole mixture is scaled down if its peak would exceed this

    @property
    def uses_pitch(self) -> bool:
        """Whether drawing speakers reads their median pitch (``speechsep.data.pitch``)."""
        return self.distinct_pitch_semitones > 0 or self.close_pitch_probability > 0

    @property
    def shifts_voices(self) -> bool:
        return self.formant_shift_range != (1.0, 1.0) or self.pitch_shift_semitones != (0.0, 0.0)

    def __post_init__(self) -> None:
        unknown = set(self.noise_weights) - set(NOISE_CONDITIONS)
        if unknown or not self.noise_weights or min(self.noise_weights.values()) < 0 \
                or sum(self.noise_weights.values()) <= 0:
            raise ValueError(f"noise_weights must give non-negative weights to {NOISE_CONDITIONS}, with a positive "
                             f"sum; got {self.noise_weights}")
        for name in ("dry_probability", "partial_overlap_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}")
        lo, hi = self.overlap_range
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"overlap_range must satisfy 0 <= low <= high <= 1; got {self.overlap_range}")
        lo, hi = self.speed_range
        if not 0.5 <= lo <= hi <= 2.0:
            raise ValueError(f"speed_range must satisfy 0.5 <= low <= high <= 2; got {self.speed_range}")
        lo, hi = self.formant_shift_range
        if not 0.5 <= lo <= hi <= 2.0:
            raise ValueError(f"formant_shift_range must satisfy 0.5 <= low <= high <= 2; got {self.formant_shift_range}")
        lo, hi = self.pitch_shift_semitones
        if not -24.0 <= lo <= hi <= 24.0:
            raise ValueError(f"pitch_shift_semitones must satisfy -24 <= low <= high <= 24; got {self.pitch_shift_semitones}")
        if not 0.0 <= self.channel_eq_db <= 24.0:
            raise ValueError(f"channel_eq_db must be in [0, 24] dB; got {self.channel_eq_db}")
        if not 0.0 <= self.distinct_pitch_semitones <= 36.0:
            raise ValueError(f"distinct_pitch_semitones must be in [0, 36]; got {self.distinct_pitch_semitones}")
        if not 0.0 <= self.close_pitch_probability <= 1.0:
            raise ValueError(f"close_pitch_probability must be in [0, 1]; got {self.close_pitch_probability}")
        if not 0.0 < self.close_pitch_semitones <= 36.0:
            raise ValueError(f"close_pitch_semitones must be in (0, 36]; got {self.close_pitch_semitones}")
        if self.speaker_weighting not in SPEAKER_WEIGHTINGS:
            raise ValueError(f"speaker_weighting must be one of {SPEAKER_WEIGHTINGS}; got {self.speaker_weighting!r}")


@dataclass(frozen=True)
class Placement:
    """``count`` samples of utterance ``utterance`` (after speed change) from ``source_offset`` on, at
    ``start`` in the segment."""

    utterance: int
    start: int
    source_offset: int
    count: int


@dataclass(frozen=True)
class Equalizer:
    """A smooth gain curve over log frequency: ``tilt_db`` from 100 Hz to 4 kHz (half below, half
    above 630 Hz) plus Gaussian bumps of ``gains_db`` at ``centers_hz``, ``widths_oct`` octaves wide
    (standard deviation); the total is clipped to +-``limit_db``."""

    tilt_db: float
    centers_hz: tuple[float, ...]
    widths_oct: tuple[float, ...]
    gains_db: tuple[float, ...]
    limit_db: float

    def response_db(self, freqs_hz: np.ndarray) -> np.ndarray:
        octaves = np.log2(np.maximum(freqs_hz, 50.0) / 630.0)  # octaves from 630 Hz (DC held at 50 Hz)
        # 100 Hz .. 4 kHz spans 5.3 octaves: the tilt is tilt_db across that span
        gain = self.tilt_db * octaves / 5.32
        for center, width, g in zip(self.centers_hz, self.widths_oct, self.gains_db, strict=True):
            gain = gain + g * np.exp(-0.5 * ((octaves - np.log2(center / 630.0)) / width) ** 2)
        return np.clip(gain, -self.limit_db, self.limit_db)


def random_equalizer(rng: np.random.Generator, limit_db: float, bumps: int = 3) -> Equalizer:
    """Tilt uniform in +-``limit_db``; ``bumps`` bumps centred log-uniformly in 150 Hz-3.5 kHz, 0.3-1
    octave wide, gains uniform in +-``limit_db``."""
    return Equalizer(
        tilt_db=float(rng.uniform(-limit_db, limit_db)),
        centers_hz=tuple(float(c) for c in np.exp(rng.uniform(np.log(150.0), np.log(3500.0), bumps))),
        widths_oct=tuple(float(w) for w in rng.uniform(0.3, 1.0, bumps)),
        gains_db=tuple(float(g) for g in rng.uniform(-limit_db, limit_db, bumps)),
        limit_db=float(limit_db),
    )


def equalize(x: np.ndarray, eq: Equalizer, sample_rate: int) -> np.ndarray:
    """Zero-phase filtering of ``x`` (last axis) by ``eq``'s magnitude response."""
    return _zero_phase(x, sample_rate, lambda freqs: 10.0 ** (eq.response_db(freqs) / 20.0))


def _zero_phase(x: np.ndarray, sample_rate: int, response: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``x`` (last axis) times the real gain ``response(freqs in Hz)`` in one FFT of a fast length
    (the shared arithmetic of :func:`lowpass` and :func:`equalize`)."""
    n = x.shape[-1]
    size = scipy.fft.next_fast_len(n, real=True)
    gain = response(np.fft.rfftfreq(size, 1.0 / sample_rate))
    return scipy.fft.irfft(scipy.fft.rfft(x, size, axis=-1) * gain, size, axis=-1)[..., :n].astype(x.dtype)


@dataclass
class MixturePlan:
    speakers: list[str]
    placements: list[list[Placement]]  # one list per speaker
    relative_level_db: float
    snr_db: float  # nan when noise-free
    level_dbfs: float
    noise_clip: int
    noise_offset: int
    noise: str = "whamr"  # the noise condition
    dry: bool = False  # anechoic: the direct path stands for the room
    overlap: float = 1.0  # fraction of the segment where both speakers' windows overlap
    speeds: list[float] = field(default_factory=list)  # one per speaker
    equalizers: list[Equalizer] = field(default_factory=list)  # one per speaker, empty when the EQ is off
    voices: list[VoiceShift] = field(default_factory=list)  # one per speaker, empty when voice shifts are off
    room: int = -1  # index in a room bank, or -1 when the room is simulated for this mixture
    extra: dict = field(default_factory=dict)


@dataclass
class Rendered:
    mixture: np.ndarray  # (T,)
    reverb: np.ndarray  # (C, T) reverberant sources at the microphone, the default target
    direct: np.ndarray  # (C, T) direct-path sources, the dereverberation target
    noise: np.ndarray  # (T,)
    gains_db: np.ndarray  # (C,) gain applied to each source's response
    noise_gain_db: float  # -inf when noise-free
    bandwidth_hz: float = math.inf  # the band both sources were limited to (inf: not limited)


def change_speed(wav: np.ndarray, factor: float) -> np.ndarray:
    """Play ``wav`` ``factor`` times faster (``len / factor`` samples), pitch and formants shifted alike."""
    if factor == 1.0:
        return wav
    # Reading the samples as if recorded at rate factor * r and resampling them to r.
    return soxr.resample(wav, 1000.0 * factor, 1000.0, quality="HQ").astype(np.float32)


def _speed_length(n: int, factor: float) -> int:
    """Samples that ``change_speed`` returns for ``n`` samples (soxr rounds the output length)."""
    return n if factor == 1.0 else int(round(n / factor))


def _fill(
    rng: np.random.Generator, pool: np.ndarray, lengths: np.ndarray, window: tuple[int, int], speed: float,
    cfg: MixingConfig, sr: int,
) -> list[Placement]:
    """Lines of one speaker, one after another with short pauses, until its window is full."""
    placements: list[Placement] = []
    t = window[0] + int(rng.uniform(*cfg.lead_seconds) * sr)
    end = window[1]
    first = True
    while t < end:
        u = int(pool[rng.integers(len(pool))])
        n = _speed_length(int(lengths[u]), speed)
        # A first line longer than the room left starts at a random point inside it (a random crop).
        offset = int(rng.integers(0, n - (end - t) + 1)) if first and n > end - t else 0
        count = min(n - offset, end - t)
        if count > 0:
            placements.append(Placement(u, t, offset, count))
        t += count + int(rng.uniform(*cfg.gap_seconds) * sr)
        first = False
    return placements


def _windows(rng: np.random.Generator, cfg: MixingConfig, segment: int, c: int) -> tuple[float, list[tuple[int, int]]]:
    """Overlap fraction and each speaker's active window ``[start, end)`` in the segment."""
    if c != 2 or not (cfg.partial_overlap_probability > 0 and rng.random() < cfg.partial_overlap_probability):
        return 1.0, [(0, segment)] * c
    overlap = float(rng.uniform(*cfg.overlap_range))
    # Both windows are (1 + o) / 2 of the segment: they share o of it; who starts first is drawn.
    length = int(round((1.0 + overlap) / 2.0 * segment))
    windows = [(0, length), (segment - length, segment)]
    if rng.random() < 0.5:
        windows.reverse()
    return overlap, windows


def _draw_speakers(rng: np.random.Generator, names: list[str], count: int, groups: dict[str, str] | None) -> list[str]:
    """``count`` distinct speakers; with ``groups``, from distinct actor groups where the split has
    enough of them (two characters of one game may share an actor: not two different voices)."""
    if groups:
        by_group: dict[str, list[str]] = {}
        for s in names:
            by_group.setdefault(groups.get(s, s), []).append(s)
        if len(by_group) >= count:
            keys = sorted(by_group)
            # Groups weighted by the square root of their number of speakers: a cast of 30
            # characters (a handful of actors) is drawn more often than one reader, not 30x more.
            weights = np.sqrt(np.array([len(by_group[k]) for k in keys], dtype=np.float64))
            chosen = rng.choice(len(keys), size=count, replace=False, p=weights / weights.sum())
            return [by_group[keys[g]][int(rng.integers(len(by_group[keys[g]])))] for g in chosen]
    return [names[i] for i in rng.choice(len(names), size=count, replace=False)]


def _draw_voices(rng: np.random.Generator, names: list[str], count: int, groups: dict[str, str],
                 seconds: dict[str, float] | None, cfg: MixingConfig, pitch: dict[str, float] | None) -> list[str]:
    """:func:`_draw_speakers` with ``cfg.speaker_weighting``, ``cfg.distinct_pitch_semitones`` and
    ``cfg.close_pitch_probability``.

    One speaker at a time, among those that may still join: a speaker whose group no chosen speaker
    shares, or (pitch pairing) whose median pitch is ``distinct_pitch_semitones`` from every chosen one
    of its group. ``"groups"`` weighs a group by the square root of how many of its speakers may join
    and shares that among them (as :func:`_draw_speakers`); ``"sqrt-seconds"`` weighs each speaker by
    the square root of their seconds of speech, so the sentence sources, which hold most of the speech,
    are not outnumbered by the many short-word voices of the language courses.
    """
    by_group: dict[str, list[str]] = {}
    for s in names:
        by_group.setdefault(groups.get(s, s), []).append(s)
    if len(by_group) < count:  # the split cannot keep groups apart: any distinct speakers
        return [names[i] for i in rng.choice(len(names), size=count, replace=False)]
    chosen: list[str] = []
    for _ in range(count):
        allowed = [s for s in names if s not in chosen and all(
            groups.get(c, c) != groups.get(s, s) or (pitch is not None and cfg.distinct_pitch_semitones > 0 and
                                                     semitones_apart(pitch.get(s, math.nan), pitch.get(c, math.nan))
                                                     >= cfg.distinct_pitch_semitones)
            for c in chosen)]  # never empty: a group no chosen speaker is in remains
        if chosen and cfg.close_pitch_probability > 0 and rng.random() < cfg.close_pitch_probability:
            close = [s for s in allowed if semitones_apart(pitch.get(s, math.nan), pitch.get(chosen[0], math.nan))
                     <= cfg.close_pitch_semitones]
            allowed = close or allowed  # no voice near the first one's pitch: the plain draw
        if cfg.speaker_weighting == "sqrt-seconds":
            weights = np.sqrt(np.array([seconds[s] for s in allowed], dtype=np.float64))
        else:
            per_group = Counter(groups.get(s, s) for s in allowed)
            weights = np.array([per_group[groups.get(s, s)] ** -0.5 for s in allowed], dtype=np.float64)
        chosen.append(allowed[int(rng.choice(len(allowed), p=weights / weights.sum()))])
    return chosen


def plan_mixture(
    rng: np.random.Generator,
    speaker_pools: dict[str, np.ndarray],
    lengths: np.ndarray,
    noise_lengths: Sequence[int],
    cfg: MixingConfig,
    sample_rate: int,
    speaker_groups: dict[str, str] | None = None,
    speaker_pitch: dict[str, float] | None = None,
) -> MixturePlan:
    """Draw one mixture. ``speaker_pools`` maps each speaker of the split to its utterance indices;
    ``speaker_groups`` maps a speaker to its actor group (two speakers of a mixture come from two groups
    when the split allows it, or from one when ``cfg.distinct_pitch_semitones`` and ``speaker_pitch``,
    each speaker's median Hz, say they are distinct voices)."""
    if cfg.uses_pitch and speaker_pitch is None:
        raise ValueError("distinct_pitch_semitones or close_pitch_probability is set but no speaker pitch was given "
                         "(speechsep.data.pitch.corpus_speaker_pitch measures it)")
    names = sorted(speaker_pools)
    if len(names) < cfg.num_speakers:
        raise ValueError(f"need at least {cfg.num_speakers} speakers, the split has {len(names)}: {names}")
    segment = int(round(cfg.segment_seconds * sample_rate))
    if speaker_groups and (cfg.uses_pitch or cfg.speaker_weighting != "groups"):
        seconds = {s: float(lengths[speaker_pools[s]].sum()) / sample_rate for s in names} \
            if cfg.speaker_weighting == "sqrt-seconds" else None
        picked = _draw_voices(rng, names, cfg.num_speakers, speaker_groups, seconds, cfg, speaker_pitch)
    else:  # the draw every corpus built before these options used, kept bit for bit
        picked = _draw_speakers(rng, names, cfg.num_speakers, speaker_groups)
    overlap, windows = _windows(rng, cfg, segment, cfg.num_speakers)
    lo, hi = cfg.speed_range
    speeds = [float(rng.uniform(lo, hi)) if hi > lo else lo for _ in picked]
    placements = [_fill(rng, speaker_pools[s], lengths, w, f, cfg, sample_rate)
                  for s, w, f in zip(picked, windows, speeds, strict=True)]
    noise_lengths = np.asarray(noise_lengths)
    clip = int(rng.choice(len(noise_lengths), p=noise_lengths / noise_lengths.sum()))
    conditions = sorted(cfg.noise_weights)
    weights = np.array([cfg.noise_weights[k] for k in conditions], dtype=np.float64)
    noise = conditions[int(rng.choice(len(conditions), p=weights / weights.sum()))] if len(conditions) > 1 \
        else conditions[0]
    dry = bool(0 < cfg.dry_probability and rng.random() < cfg.dry_probability)
    relative = float(rng.uniform(*cfg.relative_level_db))
    snr_range = {"whamr": cfg.snr_db, "wide": cfg.wide_snr_db}.get(noise)
    snr = float(rng.uniform(*snr_range)) if snr_range is not None else math.nan
    plan = MixturePlan(
        speakers=picked,
        placements=placements,
        relative_level_db=relative,
        snr_db=snr,
        level_dbfs=float(rng.uniform(*cfg.level_dbfs)),
        noise_clip=clip,
        noise_offset=int(rng.integers(0, int(noise_lengths[clip]))),
        noise=noise,
        dry=dry,
        overlap=overlap,
        speeds=speeds,
    )
    # drawn last and only when on: every other draw, and corpora built without it, stay as they were
    if cfg.channel_eq_db > 0:
        plan.equalizers = [random_equalizer(rng, cfg.channel_eq_db) for _ in picked]
    if cfg.shifts_voices:
        plan.voices = [random_voice_shift(rng, cfg.formant_shift_range, cfg.pitch_shift_semitones) for _ in picked]
    return plan


def assemble(placements: list[Placement], load: Callable[[int], np.ndarray], segment: int,
             speed: float = 1.0) -> np.ndarray:
    """The dry source ``(T,)`` of one speaker from its placements (utterances played at ``speed``)."""
    out = np.zeros(segment, dtype=np.float32)
    for p in placements:
        wav = change_speed(load(p.utterance), speed)
        piece = wav[p.source_offset : p.source_offset + p.count]
        out[p.start : p.start + piece.size] = piece
    return out


def lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int, transition_hz: float = 200.0) -> np.ndarray:
    """Zero-phase low-pass along the last axis: unity below ``cutoff - transition``, a raised-cosine
    slope down to zero at ``cutoff``."""
    start = max(cutoff_hz - transition_hz, 0.0)

    def response(freqs: np.ndarray) -> np.ndarray:
        ramp = np.clip((freqs - start) / max(cutoff_hz - start, 1e-9), 0.0, 1.0)
        return 0.5 * (1.0 + np.cos(np.pi * ramp))

    return _zero_phase(x, sample_rate, response)


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
    if plan.dry:  # anechoic: the target at the microphone is the direct path
        (reverb,) = _convolve_head(dry.astype(np.float32), [direct_rir])
        direct = reverb.copy()
    else:
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
    if plan.noise == "none":
        noise, noise_gain_db = np.zeros(segment, dtype=np.float64), -math.inf
    else:
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
    *,
    speaker_groups: dict[str, str] | None = None,
    speaker_pitch: dict[str, float] | None = None,
    bandwidths: np.ndarray | None = None,
) -> tuple[MixturePlan, Rendered]:
    """Plan and render one mixture: the single code path of the fixed sets and dynamic mixing.

    ``bandwidths`` (Hz, one per utterance) turns on bandwidth matching (``cfg.match_bandwidth``).
    """
    plan = plan_mixture(rng, speaker_pools, lengths, [c.size for c in noise_clips], cfg, sample_rate, speaker_groups,
                        speaker_pitch)
    plan.room, reverb_rir, direct_rir = responses(rng)
    segment = int(round(cfg.segment_seconds * sample_rate))
    dry = np.stack([assemble(p, load_utterance, segment, f) for p, f in zip(plan.placements, plan.speeds, strict=True)])
    # the voice first, then the channel: a recording chain colours whatever voice it records
    for c, shift in enumerate(plan.voices):
        dry[c] = change_voice(dry[c], sample_rate, shift)
    for c, eq in enumerate(plan.equalizers):
        dry[c] = equalize(dry[c], eq, sample_rate)
    band = math.inf
    if cfg.match_bandwidth and bandwidths is not None:
        used = [min((float(bandwidths[p.utterance]) for p in places), default=math.inf) for places in plan.placements]
        band = min(used)
        # Limit only when a speaker is clearly wider than the narrowest (10 %), and below Nyquist.
        if band < 0.95 * sample_rate / 2 and max(used) > 1.1 * band:
            dry = lowpass(dry, band, sample_rate)
        else:
            band = math.inf
    out = render(dry, reverb_rir, direct_rir, noise_clips[plan.noise_clip], plan, cfg, sample_rate)
    out.bandwidth_hz = band
    return plan, out
