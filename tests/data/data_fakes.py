"""Helpers shared by the data tests (a uniquely named module: the test folders have no __init__)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from speechsep.data.noise import NoiseClip
from speechsep.data.utterances import Utterances


def write_wav(path, wav, sr=8000, subtype="FLOAT"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, sr, subtype=subtype)
    return path


def tone(freq: float, n: int, sr: int = 8000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def synthetic_inputs(sr: int = 8000, speakers: int = 9, per_speaker: int = 4):
    """Speakers as distinct tones (so a test can tell them apart), and three noise clips."""
    ids, spk, splits, chunks = [], [], [], []
    for s in range(speakers):
        split = "train" if s < speakers - 5 else ("valid" if s < speakers - 3 else "test")
        for u in range(per_speaker):
            n = int(sr * (0.6 + 0.4 * u))
            chunks.append(tone(150 + 40 * s, n, sr, seed=100 * s + u))
            ids.append(f"spk{s}_u{u}")
            spk.append(f"spk{s}")
            splits.append(split)
    utts = Utterances(ids, spk, splits, np.array([c.size for c in chunks]), sr)
    names = ["rain", "traffic", "crowd", "wind", "hum", "market"]
    clips = [NoiseClip(f"{names[k]}1.wav", np.random.default_rng(k).standard_normal(sr * 2).astype(np.float32) * 0.1)
             for k in range(6)]
    return utts, chunks, clips
