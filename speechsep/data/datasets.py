"""torch Datasets over fixed mixture files and over dynamic mixing, the collate function and a loader.

Every item is ``(mixture (T,), sources (C, T))`` float32; :func:`collate` stacks a batch into
``(B, T)`` and ``(B, C, T)``. Randomness (crops, dynamic mixtures) comes from
``numpy.random.default_rng([seed, epoch, index])``: an item depends only on the seed, the epoch
and its index, never on which worker draws it or how many workers there are, so runs repeat.
Datasets whose items change with the epoch have ``set_epoch(epoch)``; the trainer calls it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from speechsep.audio import read_audio, resample
from speechsep.data.corpus import (
    condition_mixing,
    load_config,
    load_noise_bank,
    load_utterances,
    tuples_from_json,
)
from speechsep.data.mixing import MixingConfig, synthesize
from speechsep.data.pitch import corpus_speaker_pitch
from speechsep.data.readers.folder import MixtureItem
from speechsep.data.rooms import RoomBank

__all__ = ["MixtureFiles", "DynamicMixing", "collate", "make_loader"]

log = logging.getLogger(__name__)


class _ResampleLog:
    """Log each rate conversion once per dataset, not once per file."""

    def __init__(self, what: str):
        self.what, self.seen = what, set()

    def __call__(self, wav: np.ndarray, src: int, dst: int, example: str) -> np.ndarray:
        if src == dst:
            return wav
        if (src, dst) not in self.seen:
            self.seen.add((src, dst))
            log.info("%s: resampling %d Hz -> %d Hz (first file: %s)", self.what, src, dst, example)
        return resample(wav, src, dst)


def _crop_or_pad(arrays: list[np.ndarray], segment: int | None, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Cut a window of ``segment`` samples (random when ``rng`` is given, else the start), or pad."""
    if segment is None:
        return arrays
    n = arrays[0].shape[-1]
    if n >= segment:
        start = int(rng.integers(0, n - segment + 1)) if rng is not None else 0
        return [a[..., start : start + segment] for a in arrays]
    return [np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, segment - n)]) for a in arrays]


class MixtureFiles(Dataset):
    """Mixtures and their sources stored as files (the benchmark readers' items)."""

    def __init__(self, items: list[MixtureItem], *, sample_rate: int, segment_seconds: float | None = None,
                 train: bool = False, seed: int = 0, name: str = "dataset"):
        if not items:
            raise ValueError(f"{name}: no mixtures")
        self.items, self.sample_rate, self.train, self.seed = list(items), int(sample_rate), train, seed
        self.segment = None if segment_seconds is None else int(round(segment_seconds * sample_rate))
        self.epoch = 0
        self._resample = _ResampleLog(name)

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)  # changes the random crops of a training set

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        item = self.items[index]
        mix, sr = read_audio(item.mixture)
        sources = []
        for p in item.sources:
            s, s_sr = read_audio(p, allow_silence=True)
            if s_sr != sr or s.shape[-1] != mix.shape[-1]:
                raise ValueError(
                    f"mixture and source differ: {item.mixture} has {mix.shape[-1]} samples at {sr} Hz, "
                    f"{p} has {s.shape[-1]} samples at {s_sr} Hz"
                )
            sources.append(s)
        stacked = np.stack(sources)  # (C, T)
        if sr != self.sample_rate:
            mix = self._resample(mix, sr, self.sample_rate, str(item.mixture))
            stacked = self._resample(stacked, sr, self.sample_rate, str(item.mixture))
        return mix, stacked

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        mix, sources = self.read(index)
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        mix, sources = _crop_or_pad([mix, sources], self.segment, rng)
        return torch.from_numpy(np.ascontiguousarray(mix)), torch.from_numpy(np.ascontiguousarray(sources))


