"""WHAM! (Wichern et al. 2019): ``ROOT/wav8k|wav16k/min|max/tr|cv|tt/{mix_clean,mix_both,
mix_single,s1,s2,noise}/NAME.wav``. Targets are ``s1``, ``s2``; the noisy mixture is ``mix_both``."""

from __future__ import annotations

import os
from pathlib import Path

from speechsep.data.readers.folder import MixtureItem, folder_items, require

__all__ = ["wham_items", "subset_dir", "SUBSETS"]

SUBSETS = ("tr", "cv", "tt")
LAYOUT = "ROOT/wav8k|wav16k/min|max/tr|cv|tt/{mix_clean,mix_both,mix_single,s1,s2,noise}/NAME.wav"


def subset_dir(root: str | os.PathLike, subset: str, mode: str, sample_rate: int, layout: str) -> Path:
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}: use one of {', '.join(SUBSETS)}")
    if mode not in ("min", "max"):
        raise ValueError(f"unknown mode {mode!r}: use min or max")
    if sample_rate not in (8000, 16000):
        raise ValueError(f"WHAM!-style data exists at 8000 or 16000 Hz, not {sample_rate}")
    root = Path(root)
    d = root
    for part in (f"wav{sample_rate // 1000}k", mode, subset):
        d = require(d / part, layout)
    return d


def wham_items(
    root: str | os.PathLike, subset: str = "tt", *, mode: str = "min", sample_rate: int = 8000, noisy: bool = True
) -> list[MixtureItem]:
    d = subset_dir(root, subset, mode, sample_rate, LAYOUT)
    mixture = d / ("mix_both" if noisy else "mix_clean")
    return folder_items(mixture, [d / "s1", d / "s2"], layout=LAYOUT)
