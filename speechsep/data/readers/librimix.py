"""LibriMix (Cosentino et al. 2020): ``ROOT/Libri2Mix|Libri3Mix/wav8k|wav16k/min|max/`` with
``metadata/mixture_{split}_{mix_clean|mix_both}.csv`` (columns ``mixture_ID, mixture_path,
source_1_path, ..., noise_path, length``) and the audio under ``{split}/{mix_clean,mix_both,s1,...}``.

The paths in the CSVs are absolute paths of the machine that generated the data; when one does not
exist here it is re-rooted: the part after ``LibriNMix/`` is joined to the local ``ROOT``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from speechsep.data.readers.folder import MixtureItem, require

__all__ = ["librimix_items", "SPLITS"]

SPLITS = ("train-360", "train-100", "dev", "test")
LAYOUT = "ROOT/Libri2Mix|Libri3Mix/wav8k|wav16k/min|max/{metadata/mixture_SPLIT_mix_both.csv, SPLIT/...}"


def _reroot(path: str, dataset_root: Path, name: str) -> Path:
    p = Path(path)
    if p.exists():
        return p
    parts = p.as_posix().split(f"/{name}/", 1)
    return dataset_root / parts[1] if len(parts) == 2 else dataset_root / p


def librimix_items(
    root: str | os.PathLike, split: str = "test", *, num_speakers: int = 2, mode: str = "min",
    sample_rate: int = 8000, noisy: bool = True,
) -> list[MixtureItem]:
    if split == "train":
        split = "train-360"
    if split not in SPLITS:
        raise ValueError(f"unknown LibriMix split {split!r}: use one of {', '.join(SPLITS)}")
    if num_speakers not in (2, 3):
        raise ValueError(f"LibriMix has 2 or 3 speakers, not {num_speakers}")
    name = f"Libri{num_speakers}Mix"
    root = Path(root)
    dataset_root = root if root.name == name else require(root / name, LAYOUT)
    d = dataset_root
    for part in (f"wav{sample_rate // 1000}k", mode):
        d = require(d / part, LAYOUT)
    kind = "mix_both" if noisy else "mix_clean"
    table = require(d / "metadata" / f"mixture_{split}_{kind}.csv", LAYOUT)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{table} has no rows")
    expected = ["mixture_ID", "mixture_path"] + [f"source_{k + 1}_path" for k in range(num_speakers)]
    missing = [c for c in expected if c not in rows[0]]
    if missing:
        raise ValueError(f"{table} lacks the column(s) {', '.join(missing)}")
    items = []
    for r in rows:
        paths = [_reroot(r[c], dataset_root, name) for c in expected[1:]]
        for p in paths:
            require(p, f"{LAYOUT}; listed in {table}")
        items.append(MixtureItem(r["mixture_ID"], paths[0], tuple(paths[1:])))
    return items
