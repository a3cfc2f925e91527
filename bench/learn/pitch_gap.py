"""SI-SNRi by how far apart the two voices of a mixture are in pitch: the scores of ``speechsep eval
--out`` CSVs on a demo corpus's fixed sets, binned by the semitones between the two speakers' median
pitches (``speechsep.data.pitch``). A separator that leans on pitch scores far lower on voices of
similar pitch; this shows by how much.

    python -m bench pitch-gap --corpus ROOT EVAL.csv [EVAL2.csv ...]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
import statistics
from pathlib import Path

from bench.learn.paired import read_scores

#: bin edges in semitones: under 2 (one voice to many ears), 2-4, 4-7, 7-12, an octave and more
EDGES = (0.0, 2.0, 4.0, 7.0, 12.0, math.inf)


def bin_label(lo: float, hi: float) -> str:
    return f">= {lo:g}" if math.isinf(hi) else f"{lo:g}-{hi:g}"


def mixture_speakers(root: Path) -> dict[str, tuple[str, str]]:
    """Mixture id -> its two speakers, from the corpus's ``manifest.csv``."""
    path = Path(root) / "manifest.csv"
    if not path.is_file():
        raise ValueError(f"{root}: no manifest.csv (not a built demo corpus)")
    with open(path, newline="") as f:
        return {row["id"]: (row["s1_speaker"], row["s2_speaker"]) for row in csv.DictReader(f)}


def by_pitch_gap(scores: dict[str, float], speakers: dict[str, tuple[str, str]],
                 pitch: dict[str, float]) -> list[dict]:
    """Per bin of :data:`EDGES`: the count and mean SI-SNRi of the scored mixtures whose two speakers'
    pitches are both known; mixtures the manifest lacks raise (the CSV is from another corpus)."""
    from speechsep.data.pitch import semitones_apart

    if missing := sorted(set(scores) - set(speakers))[:3]:
        raise ValueError(f"mixtures {missing} are not in the corpus's manifest: the CSV is from another corpus")
    bins: list[list[float]] = [[] for _ in EDGES[:-1]]
    for key, value in scores.items():
        gap = semitones_apart(*(pitch.get(s, math.nan) for s in speakers[key]))
        if not math.isnan(gap):  # a speaker of unknown pitch: the mixture is left out
            bins[bisect.bisect_right(EDGES, gap) - 1].append(value)  # the bin with lo <= gap < hi
    return [{"bin": bin_label(lo, hi), "n": len(v), "mean": statistics.fmean(v) if v else math.nan}
            for lo, hi, v in zip(EDGES[:-1], EDGES[1:], bins, strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True, help="the demo corpus the CSVs were scored on")
    p.add_argument("csvs", type=Path, nargs="+", help="speechsep eval --out CSVs")
    a = p.parse_args()
    from speechsep.data.corpus import load_config, load_utterances
    from speechsep.data.pitch import corpus_speaker_pitch

    try:
        speakers = mixture_speakers(a.corpus)
        pitch = corpus_speaker_pitch(a.corpus, load_utterances(a.corpus, load_config(a.corpus).sample_rate))
        rows = {path: by_pitch_gap(read_scores(path), speakers, pitch) for path in a.csvs}
    except ValueError as err:
        p.exit(2, f"python -m bench pitch-gap: {err}\n")
    labels = [b["bin"] for b in next(iter(rows.values()))]
    print("| eval CSV | " + " | ".join(f"{s} semitones: n, dB" for s in labels) + " |")
    print("|---|" + "---|" * len(labels))
    for path, bins in rows.items():
        print(f"| {path.name} | " + " | ".join(f"{b['n']}, {b['mean']:.2f}" for b in bins) + " |")


if __name__ == "__main__":
    main()
