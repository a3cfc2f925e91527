"""Each speaker's median pitch, and which speakers of one actor group still make two distinct voices.

Why. A corpus puts every character of a game's cast in one actor group because the credits do not say
who voiced whom (:mod:`speechsep.data.sources.fotaq`, :mod:`speechsep.data.sources.fillets`), and the
mixer never pairs two speakers of a group. That keeps a held-out voice out of training, as it must, but
it also means the training mixtures of the largest sources always pair voices of two *different*
recordings (a game's MP3 with a language course's Ogg), so a model can learn the recordings apart
instead of the voices: it never hears the small fish against the big fish of one dubbing. Two
characters whose median pitches lie several semitones apart are two distinct voices to the ear, even
when one actor played both, so the mixer may pair them (``MixingConfig.distinct_pitch_semitones``).
Only the pairing changes: a group still goes whole to one split.

Pitch is librosa's YIN (de Cheveigné and Kawahara, 2002) over at most ``max_utterances`` lines of each
speaker, on frames louder than a third of the line's median RMS (YIN reports a period on silence too).
The per-speaker medians are cached beside the corpus's utterance table, keyed by that table's size and
modification time and by the estimator's settings, and written atomically.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsep.data.utterances import Utterances
from speechsep.utils import atomic_path

__all__ = ["PitchSettings", "speaker_pitch", "median_pitch", "semitones_apart", "corpus_speaker_pitch",
           "write_pitch_cache"]

FMIN_HZ, FMAX_HZ = 60.0, 500.0  # the range of adult and child speaking voices


@dataclass(frozen=True)
class PitchSettings:
    """What the cached medians depend on; a change recomputes them."""

    max_utterances: int = 30
    seed: int = 0
    frame_seconds: float = 0.064

    def __post_init__(self):
        if self.max_utterances < 1:
            raise ValueError(f"max_utterances must be >= 1; got {self.max_utterances}")

    def key(self) -> dict:
        return {"max_utterances": self.max_utterances, "seed": self.seed, "frame_seconds": self.frame_seconds,
                "fmin_hz": FMIN_HZ, "fmax_hz": FMAX_HZ, "estimator": "librosa.yin"}


def _librosa():
    try:
        import librosa
    except ImportError as e:  # an optional dependency: only pitch-aware pairing needs it
        raise ImportError("speaker pitch needs librosa: pip install 'speechsep[pitch]' (or pip install librosa)") from e
    return librosa


def median_pitch(waves: list[np.ndarray], sample_rate: int, frame_seconds: float = 0.064) -> float:
    """Median F0 (Hz) over the voiced-looking frames of ``waves``; NaN when none is long enough."""
    librosa = _librosa()
    frame = int(round(frame_seconds * sample_rate))
    hop = frame // 4
    found = []
    for x in waves:
        x = np.asarray(x, dtype=np.float32)
        if x.size < 2 * frame or not np.isfinite(x).all():
            continue
        f0 = librosa.yin(x, fmin=FMIN_HZ, fmax=FMAX_HZ, sr=sample_rate, frame_length=frame, hop_length=hop)
        rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop)[0][: f0.size]
        loud = rms[rms > 0]
        if loud.size:
            found.append(f0[: rms.size][rms > np.median(loud) / 3.0])
    voiced = np.concatenate(found) if found else np.empty(0)
    return float(np.median(voiced)) if voiced.size else math.nan


def speaker_pitch(utterances: Utterances, settings: PitchSettings | None = None) -> dict[str, float]:
    """Speaker -> median F0 in Hz over a seeded sample of their lines (NaN when none could be measured)."""
    settings = settings or PitchSettings()
    rng = np.random.default_rng(settings.seed)
    lines: dict[str, list[int]] = {}
    for i, s in enumerate(utterances.speakers):
        lines.setdefault(s, []).append(i)
    out = {}
    for s in sorted(lines):
        chosen = rng.permutation(len(lines[s]))[: settings.max_utterances]
        waves = [utterances.load(lines[s][int(k)]) for k in chosen]
        out[s] = median_pitch(waves, utterances.sample_rate, settings.frame_seconds)
    return out


def semitones_apart(a_hz: float, b_hz: float) -> float:
    """|12 log2(a / b)|; NaN when either pitch is unknown (such a pair is not called distinct)."""
    if not (a_hz > 0 and b_hz > 0):
        return math.nan
    return abs(12.0 * math.log2(a_hz / b_hz))


def _cache(root: str | os.PathLike, utterances: Utterances, settings: PitchSettings) -> tuple[Path, dict]:
    """The cache file of a corpus and the key its contents must carry to be current."""
    table = Path(root) / "speech" / "utterances.csv"
    if not table.exists():
        raise FileNotFoundError(f"{table} is missing: {root} is not a built corpus")
    stat = table.stat()
    key = {"table_bytes": stat.st_size, "table_mtime_ns": stat.st_mtime_ns, "sample_rate": utterances.sample_rate,
           **settings.key()}
    return table.parent / "pitch.json", key


def write_pitch_cache(root: str | os.PathLike, utterances: Utterances, pitch: dict[str, float],
                      settings: PitchSettings | None = None) -> Path:
    """Store ``pitch`` as the corpus's current cache (atomically): for pitches measured elsewhere on
    the same speakers, e.g. a corpus repacked from a larger one (``bench/gpu``)."""
    cache, key = _cache(root, utterances, settings or PitchSettings())
    with atomic_path(cache) as tmp:
        tmp.write_text(json.dumps({"key": key, "median_hz": {s: (None if math.isnan(v) else round(v, 2))
                                                              for s, v in pitch.items()}}, indent=1, sort_keys=True))
    return cache


def corpus_speaker_pitch(root: str | os.PathLike, utterances: Utterances,
                         settings: PitchSettings | None = None) -> dict[str, float]:
    """:func:`speaker_pitch` of a built corpus, cached in ``ROOT/speech/pitch.json``."""
    settings = settings or PitchSettings()
    cache, key = _cache(root, utterances, settings)
    if cache.exists():
        try:
            saved = json.loads(cache.read_text())
        except (OSError, ValueError):
            saved = None  # unreadable: recomputed and replaced below
        if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("median_hz"), dict):
            return {s: (math.nan if v is None else float(v)) for s, v in saved["median_hz"].items()}
    pitch = speaker_pitch(utterances, settings)
    write_pitch_cache(root, utterances, pitch, settings)
    return pitch
