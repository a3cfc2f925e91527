"""The iterative paper's dataset recipe (Sec. 3.1, after Luo et al. ICASSP 2020) from local folders.

20,000 / 5,000 / 3,000 two-speaker mixtures of 4 s at 16 kHz for train / valid / test, rooms from
the paper's distribution, the first (only) microphone, reverberant targets. The generator is the
demo corpus's; only the sources differ: speech from a LibriSpeech-style folder
(``SPEAKER/CHAPTER/UTTERANCE.flac``, the paper used train-clean-100) and noise from any folder of
clips (the paper used the 100 Nonspeech Sounds corpus). The paper does not give speaker levels or
the noise SNR; we keep the WHAMR! conventions of :mod:`speechsep.data.mixing`.

Splits: a folder holding ``train*``, ``dev*`` and ``test*`` subfolders (LibriSpeech's own split
names) uses them; otherwise speakers are split 80/10/10 (seeded), disjoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from speechsep.data.corpus import CorpusConfig, build_corpus
from speechsep.data.noise import noise_stage
from speechsep.data.utterances import Utterances

__all__ = ["ITERATIVE_COUNTS", "iterative_config", "scan_speech_folder", "build_iterative"]

ITERATIVE_COUNTS = (20000, 5000, 3000)
_SPEECH_SUFFIXES = (".flac", ".wav")


def iterative_config(counts=ITERATIVE_COUNTS, *, sample_rate: int = 16000, seed: int = 0) -> CorpusConfig:
    cfg = CorpusConfig(sample_rate=sample_rate, seed=seed, room_bank_size=0, write_direct=False, subtype="PCM_16",
                       source="iterative recipe (LibriSpeech-style speech folder + noise folder)")
    cfg.counts = dict(zip(("train", "valid", "test"), (int(c) for c in counts), strict=True))
    return cfg


def _split_folders(folder: Path) -> dict[str, Path] | None:
    subs = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    found = {}
    for split, prefix in (("train", "train"), ("valid", "dev"), ("test", "test")):
        match = sorted(name for name in subs if name.startswith(prefix))
        if match:
            found[split] = subs[match[0]]
    return found if len(found) == 3 else None


def scan_speech_folder(folder: str | os.PathLike, sample_rate: int, seed: int = 0,
                       fractions=(0.8, 0.1, 0.1)) -> tuple[Utterances, dict]:
    """Utterance table of a LibriSpeech-style folder (the speaker is the first folder level).

    Files whose header cannot be read, or that are empty, are skipped and listed in the report.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"speech folder {folder} does not exist")
    split_dirs = _split_folders(folder)
    groups = split_dirs.items() if split_dirs else [("", folder)]
    rows, skipped = [], []
    for split, base in groups:
        for p in sorted(base.rglob("*")):
            if p.suffix.lower() not in _SPEECH_SUFFIXES or not p.is_file():
                continue
            rel = p.relative_to(base)
            if len(rel.parts) < 2:
                skipped.append({"file": str(p), "reason": "not inside a speaker folder"})
                continue
            try:
                info = sf.info(str(p))
            except Exception as err:  # libsndfile raises several types; all mean "cannot decode"
                skipped.append({"file": str(p), "reason": f"cannot be decoded ({type(err).__name__})"})
                continue
            if info.frames == 0:
                skipped.append({"file": str(p), "reason": "empty audio"})
                continue
            length = int(round(info.frames * sample_rate / info.samplerate))
            rows.append((p.stem, rel.parts[0], split, length, str(p.resolve())))
    if not rows:
        raise FileNotFoundError(f"speech folder {folder} holds no {'/'.join(_SPEECH_SUFFIXES)} files in speaker folders")
    if not split_dirs:
        speakers = sorted({r[1] for r in rows})
        order = np.random.default_rng([seed, 13]).permutation(len(speakers))
        # every held-out split needs two speakers to make a single mixture
        held = [max(2, round(f * len(speakers))) for f in fractions[1:]]
        if len(speakers) - sum(held) < 2:
            raise ValueError(f"speech folder {folder}: {len(speakers)} speakers are too few for three "
                             "speaker-disjoint splits of at least two speakers each")
        cut = [len(speakers) - sum(held), len(speakers) - held[1]]
        split_of = {}
        for rank, i in enumerate(order):
            split_of[speakers[i]] = "train" if rank < cut[0] else "valid" if rank < cut[1] else "test"
        rows = [(a, b, split_of[b], d, e) for a, b, _, d, e in rows]
    utts = Utterances(
        ids=[r[0] for r in rows], speakers=[r[1] for r in rows], splits=[r[2] for r in rows],
        lengths=np.array([r[3] for r in rows], dtype=np.int64), sample_rate=sample_rate,
        paths=[r[4] for r in rows],
    )
    return utts, {"utterances": len(rows), "skipped": skipped}


def build_iterative(speech_dir: str | os.PathLike, noise_dir: str | os.PathLike, root: str | os.PathLike,
                    counts=ITERATIVE_COUNTS, *, sample_rate: int = 16000, seed: int = 0, processes: int = 2,
                    log=print) -> dict:
    cfg = iterative_config(counts, sample_rate=sample_rate, seed=seed)

    def make_speech():
        utts, report = scan_speech_folder(speech_dir, sample_rate, seed)
        for s in report["skipped"]:
            log(f"[speech] skipped {s['file']}: {s['reason']}")
        return utts, None, report

    return build_corpus(root, cfg, make_speech, lambda: noise_stage(noise_dir, sample_rate, log), processes=processes, log=log)
