"""The default corpus, built with no manual step from two Debian packages.

Speech: "Flight of the Amazon Queen" (``flight-of-the-amazon-queen``), real recorded voice acting,
about 30 characters plus the hero Joe. Noise: LinCity-NG's city sounds (``lincity-ng-data``).
Both are fetched with ``apt-get download`` (no engine installed) and unpacked into a cache.

Splits are speaker-disjoint by character. Joe, a quarter of all speech, is only in train: a test
speaker the model has heard for hours would flatter it. Held-out characters are drawn (seeded) from
those with enough speech, smallest first, until test holds >= 4 speakers and ~12 % of the
non-Joe speech and valid >= 3 speakers and ~8 %. One actor may voice several characters; the
game's data cannot tell, so this is the best speaker-disjointness available.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsep.audio import AudioError, resample
from speechsep.data.corpus import CorpusConfig, build_corpus, mp_context
from speechsep.data.fotaq import HERO, RESOURCE_PATH, decode_entry, speech_entries
from speechsep.data.noise import NOISE_SUBDIR, noise_stage
from speechsep.data.packages import cache_dir, download_deb, unpack_deb
from speechsep.data.utterances import Utterances

__all__ = ["DemoOptions", "build_demo", "assign_speaker_splits", "locate_sources"]

FOTAQ_PACKAGE = "flight-of-the-amazon-queen"
NOISE_PACKAGE = "lincity-ng-data"


@dataclass
class DemoOptions:
    sample_rate: int = 8000
    seed: int = 0
    train_hours: float = 10.0
    tiny: bool = False
    valid: int = 300
    test: int = 500
    rooms: int = 1000
    segment_seconds: float = 4.0
    fotaq: str | None = None  # a .deb, an unpacked folder, or queen.1c itself
    noise_dir: str | None = None  # any folder of audio clips
    processes: int = 2

    def corpus_config(self) -> CorpusConfig:
        cfg = CorpusConfig(sample_rate=self.sample_rate, seed=self.seed, train_hours=self.train_hours,
                           source=f"{FOTAQ_PACKAGE} + {NOISE_PACKAGE}")
        cfg.mixing.segment_seconds = self.segment_seconds
        if self.tiny:  # CI size: a few dozen mixtures from a few utterances per character
            cfg.counts = {"train": 0, "valid": 12, "test": 16}
            cfg.room_bank_size = 16
            cfg.train_hours = 0.05
        else:
            cfg.counts = {"train": 0, "valid": self.valid, "test": self.test}
            cfg.room_bank_size = self.rooms
        return cfg


def locate_sources(opts: DemoOptions, log=print) -> tuple[Path, Path]:
    """``(queen.1c, noise folder)``, downloading and unpacking the packages when not given."""
    cache = cache_dir()
    hint_speech = "pass --fotaq-deb PATH (the .deb, its unpacked folder, or queen.1c)"
    if opts.fotaq is None:
        deb = download_deb(FOTAQ_PACKAGE, cache / "debs", hint=hint_speech, log=log)
        queen = unpack_deb(deb, cache / "unpacked", log=log) / RESOURCE_PATH
    else:
        given = Path(opts.fotaq)
        if given.suffix == ".deb":
            given = unpack_deb(given, cache / "unpacked", log=log)
        queen = given / RESOURCE_PATH if given.is_dir() else given
        if given.is_dir() and not queen.exists():
            queen = given / "queen.1c"
    if not queen.exists():
        raise FileNotFoundError(f"{queen} not found: {hint_speech}")
    if opts.noise_dir is None:
        deb = download_deb(NOISE_PACKAGE, cache / "debs", log=log,
                           hint="pass --noise-dir DIR (any folder of noise recordings)")
        noise = unpack_deb(deb, cache / "unpacked", log=log) / NOISE_SUBDIR
    else:
        noise = Path(opts.noise_dir)
        if (noise / NOISE_SUBDIR).is_dir():
            noise = noise / NOISE_SUBDIR
    return queen, noise


def assign_speaker_splits(
    seconds: dict[str, float], seed: int, *, min_seconds: float = 60.0,
    shares: tuple[float, float] = (0.12, 0.08), min_speakers: tuple[int, int] = (4, 3),
) -> dict[str, str]:
    """Character -> split. Joe always goes to train (see the module docstring for the rule)."""
    others = sorted((s for s in seconds if s != HERO), key=lambda s: (seconds[s], s))
    total = sum(seconds[s] for s in others)
    eligible = [s for s in others if seconds[s] >= min_seconds]
    if len(eligible) < sum(min_speakers) + 2:  # small builds: every character is eligible
        eligible = list(others)
    rng = np.random.default_rng([seed, 11])
    # Randomise among similar sizes only: shuffle within blocks of four of the size order.
    order = [s for k in range(0, len(eligible), 4) for s in rng.permutation(eligible[k : k + 4])]
    out = dict.fromkeys(seconds, "train")
    for split, share, need in (("test", shares[0], min_speakers[0]), ("valid", shares[1], min_speakers[1])):
        have, n = 0.0, 0
        while order and (n < need or have < share * total):
            s = order.pop(0)
            out[s], have, n = split, have + seconds[s], n + 1
    return out


def _decode_task(task):
    path, entry, sample_rate = task
    try:
        wav, sr = decode_entry(path, entry)
    except AudioError as err:
        return None, err.problem, 0
    return (resample(wav, sr, sample_rate) if sr != sample_rate else wav), "", sr


def _make_speech(queen: Path, opts: DemoOptions, log):
    lines, unmapped = speech_entries(queen)
    if opts.tiny:  # a few lines per character are enough to exercise every stage
        per: Counter = Counter()
        kept = []
        for e in lines:
            if per[e.speaker] < 6:
                kept.append(e)
                per[e.speaker] += 1
        lines = kept
    log(f"[speech] decoding {len(lines)} lines ({unmapped} entries without a known speaker left out)")
    ctx = mp_context()
    tasks = [(str(queen), e, opts.sample_rate) for e in lines]
    samples, kept_lines, skipped, rates = [], [], [], Counter()
    with ctx.Pool(opts.processes) as pool:
        step = max(1, len(tasks) // 10)
        for i, (wav, problem, sr) in enumerate(pool.imap(_decode_task, tasks, chunksize=32), 1):
            e = lines[i - 1]
            if wav is None:
                skipped.append({"entry": e.name, "reason": problem})
            elif wav.size < 0.2 * opts.sample_rate:
                skipped.append({"entry": e.name, "reason": f"shorter than 0.2 s ({wav.size} samples)"})
            else:
                samples.append(wav.astype(np.float32))
                kept_lines.append(e)
                if sr != opts.sample_rate:
                    rates[(sr, opts.sample_rate)] += 1
            if i % step == 0 or i == len(tasks):
                log(f"  decode: {i}/{len(tasks)}")
    for (a, b), n in rates.items():
        log(f"[speech] resampled {n} lines from {a} Hz to {b} Hz")
    for s in skipped:
        log(f"[speech] skipped {s['entry']}: {s['reason']}")
    lengths = np.array([w.size for w in samples], dtype=np.int64)
    seconds: dict[str, float] = {}
    for e, n in zip(kept_lines, lengths, strict=True):
        seconds[e.speaker] = seconds.get(e.speaker, 0.0) + n / opts.sample_rate
    split_of = assign_speaker_splits(seconds, opts.seed, min_seconds=0.0 if opts.tiny else 60.0)
    utts = Utterances(
        ids=[e.name.rsplit(".", 1)[0] for e in kept_lines],
        speakers=[e.speaker for e in kept_lines],
        splits=[split_of[e.speaker] for e in kept_lines],
        lengths=lengths,
        sample_rate=opts.sample_rate,
    )
    report = {
        "decoded": len(samples), "skipped": skipped, "unmapped_entries": unmapped,
        "resampled": {f"{a}->{b}": n for (a, b), n in rates.items()},
        "speaker_seconds": {s: round(v, 1) for s, v in sorted(seconds.items())},
        "speaker_split": dict(sorted(split_of.items())),
    }
    return utts, samples, report


def build_demo(root: str | os.PathLike, opts: DemoOptions | None = None, *, log=print) -> dict:
    """Fetch, decode, split, simulate and write the demo corpus at ``root`` (resumable)."""
    opts = opts or DemoOptions()
    queen, noise = locate_sources(opts, log=log)
    return build_corpus(
        root, opts.corpus_config(),
        make_speech=lambda: _make_speech(queen, opts, log),
        make_noise=lambda: noise_stage(noise, opts.sample_rate, log),
        processes=opts.processes, log=log,
    )