class DynamicMixing(Dataset):
    """New training mixtures every epoch from a built corpus's train utterances, noise and room bank.

    Rendering is the fixed sets' code (:func:`speechsep.data.mixing.synthesize`); only the room
    comes from the precomputed bank, so a mixture costs two FFT convolutions per source.
    """

    def __init__(self, root: str | os.PathLike, *, sample_rate: int, segment_seconds: float | None = None,
                 seed: int = 0, target: str = "reverb", epoch_size: int | None = None, condition: str | None = None,
                 mixing: dict | None = None, clean_first_epochs: int = 0):
        """``condition`` draws every mixture from one of the corpus's named conditions instead of its
        own mix; ``mixing`` then overrides single fields (``speed_range``, ``noise_weights``, ...),
        the recipe's way to switch augmentation on or off. ``clean_first_epochs``: epochs
        ``0 .. clean_first_epochs - 1`` draw every mixture noise-free, later ones that mix (a
        clean-to-noisy curriculum)."""
        if target not in ("reverb", "direct"):
            raise ValueError(f"unknown target {target!r}: use reverb or direct")
        root = Path(root)
        self.cfg = load_config(root)
        self.corpus_rate = self.cfg.sample_rate
        self.sample_rate, self.seed, self.target, self.epoch = int(sample_rate), seed, target, 0
        self.mixing = dataclasses.replace(condition_mixing(self.cfg, condition), **self.cfg.train_mixing)
        if mixing:
            known = {f.name for f in dataclasses.fields(MixingConfig)}
            if unknown := sorted(set(mixing) - known):
                raise ValueError(f"unknown mixing field(s) {unknown}; known: {', '.join(sorted(known))}")
            self.mixing = dataclasses.replace(self.mixing, **tuples_from_json(mixing))
        if segment_seconds is not None:
            self.mixing = dataclasses.replace(self.mixing, segment_seconds=float(segment_seconds))
        if isinstance(clean_first_epochs, bool) or not isinstance(clean_first_epochs, int) or clean_first_epochs < 0:
            raise ValueError(f"clean_first_epochs must be an integer >= 0; got {clean_first_epochs!r}")
        self.clean_first_epochs = clean_first_epochs
        # the same mix with the noise condition forced to "none"
        self.clean_mixing = dataclasses.replace(self.mixing, noise_weights={"none": 1.0})
        self.utterances = load_utterances(root, self.corpus_rate)
        self.groups = self.utterances.speaker_groups()
        self.pitch = corpus_speaker_pitch(root, self.utterances) if self.mixing.uses_pitch else None
        self.pools = self.utterances.speaker_pools("train")
        self.noise = load_noise_bank(root).clips("train")
        if not self.noise:
            raise ValueError(f"{root}: no training noise clips")
        self.rooms = RoomBank.load(root / "train" / "rooms.npz")
        hours_items = int(self.cfg.train_hours * 3600 / self.mixing.segment_seconds)
        self.epoch_size = int(epoch_size) if epoch_size is not None else max(1, hours_items)
        self._resample = _ResampleLog(f"dynamic mixing from {root}")

    def __len__(self) -> int:
        return self.epoch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _responses(self, rng: np.random.Generator):
        k = int(rng.integers(len(self.rooms)))
        reverb, direct = self.rooms.responses(k)
        return k, reverb, direct

    def mixing_at(self, epoch: int) -> MixingConfig:
        """The mixing config of ``epoch``: noise-free during the clean-first epochs."""
        return self.clean_mixing if epoch < self.clean_first_epochs else self.mixing

    def render(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return synthesize(rng, self.pools, self.utterances.lengths, self.utterances.load, self.noise,
                          self._responses, self.mixing_at(self.epoch), self.corpus_rate, speaker_groups=self.groups,
                          speaker_pitch=self.pitch,
                          bandwidths=self.utterances.bandwidths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.epoch_size:
            raise IndexError(f"index {index} out of range for an epoch of {self.epoch_size}")
        _, out = self.render(index)
        mix, sources = out.mixture, out.reverb if self.target == "reverb" else out.direct
        if self.sample_rate != self.corpus_rate:
            mix = self._resample(mix, self.corpus_rate, self.sample_rate, "mixtures")
            sources = self._resample(sources, self.corpus_rate, self.sample_rate, "sources")
        return torch.from_numpy(np.ascontiguousarray(mix)), torch.from_numpy(np.ascontiguousarray(sources))


def collate(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(mix (T,), sources (C, T)), ...]`` -> ``(mix (B, T), sources (B, C, T))``.

    Items of different lengths (whole test utterances) are right-padded with zeros to the longest;
    use batch size 1 for evaluation where padding would change a metric.
    """
    if not batch:
        raise ValueError("collate received an empty batch")
    for mix, src in batch:
        if mix.dim() != 1 or src.dim() != 2 or src.shape[-1] != mix.shape[-1]:
            raise ValueError(f"items must be (T,) and (C, T); got {tuple(mix.shape)} and {tuple(src.shape)}")
    length = max(m.shape[-1] for m, _ in batch)
    mixes = torch.zeros(len(batch), length)
    sources = torch.zeros(len(batch), batch[0][1].shape[0], length)
    for b, (m, s) in enumerate(batch):
        if s.shape[0] != sources.shape[1]:
            raise ValueError(f"items have {s.shape[0]} and {sources.shape[1]} sources; cannot batch them")
        mixes[b, : m.shape[-1]] = m
        sources[b, :, : s.shape[-1]] = s
    return mixes, sources


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # data workers convolve with scipy; torch threads would only compete


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False, num_workers: int = 2,
                seed: int = 0, epoch: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader with :func:`collate`, seeded shuffling and prefetching workers.

    Call ``dataset.set_epoch(epoch)`` (if it has one) and build the loader per epoch, or pass
    ``epoch`` here: workers are not persistent, so each epoch's workers see the current epoch.
    """
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, collate_fn=collate,
        generator=generator, drop_last=drop_last, worker_init_fn=_worker_init if num_workers else None,
        prefetch_factor=4 if num_workers else None, persistent_workers=False,
    )
