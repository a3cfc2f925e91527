"""Fixtures for the data tests: tiny fake benchmark trees."""

from __future__ import annotations

import pytest
from data_fakes import tone, write_wav


@pytest.fixture
def wham_tree(tmp_path):
    """ROOT/wav8k/min/tt/{mix_both,mix_clean,mix_single,s1,s2,noise}/NAME.wav, 3 mixtures of 800 samples."""
    root = tmp_path / "wham"
    d = root / "wav8k" / "min" / "tt"
    for i in range(3):
        s1, s2, noise = tone(200 + i, 800, seed=i), tone(300 + i, 800, seed=10 + i), tone(50, 800, seed=20 + i)
        name = f"mix{i}.wav"
        write_wav(d / "s1" / name, s1)
        write_wav(d / "s2" / name, s2)
        write_wav(d / "noise" / name, noise)
        write_wav(d / "mix_clean" / name, s1 + s2)
        write_wav(d / "mix_single" / name, s1 + noise)
        write_wav(d / "mix_both" / name, s1 + s2 + noise)
    return root


@pytest.fixture
def whamr_tree(tmp_path):
    root = tmp_path / "whamr"
    d = root / "wav16k" / "max" / "cv"
    for i in range(2):
        name = f"m{i}.wav"
        for folder, f in [("s1_anechoic", 100), ("s2_anechoic", 150), ("s1_reverb", 110), ("s2_reverb", 160),
                          ("mix_both_reverb", 500), ("mix_clean_reverb", 600), ("noise", 700)]:
            write_wav(d / folder / name, tone(f, 1600, 16000, seed=i), 16000)
    return root


@pytest.fixture
def librimix_tree(tmp_path):
    """Libri2Mix/wav8k/min with a metadata CSV whose paths point at another machine's disk."""
    root = tmp_path / "librimix"
    base = root / "Libri2Mix" / "wav8k" / "min"
    rows = []
    for i in range(2):
        mid = f"61-70968-000{i}_8455-210777-001{i}"
        paths = {}
        for folder in ("mix_both", "s1", "s2", "noise"):
            write_wav(base / "test" / folder / f"{mid}.wav", tone(100 * (i + 1), 400, seed=i))
            paths[folder] = f"/home/someone/data/Libri2Mix/wav8k/min/test/{folder}/{mid}.wav"
        rows.append(f"{mid},{paths['mix_both']},{paths['s1']},{paths['s2']},{paths['noise']},400")
    meta = base / "metadata"
    meta.mkdir(parents=True)
    (meta / "mixture_test_mix_both.csv").write_text(
        "mixture_ID,mixture_path,source_1_path,source_2_path,noise_path,length\n" + "\n".join(rows) + "\n"
    )
    return root
