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


# ------------------------------------------------------------------------------------------------
# Fake speech sources for the multi-source speech stage (registered in tests by monkeypatching
# speechsep.data.sources.SOURCES with "data_fakes:CLASS").

from pathlib import Path  # noqa: E402

from speechsep.audio import read_audio  # noqa: E402
from speechsep.data.sources.base import Listing, SourceError, SourceUtterance, SpeechSource  # noqa: E402


def write_fake_package(root: Path, speakers: dict[str, int], *, seed: int = 0, sr: int = 16000,
                       seconds: float = 1.0) -> Path:
    """ROOT/speech/SPEAKER_K.wav: ``speakers[name]`` tones per speaker."""
    for s, (name, count) in enumerate(sorted(speakers.items())):
        for k in range(count):
            write_wav(root / "speech" / f"{name}_{k}.wav", tone(150 + 30 * s + 50 * seed, int(sr * seconds), sr,
                                                                seed=100 * s + k), sr)
    return root


class _FakeSource(SpeechSource):
    language = "xx"
    grouped = False  # one actor group for the whole source

    def list(self, folders):
        root = Path(folders[self.packages[0]]) / "speech"
        if not root.is_dir():
            raise SourceError(f"{root} not found")
        utts, skipped, seen = [], [], 0
        for path in sorted(root.glob("*.wav")):
            seen += 1
            speaker = path.stem.rsplit("_", 1)[0]
            if speaker == "fx":
                skipped.append((str(path), "sound effect"))
                continue
            utts.append(SourceUtterance(f"{self.name}/{path.stem}", f"{self.name}/{speaker}", self.language,
                                        str(path), actor_group=f"{self.name}/cast" if self.grouped else ""))
        return Listing(utts, files_seen=seen, skipped=skipped)

    def decode(self, utterance):
        return read_audio(utterance.path)


class FakeA(_FakeSource):
    name, packages, language, description = "fake-a", ("fake-pkg-a",), "en", "fake game A"
    grouped = True


class FakeB(_FakeSource):
    name, packages, language, description = "fake-b", ("fake-pkg-b",), "es", "fake prompts B"


class FakeC(_FakeSource):
    name, packages, language, description = "fake-c", ("fake-pkg-c",), "fr", "fake prompts C"


class FakeReserved(_FakeSource):
    name, packages = "fake-reserved", ("asterisk-core-sounds-en-gsm",)
