"""Pack a demo corpus's training half to travel to a GPU machine beside the checkout (64 MiB in all).

    python -m bench gpu-pack CORPUS --out .gpu/corpus --cap-minutes 10 --rooms 400

What travels, and how it shrinks (measured on the 9.35 h training split: 758 MB of int16 speech,
33 MB of rooms):
- speech: each training speaker's lines up to ``--cap-minutes`` (a seeded choice of whole lines, so
  every voice travels and the largest ones are cut), concatenated and coded as Ogg Vorbis (libsndfile's
  highest compression, about 14.5 kbit/s at 8 kHz; waveform SNR about 15 dB). The decoded audio is
  both the mixtures' and the targets' source, so the coding is no error in the targets, only a
  slightly different recording chain, and the CPU fine-tuning that follows uses the original audio;
- noise: the training clips, Vorbis likewise;
- rooms: the first ``--rooms`` rooms of the training bank in float16 (restored to float32);
- the corpus's config and each speaker's measured pitch (pitch-aware pairing needs no librosa there).

Held-out splits do not travel: the GPU run validates on dynamically mixed training speakers, and
the checkpoint it brings back is scored here on the real validation and test sets.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from speechsep.data.corpus import load_config, load_noise_bank, load_utterances
from speechsep.data.pitch import corpus_speaker_pitch
from speechsep.data.utterances import Utterances
from speechsep.utils import atomic_path

CODEC = {"format": "OGG", "subtype": "VORBIS", "compression_level": 1.0}


def write_vorbis(path: Path, samples: np.ndarray, sample_rate: int, block: int = 2**20) -> None:
    # in blocks: libsndfile's Vorbis encoder crashed (segmentation fault) on one 140 M-sample write
    with atomic_path(path) as tmp, sf.SoundFile(tmp, "w", sample_rate, 1, **CODEC) as f:
        for start in range(0, samples.size, block):
            f.write(samples[start:start + block])


def pack(root: Path, out: Path, cap_seconds: float, rooms: int, seed: int = 0, log=print) -> dict:
    cfg = load_config(root)
    sr = cfg.sample_rate
    utts = load_utterances(root, sr)
    pitch = corpus_speaker_pitch(root, utts)  # measured on every line there is, not on the packed subset
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for _speaker, pool in sorted(utts.speaker_pools("train").items()):
        kept = 0.0
        for i in rng.permutation(pool):
            if kept >= cap_seconds:
                break
            chosen.append(int(i))
            kept += utts.lengths[i] / sr
    chosen.sort()
    out.mkdir(parents=True, exist_ok=True)
    (out / "speech").mkdir(exist_ok=True)
    audio = np.concatenate([utts.load(i) for i in chosen]).astype(np.float32)
    write_vorbis(out / "speech" / "speech.ogg", audio, sr)
    lengths = utts.lengths[chosen]
    subset = Utterances(
        ids=[utts.ids[i] for i in chosen], speakers=[utts.speakers[i] for i in chosen], splits=["train"] * len(chosen),
        lengths=lengths, sample_rate=sr, offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
        **{name: (None if getattr(utts, name) is None else [getattr(utts, name)[i] for i in chosen])
           for name in ("sources", "languages", "groups")},
        bandwidths=None if utts.bandwidths is None else utts.bandwidths[chosen])
    subset.save_table(out / "speech" / "utterances.csv")  # offsets into the decoded speech.ogg
    noise = load_noise_bank(root)
    train_clips = noise.clips("train")
    train_names = [n for n, split in zip(noise.names, noise.splits, strict=True) if split == "train"]
    write_vorbis(out / "noise.ogg", np.concatenate(train_clips).astype(np.float32), sr)
    with atomic_path(out / "noise.json") as tmp:
        tmp.write_text(json.dumps({"names": train_names, "lengths": [int(c.size) for c in train_clips]}))
    with np.load(root / "train" / "rooms.npz") as z, atomic_path(out / "rooms.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, sample_rate=z["sample_rate"], reverb=z["reverb"][:rooms].astype(np.float16),
                            reverb_length=z["reverb_length"][:rooms], direct=z["direct"][:rooms].astype(np.float16),
                            dims=z["dims"][:rooms], rt60=z["rt60"][:rooms])
    shutil.copyfile(root / "corpus.json", out / "corpus.json")
    summary = {"lines": len(chosen), "speakers": len({utts.speakers[i] for i in chosen}),
               "hours": round(audio.size / sr / 3600, 3), "noise_clips": len(train_clips), "rooms": rooms,
               "pitch_hz": {s: (None if v != v else round(v, 2)) for s, v in pitch.items()},
               "megabytes": round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6, 1)}
    with atomic_path(out / "pack.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    log(f"packed {summary['lines']} lines of {summary['speakers']} speakers ({summary['hours']} h), "
        f"{summary['noise_clips']} noise clips, {rooms} rooms: {summary['megabytes']} MB in {out}")
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("corpus", type=Path, help="a built demo corpus")
    p.add_argument("--out", type=Path, default=Path(".gpu/corpus"))
    p.add_argument("--cap-minutes", type=float, default=10.0, help="speech kept per training speaker")
    p.add_argument("--rooms", type=int, default=400, help="rooms of the training bank kept")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    pack(a.corpus, a.out, a.cap_minutes * 60.0, a.rooms, a.seed)


if __name__ == "__main__":
    main()
