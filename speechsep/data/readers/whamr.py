"""WHAMR! (Maciejewski et al. 2020): WHAM! with reverberation. ``ROOT/wav8k|wav16k/min|max/
tr|cv|tt/`` holds ``mix_{clean,both,single}_{reverb,anechoic}`` and ``s1|s2_{reverb,anechoic}``.

The mixture is always the reverberant one; the target is selectable: ``reverb`` (the reverberant
sources, the TFACM paper's WHAMR! target) or ``anechoic`` (separation plus dereverberation)."""

from __future__ import annotations

import os

from speechsep.data.readers.folder import MixtureItem, folder_items
from speechsep.data.readers.wham import subset_dir

__all__ = ["whamr_items"]

LAYOUT = ("ROOT/wav8k|wav16k/min|max/tr|cv|tt/{mix_both_reverb,mix_clean_reverb,s1_reverb,s2_reverb,"
          "s1_anechoic,s2_anechoic,...}/NAME.wav")


def whamr_items(
    root: str | os.PathLike, subset: str = "tt", *, mode: str = "min", sample_rate: int = 8000,
    noisy: bool = True, target: str = "reverb",
) -> list[MixtureItem]:
    if target not in ("reverb", "anechoic"):
        raise ValueError(f"unknown WHAMR! target {target!r}: use reverb or anechoic")
    d = subset_dir(root, subset, mode, sample_rate, LAYOUT)
    mixture = d / ("mix_both_reverb" if noisy else "mix_clean_reverb")
    return folder_items(mixture, [d / f"s1_{target}", d / f"s2_{target}"], layout=LAYOUT)
