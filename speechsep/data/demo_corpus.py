"""The default corpus, built with no manual step from Debian packages.

Speech: every reader in :mod:`speechsep.data.sources` (game dialogue in English, Spanish, Czech and
Dutch, read Russian sentences, French and Spanish telephone prompts, spoken stamp names in about a
dozen languages, spoken letters and words in twenty more; :mod:`speechsep.data.voices` fetches,
decodes, measures and splits them). Noise: LinCity-NG's city sounds (``lincity-ng-data``).
Packages are fetched with ``apt-get download`` (no engine installed) and unpacked into a cache.

Splits are speaker-disjoint by actor group (:func:`speechsep.data.voices.assign_splits`): held-out
voices come from several sources and are never heard in training under another name.

Conditions. Training draws each mixture's condition from one mix (``DEMO_MIX``), and the fixed
valid and test sets exist once per named condition (``DEMO_CONDITIONS``):

- ``clean``: reverberant, noise-free, full overlap; what a user tries first;
- ``noisy``: reverberant, WHAMR!-level noise (-6..+3 dB), full overlap; the hard benchmark case;
- ``mixed``: drawn from the training mix below.

Why this mix: a model trained only at -6..+3 dB learned to turn noise down before it learned to
split voices (the first bundled models: 0.5-1.4 dB SI-SNRi on clean mixtures). Separation is learned
from the speakers, so a third of the mixtures have no noise at all and most of the rest have mild
noise (-5..+20 dB: the speech dominates, as in most real recordings); a fifth keep WHAMR!'s level so
the model still meets loud noise. 15 % are anechoic (direct path only) so a near-dry input is not
out of distribution; 30 % overlap partially (30-100 % of the segment), as conversations do.
Dynamic mixing adds speed perturbation (0.9-1.1) on top (``TRAIN_AUGMENTATION``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from speechsep.data.corpus import CorpusConfig, build_corpus
from speechsep.data.noise import NOISE_SUBDIR, noise_stage
from speechsep.data.packages import cache_dir, download_deb, unpack_deb
from speechsep.data.sources import DEFAULT_SOURCES
from speechsep.data.voices import TINY_SOURCES, SpeechOptions, make_speech

__all__ = ["DemoOptions", "build_demo", "locate_noise", "DEMO_MIX", "DEMO_CONDITIONS", "TRAIN_AUGMENTATION"]

NOISE_PACKAGE = "lincity-ng-data"

DEMO_MIX = {
    "noise_weights": {"none": 0.35, "wide": 0.45, "whamr": 0.2},
    "dry_probability": 0.15,
    "partial_overlap_probability": 0.3,
    "overlap_range": (0.3, 1.0),
}
"""The training mix (fields of :class:`~speechsep.data.mixing.MixingConfig`); the module docstring says why."""

_FIXED = {"dry_probability": 0.0, "partial_overlap_probability": 0.0}
DEMO_CONDITIONS = {
    "clean": {"noise_weights": {"none": 1.0}, **_FIXED},
    "noisy": {"noise_weights": {"whamr": 1.0}, **_FIXED},
    "mixed": {},
}
"""Fixed valid/test sets: name -> how they differ from the training mix."""

TRAIN_AUGMENTATION = {"speed_range": (0.9, 1.1)}
"""Dynamic mixing only; a recipe switches it off with ``data.mixing.speed_range=[1, 1]``."""


@dataclass
class DemoOptions:
    sample_rate: int = 8000
    seed: int = 0
    train_hours: float = 10.0
    tiny: bool = False
    valid: int = 200  # per condition
    test: int = 300  # per condition
    rooms: int = 1000
    segment_seconds: float = 4.0
    sources: tuple[str, ...] | None = None  # default: every source (TINY_SOURCES with tiny)
    package_paths: dict[str, str] = field(default_factory=dict)  # package -> .deb or unpacked folder
    noise_dir: str | None = None  # any folder of audio clips
    min_train_speakers: int | None = None  # default 60 (2 with tiny)
    processes: int = 2

    def speech_options(self) -> SpeechOptions:
        sources = self.sources or (TINY_SOURCES if self.tiny else DEFAULT_SOURCES)
        minimum = self.min_train_speakers if self.min_train_speakers is not None else (2 if self.tiny else 60)
        return SpeechOptions(sample_rate=self.sample_rate, seed=self.seed, sources=tuple(sources),
                             package_paths=dict(self.package_paths), tiny=self.tiny, min_train_speakers=minimum,
                             processes=self.processes)

    def corpus_config(self) -> CorpusConfig:
        speech = self.speech_options()
        cfg = CorpusConfig(sample_rate=self.sample_rate, seed=self.seed, train_hours=self.train_hours,
                           source=f"{' + '.join(speech.sources)} + {NOISE_PACKAGE}")
        cfg.mixing.segment_seconds = self.segment_seconds
        for key, value in DEMO_MIX.items():
            setattr(cfg.mixing, key, value)
        cfg.conditions = {k: dict(v) for k, v in DEMO_CONDITIONS.items()}
        cfg.train_mixing = dict(TRAIN_AUGMENTATION)
        if self.tiny:  # CI size: a few mixtures per condition from a few utterances per speaker
            cfg.counts = {"train": 0, "valid": 6, "test": 8}
            cfg.room_bank_size = 16
            cfg.train_hours = 0.05
        else:
            cfg.counts = {"train": 0, "valid": self.valid, "test": self.test}
            cfg.room_bank_size = self.rooms
        return cfg


def locate_noise(opts: DemoOptions, log=print) -> Path:
    """The noise folder: ``--noise-dir``, else LinCity-NG's sounds, downloaded and unpacked."""
    if opts.noise_dir is None:
        deb = download_deb(NOISE_PACKAGE, cache_dir() / "debs", log=log,
                           hint="pass --noise-dir DIR (any folder of noise recordings)")
        return unpack_deb(deb, cache_dir() / "unpacked", log=log) / NOISE_SUBDIR
    noise = Path(opts.noise_dir)
    return noise / NOISE_SUBDIR if (noise / NOISE_SUBDIR).is_dir() else noise


def build_demo(root: str | os.PathLike, opts: DemoOptions | None = None, *, log=print) -> dict:
    """Fetch, decode, split, simulate and write the demo corpus at ``root`` (resumable)."""
    opts = opts or DemoOptions()
    noise = locate_noise(opts, log=log)
    return build_corpus(
        root, opts.corpus_config(),
        make_speech=lambda: make_speech(opts.speech_options(), log),
        make_noise=lambda: noise_stage(noise, opts.sample_rate, log),
        processes=opts.processes, log=log,
    )
