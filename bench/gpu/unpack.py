"""Unpack what ``bench/gpu/pack.py`` packed into a corpus the trainer reads (train split only).

    python -m bench gpu-unpack .gpu/corpus /tmp/corpus
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from speechsep.data.corpus import write_noise
from speechsep.data.noise import NoiseClip
from speechsep.data.pitch import write_pitch_cache
from speechsep.data.rooms import RoomBank
from speechsep.data.utterances import Utterances, write_int16_array


def unpack(packed: Path, root: Path, log=print) -> Path:
    cfg = json.loads((packed / "corpus.json").read_text())
    sr = int(cfg["sample_rate"])
    audio, rate = sf.read(packed / "speech" / "speech.ogg", dtype="float32")
    if rate != sr:
        raise ValueError(f"{packed}/speech/speech.ogg is at {rate} Hz, the corpus at {sr} Hz")
    table = Utterances.load_table(packed / "speech" / "utterances.csv", sr)
    if int(table.lengths.sum()) != audio.size:
        raise ValueError(f"{packed}: the lines add up to {int(table.lengths.sum())} samples, speech.ogg holds {audio.size}")
    write_int16_array(root / "speech" / "utterances.npy",
                      [audio[o:o + n] for o, n in zip(table.offsets, table.lengths, strict=True)])
    shutil.copyfile(packed / "speech" / "utterances.csv", root / "speech" / "utterances.csv")
    pitch = json.loads((packed / "pack.json").read_text())["pitch_hz"]
    write_pitch_cache(root, table,
                      {s: (float("nan") if v is None else float(v)) for s, v in pitch.items()})
    noise, rate = sf.read(packed / "noise.ogg", dtype="float32")
    listed = json.loads((packed / "noise.json").read_text())
    starts = np.concatenate([[0], np.cumsum(listed["lengths"])[:-1]]).astype(int)
    clips = [NoiseClip(name, noise[o:o + n]) for name, o, n in zip(listed["names"], starts, listed["lengths"], strict=True)]
    write_noise(root, clips, ["train"] * len(clips))
    with np.load(packed / "rooms.npz") as z:
        RoomBank(int(z["sample_rate"]), z["reverb"].astype(np.float32), z["reverb_length"],
                 z["direct"].astype(np.float32), z["dims"], z["rt60"]).save(root / "train" / "rooms.npz")
    shutil.copyfile(packed / "corpus.json", root / "corpus.json")
    log(f"unpacked {len(table)} lines ({audio.size / sr / 3600:.2f} h), {len(clips)} noise clips into {root}")
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("packed", type=Path)
    p.add_argument("root", type=Path)
    a = p.parse_args()
    unpack(a.packed, a.root)


if __name__ == "__main__":
    main()
