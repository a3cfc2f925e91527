"""Deterministic, resumable data order for training.

Everything random about the data is a function of (seed, epoch, index), never of a global RNG that
drifts: the epoch's order comes from a generator seeded with (seed, epoch), and each example's crop
offset from (seed, epoch, index). So a run resumed mid-epoch sees exactly the batches the
uninterrupted run would have, whatever the number of loader workers, and ``N`` processes each take
every N-th example of the same order (what ``DistributedSampler`` does), so their union is the
single-process batch.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EpochSampler", "CroppedExamples", "open_examples", "make_loader", "check_example"]


def _mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence hashes them well)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


class EpochSampler(Sampler):
    """Yields ``(index, epoch)`` keys: this rank's share of the (seed, epoch) permutation.

    ``start`` skips that many of this rank's examples (a resumed epoch). With ``even`` each rank
    gets ``len(dataset) // world`` examples, so all ranks run the same number of steps; without it
    (validation) every example is used once.
    """

    def __init__(
        self, num_examples: int, *, seed: int, epoch: int, shuffle: bool = True, rank: int = 0, world: int = 1,
        start: int = 0, even: bool = True,
    ):
        if num_examples < world:
            raise ValueError(f"{num_examples} examples cannot be shared by {world} processes")
        self.num_examples, self.seed, self.epoch = num_examples, seed, epoch
        self.shuffle, self.rank, self.world, self.start, self.even = shuffle, rank, world, start, even

    def order(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch))
            order = torch.randperm(self.num_examples, generator=gen).tolist()
        else:
            order = list(range(self.num_examples))
        stop = (self.num_examples // self.world) * self.world if self.even else self.num_examples
        return order[self.rank : stop : self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.order()[self.start :]:
            yield index, self.epoch

    def __len__(self) -> int:
        return max(len(range(self.rank, (self.num_examples // self.world) * self.world if self.even
                             else self.num_examples, self.world)) - self.start, 0)


def check_example(example: Any, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset item must be ``(mixture (T,), sources (C, T))``; returns float32 tensors."""
    if not isinstance(example, (tuple, list)) or len(example) < 2:
        raise ValueError(f"{where}: a dataset item must be (mixture (T,), sources (C, T)); got {type(example).__name__}")
    mix, src = (torch.as_tensor(x, dtype=torch.float32) for x in example[:2])
    if mix.dim() != 1 or src.dim() != 2 or src.shape[1] != mix.shape[0]:
        raise ValueError(
            f"{where}: a dataset item must be (mixture (T,), sources (C, T)); got {tuple(mix.shape)} and {tuple(src.shape)}"
        )
    return mix, src


class CroppedExamples(Dataset):
    """Items ``(index, epoch) -> (mixture (L,), sources (C, L))``: a crop of ``length`` samples.

    The offset is drawn from (seed, epoch, index); shorter examples are zero-padded at the end.
    ``length=None`` returns whole examples; ``epoch=None`` keys (plain ints) use epoch 0.
    """

    def __init__(self, base: Dataset, length: int | None, seed: int):
        self.base, self.length, self.seed = base, length, seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        if hasattr(self.base, "set_epoch"):
            # Datasets that draw new material each epoch (dynamic mixing) do so from (seed, epoch,
            # index) too; set here, in whichever process loads the item.
            self.base.set_epoch(epoch)
        mix, src = check_example(self.base[index], f"example {index}")
        if self.length is None:
            return mix, src
        total = mix.shape[0]
        if total <= self.length:
            pad = self.length - total
            return torch.nn.functional.pad(mix, (0, pad)), torch.nn.functional.pad(src, (0, pad))
        rng = np.random.default_rng([self.seed, epoch, index])
        offset = int(rng.integers(0, total - self.length + 1))
        return mix[offset : offset + self.length], src[:, offset : offset + self.length]


def open_examples(spec: str | Dataset, *, sample_rate: int, train: bool, seed: int,
                  mixing: dict | None = None, clean_first_epochs: int = 0) -> Dataset:
    """A Dataset object as is, or a spec string through :func:`speechsep.data.open_dataset`
    (``mixing``, ``clean_first_epochs``: dynamic mixing's options, see ``DataConfig``)."""
    if not isinstance(spec, str):
        if clean_first_epochs:
            raise ValueError("data.clean_first_epochs applies to a dynamic-mixing dataset spec (a demo corpus's "
                             f"train split), not to a {type(spec).__name__} object: give that its own option")
        return spec
    if not spec:
        raise ValueError("no dataset given: set data.train and data.valid in the recipe (or pass Dataset objects)")
    try:
        from speechsep.data import open_dataset
    except ImportError as err:
        raise ValueError(f"cannot open {spec!r}: speechsep.data.open_dataset is not available ({err})") from err
    # Whole utterances: the crops are ours, so they follow (seed, epoch, index) as above.
    return open_dataset(os.path.expandvars(spec), sample_rate=sample_rate, segment_seconds=None, train=train, seed=seed,
                        mixing=mixing or None, clean_first_epochs=clean_first_epochs)


def _leave_sigterm_to_the_main_process(worker_id: int) -> None:  # noqa: ARG001
    """Loader workers ignore SIGTERM. A scheduler, torchrun or ``pkill`` signals every process of the
    job; a worker that died of it first made the main process raise "DataLoader worker killed" in
    place of its interrupt, skipping the save of ``last.pt`` (seen 2026-11-29). The main process
    saves, then shuts its workers down itself (and a worker whose parent is gone exits on its own)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    dataset: CroppedExamples, sampler: EpochSampler, batch_size: int, num_workers: int, drop_last: bool = True
) -> DataLoader:
    # A private generator: a DataLoader otherwise draws its worker base seed from the global torch
    # RNG each epoch, which would make the model's RNG stream depend on how the run was split.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(sampler.seed),
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_leave_sigterm_to_the_main_process if num_workers else None,
    )
