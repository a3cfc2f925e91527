"""New voices from old ones: a speaker's formants and pitch moved independently, for training mixtures.

Why. A separator trained on a corpus of about 130 voices may learn those voices rather than
separation: on the bundled default the training speakers score 6.4 dB SI-SNRi and unseen ones 4.9 dB
(``python -m bench learn-diagnose``, BENCHMARKS "learn"). Speed perturbation
(:func:`speechsep.data.mixing.change_speed`) makes one voice many, but it moves tempo, pitch and
formants together, so a speaker's ratio of pitch to vocal-tract length, a large part of what tells two
voices apart, never changes. Here both move on their own: the formants (vocal-tract length) by a
ratio, the pitch by semitones, the duration kept. Information perturbation of this kind (a formant
shift and a pitch change through Praat) is how NANSY makes a speaker unrecognisable while the words
stay (Choi et al., "Neural Analysis and Synthesis", NeurIPS 2021, Sec. 3.1); here it makes new
speakers for the mixer. Measured on the bundled default (BENCHMARKS "New voices from old ones"): no
gain on unseen voices at formants 0.85-1.18 and +-4 semitones, so the bundled recipes leave it off.

How. Praat's "Change gender" (through parselmouth, Praat's own code): the sound is resampled by the
formant ratio, which moves formants and pitch alike, then PSOLA (pitch-synchronous overlap-add) sets
the pitch contour to the new median and restores the duration. The new median is the track's own
median (Praat's pitch analysis, 75-600 Hz) times the pitch ratio; a track with no voiced frame gets the
formant shift only. The output has the input's length, and silence stays silence.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["VoiceShift", "random_voice_shift", "change_voice"]

PITCH_FLOOR_HZ, PITCH_CEILING_HZ = 75.0, 600.0  # Praat's defaults for speech; children reach 500 Hz


@dataclass(frozen=True)
class VoiceShift:
    """Formants times ``formant_ratio`` (1.1: a shorter vocal tract), pitch moved by ``pitch_semitones``."""

    formant_ratio: float = 1.0
    pitch_semitones: float = 0.0

    def __post_init__(self):
        if not 0.5 <= self.formant_ratio <= 2.0:
            raise ValueError(f"formant_ratio must be in [0.5, 2]; got {self.formant_ratio}")
        if not -24.0 <= self.pitch_semitones <= 24.0:
            raise ValueError(f"pitch_semitones must be in [-24, 24]; got {self.pitch_semitones}")

    @property
    def identity(self) -> bool:
        return self.formant_ratio == 1.0 and self.pitch_semitones == 0.0


def random_voice_shift(rng: np.random.Generator, formant_range: tuple[float, float],
                       semitone_range: tuple[float, float]) -> VoiceShift:
    """A formant ratio log-uniform in ``formant_range`` (0.9 and 1/0.9 equally likely) and a pitch
    shift uniform in ``semitone_range``."""
    lo, hi = formant_range
    ratio = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) if hi > lo else lo
    s_lo, s_hi = semitone_range
    semitones = float(rng.uniform(s_lo, s_hi)) if s_hi > s_lo else s_lo
    return VoiceShift(ratio, semitones)


def _praat():
    try:
        import parselmouth
        from parselmouth.praat import call
    except ImportError as e:  # an optional dependency: only the voice augmentation needs it
        raise ImportError("voice shifts need Praat's parselmouth: pip install 'speechsep[voice]' "
                          "(or pip install praat-parselmouth)") from e
    return parselmouth, call


def change_voice(wav: np.ndarray, sample_rate: int, shift: VoiceShift) -> np.ndarray:
    """``wav`` (1-D) spoken with ``shift``'s formants and pitch, same length and dtype."""
    if wav.ndim != 1:
        raise ValueError(f"change_voice takes one channel (T,); got shape {wav.shape}")
    if shift.identity or not np.any(wav):
        return wav
    if not np.all(np.isfinite(wav)):
        raise ValueError("change_voice: the waveform has NaN or infinite samples")
    parselmouth, call = _praat()
    sound = parselmouth.Sound(wav.astype(np.float64), sampling_frequency=float(sample_rate))
    pitch = call(sound, "To Pitch", 0.0, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    median = call(pitch, "Get quantile", 0.0, 0.0, 0.5, "Hertz")
    # 0 keeps the pitch (Praat's convention): the formant shift alone, when nothing is voiced
    new_median = median * 2.0 ** (shift.pitch_semitones / 12.0) if math.isfinite(median) else 0.0
    with warnings.catch_warnings():
        # An unvoiced track (a whisper, a fricative-only crop) is the case handled above: Praat then
        # shifts the formants alone and says so once per call, which would flood a training log.
        warnings.filterwarnings("ignore", message=".*no voiced segments", category=parselmouth.PraatWarning)
        changed = call(sound, "Change gender", PITCH_FLOOR_HZ, PITCH_CEILING_HZ, shift.formant_ratio, new_median,
                       1.0, 1.0)
    out = changed.values[0]
    # Praat keeps the duration; its rounding may differ by a sample, which must not move the timeline
    if out.size != wav.size:
        out = np.pad(out, (0, max(wav.size - out.size, 0)))[: wav.size]
    return out.astype(wav.dtype, copy=False)
