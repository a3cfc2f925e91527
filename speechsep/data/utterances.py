"""The table of speech utterances a corpus draws from, and where their samples live.

Two storages: one int16 array on disk holding every decoded utterance back to back (the demo
corpus, decoded once from the game's MP3s and memory-mapped by every worker), or one audio file
per utterance (a LibriSpeech-style folder, read on demand). Either way ``load(i)`` returns the
utterance as float32 ``(time,)`` at the table's sample rate.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsep.audio import read_audio, resample
from speechsep.utils import atomic_path

__all__ = ["Utterances", "write_int16_array"]

log = logging.getLogger(__name__)


@dataclass
class Utterances:
    ids: list[str]
    speakers: list[str]
    splits: list[str]
    lengths: np.ndarray  # (N,) samples at sample_rate
    sample_rate: int
    offsets: np.ndarray | None = None  # (N,) start in the array file
    array_path: str | None = None
    paths: list[str] | None = None  # one audio file per utterance
    # Optional per-utterance facts (corpora built from several sources); "" / inf when unknown.
    sources: list[str] | None = None  # which reader it came from
    languages: list[str] | None = None  # ISO 639-1
    groups: list[str] | None = None  # actor group: speakers that may share an actor share it
    bandwidths: np.ndarray | None = None  # (N,) Hz, the recording's band (at the table's rate)

    def __post_init__(self):
        self._array = None
        self._warned: set[int] = set()

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_array"] = None  # each worker maps the file itself
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def load(self, i: int) -> np.ndarray:
        if self.array_path is not None:
            if self._array is None:
                self._array = np.load(self.array_path, mmap_mode="r")
            start = int(self.offsets[i])
            return self._array[start : start + int(self.lengths[i])].astype(np.float32) / 32767.0
        wav, sr = read_audio(self.paths[i], channel=0)
        if sr != self.sample_rate:
            if sr not in self._warned:  # log a conversion once per source rate, not once per file
                log.info("resampling speech from %d Hz to %d Hz (first: %s)", sr, self.sample_rate, self.paths[i])
                self._warned.add(sr)
            wav = resample(wav, sr, self.sample_rate)
        n = int(self.lengths[i])
        return wav[:n] if wav.size >= n else np.pad(wav, (0, n - wav.size))

    def speaker_pools(self, split: str) -> dict[str, np.ndarray]:
        pools: dict[str, list[int]] = {}
        for i, (spk, sp) in enumerate(zip(self.speakers, self.splits, strict=True)):
            if sp == split:
                pools.setdefault(spk, []).append(i)
        return {s: np.array(v, dtype=np.int64) for s, v in pools.items()}

    def speaker_groups(self) -> dict[str, str]:
        """Speaker -> actor group (the speaker itself when the table has no groups)."""
        if self.groups is None:
            return {s: s for s in self.speakers}
        return dict(zip(self.speakers, self.groups, strict=True))

    def seconds_by_speaker(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for spk, n in zip(self.speakers, self.lengths, strict=True):
            out[spk] = out.get(spk, 0.0) + float(n) / self.sample_rate
        return out

    def save_table(self, path: str | os.PathLike) -> None:
        """CSV, one row an utterance; paths in the table are stored relative to its folder."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "speaker", "split", "length", "offset", "path", "source", "language", "group",
                        "bandwidth_hz"])
            for i in range(len(self)):
                w.writerow([
                    self.ids[i], self.speakers[i], self.splits[i], int(self.lengths[i]),
                    "" if self.offsets is None else int(self.offsets[i]),
                    "" if self.paths is None else self.paths[i],
                    "" if self.sources is None else self.sources[i],
                    "" if self.languages is None else self.languages[i],
                    "" if self.groups is None else self.groups[i],
                    "" if self.bandwidths is None else f"{float(self.bandwidths[i]):.0f}",
                ])

    @classmethod
    def load_table(cls, path: str | os.PathLike, sample_rate: int, array_path: str | os.PathLike | None = None):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"{path}: the utterance table is empty")
        has_paths = rows[0]["path"] != ""

        def column(name):  # tables written before a column existed lack it
            return [r[name] for r in rows] if rows[0].get(name) else None

        bandwidths = column("bandwidth_hz")
        return cls(
            ids=[r["id"] for r in rows],
            speakers=[r["speaker"] for r in rows],
            splits=[r["split"] for r in rows],
            lengths=np.array([int(r["length"]) for r in rows], dtype=np.int64),
            sample_rate=sample_rate,
            offsets=None if has_paths else np.array([int(r["offset"]) for r in rows], dtype=np.int64),
            array_path=None if has_paths else str(array_path),
            paths=[r["path"] for r in rows] if has_paths else None,
            sources=column("source"),
            languages=column("language"),
            groups=column("group"),
            bandwidths=None if bandwidths is None else np.array([float(b) for b in bandwidths]),
        )


def write_int16_array(path: str | os.PathLike, chunks: list[np.ndarray]) -> np.ndarray:
    """Concatenate float waveforms into one int16 ``.npy`` (atomic); returns the start offsets."""
    lengths = np.array([c.size for c in chunks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    data = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    data = np.clip(np.round(data * 32767.0), -32768, 32767).astype(np.int16)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, data)
    return offsets
