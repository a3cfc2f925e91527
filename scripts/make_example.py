"""Cut the bundled example (speechsep/examples/) from a built demo corpus's test split.

    python scripts/make_example.py /work/corpus/demo8k [--id test_000123]

Picks, among the first 100 test mixtures, the one whose two speakers overlap the most (frames where
both are within 20 dB of their peak level), unless ``--id`` names one, and writes the mixture and its
two reverberant references as 16-bit wavs plus ``example.json`` (the manifest row: speakers,
utterances, room, RT60, SNR), so the example is traceable to its inputs. Test speakers never appear
in training, so the bundled models have not heard these voices.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import soundfile as sf

OUT = Path(__file__).resolve().parent.parent / "speechsep" / "examples"


def active(wav: np.ndarray, frame: int = 256) -> np.ndarray:
    frames = wav[: len(wav) // frame * frame].reshape(-1, frame)
    level = 10 * np.log10((frames**2).mean(1) + 1e-12)
    return level > level.max() - 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--id")
    args = parser.parse_args()
    rows = {r["id"]: r for r in csv.DictReader((args.root / "manifest.csv").open()) if r["split"] == "test"}
    test = args.root / "test"
    if args.id is None:
        def overlap(i: str) -> float:
            a, b = (active(sf.read(test / s / f"{i}.wav")[0]) for s in ("s1", "s2"))
            return float((a & b).mean())
        args.id = max(sorted(rows)[:100], key=overlap)
    OUT.mkdir(parents=True, exist_ok=True)
    for folder, name in (("mix", "mixture"), ("s1", "s1"), ("s2", "s2")):
        wav, sr = sf.read(test / folder / f"{args.id}.wav", dtype="float32")
        sf.write(OUT / f"{name}.wav", wav, sr, subtype="PCM_16")
    (OUT / "example.json").write_text(json.dumps({"source": f"demo corpus test split, {args.id}",
                                                   "manifest": rows[args.id]}, indent=2) + "\n")
    print(f"wrote {args.id} to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
