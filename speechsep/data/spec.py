"""``open_dataset(spec)``: one string names any dataset the toolkit can read.

Grammar (``:``-separated; options after the split are order-free keywords, defaults first)::

    demo:ROOT:SPLIT[:clean|noisy|mixed][:reverb|direct]
        a corpus built by ``speechsep data demo`` or ``speechsep data iterative`` (``corpus:`` is
        the same). SPLIT is train, valid or test. train is dynamic mixing (new mixtures every
        epoch) when the corpus has no fixed train set. direct = direct-path (dereverberated) targets.
        clean|noisy|mixed picks the condition of a corpus built with conditions (the demo corpus:
        clean = reverberant, no noise; noisy = reverberant, WHAMR!-level noise; mixed = every
        condition, as in training; default mixed); on train it sets dynamic mixing's condition.
    wham:ROOT:SUBSET[:min|max][:8k|16k][:noisy|clean]
        WHAM!; SUBSET is tr, cv or tt; noisy reads mix_both, clean mix_clean.
    whamr:ROOT:SUBSET[:min|max][:8k|16k][:noisy|clean][:reverb|anechoic]
        WHAMR!; the mixture is reverberant; reverb/anechoic picks the targets.
    librimix:ROOT:SPLIT[:2mix|3mix][:min|max][:8k|16k][:noisy|clean]
        LibriMix; SPLIT is train-360, train-100 (train = train-360), dev or test.
    folder:MIXDIR:S1DIR,S2DIR[,...]
        any folder of mixtures and one folder per source, files matched by name.

When the rate keyword is left out, the files at ``sample_rate`` are read (8k or 16k); files at
another rate are resampled on load and the conversion is logged once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from speechsep.data.corpus import CorpusConfig, load_config, set_dir
from speechsep.data.readers import folder_items, librimix_items, wham_items, whamr_items
from speechsep.data.readers.folder import MixtureItem

if TYPE_CHECKING:  # torch is imported only when a dataset is opened, so `speechsep --help` stays fast
    from torch.utils.data import Dataset

__all__ = ["open_dataset", "parse_spec", "spec_items", "corpus_condition", "condition_specs", "GRAMMAR"]

GRAMMAR = __doc__.split("Grammar", 1)[1].split("\n\n", 1)[1].split("\nWhen", 1)[0]

_OPTIONS = {
    "mode": ("min", "max"),
    "rate": ("8k", "16k"),
    "noise": ("noisy", "clean"),
    "target": ("reverb", "anechoic", "direct"),
    "speakers": ("2mix", "3mix"),
    "mix": ("mixed",),  # with "noise": the condition of a demo corpus
}


def parse_spec(spec: str) -> tuple[str, str, str, dict[str, str]]:
    """``"wham:/d:tt:max"`` -> ``("wham", "/d", "tt", {"mode": "max"})``."""
    parts = spec.split(":")
    if len(parts) < 3 or not all(parts[:3]):
        raise ValueError(f"dataset spec {spec!r} must be KIND:ROOT:SPLIT[:OPTION...]; the grammar is:\n{GRAMMAR}")
    kind, root, split, rest = parts[0].lower(), parts[1], parts[2], parts[3:]
    options: dict[str, str] = {}
    for token in rest:
        key = next((k for k, values in _OPTIONS.items() if token in values), None)
        if key is None or key in options:
            raise ValueError(f"dataset spec {spec!r}: unknown or repeated option {token!r}; the grammar is:\n{GRAMMAR}")
        options[key] = token
    return kind, root, split, options


def _rate(options: dict[str, str], sample_rate: int) -> int:
    if "rate" in options:
        return 8000 if options["rate"] == "8k" else 16000
    return sample_rate if sample_rate in (8000, 16000) else 8000


def _allowed(spec: str, options: dict[str, str], keys: set[str], values: dict[str, tuple[str, ...]] | None = None):
    for k, v in options.items():
        if k not in keys or (values and k in values and v not in values[k]):
            raise ValueError(f"dataset spec {spec!r}: option {v!r} does not apply to this kind")


def corpus_condition(spec: str, options: dict[str, str], cfg: CorpusConfig) -> str | None:
    """The condition a ``demo:``/``corpus:`` spec names (``None`` for a corpus built without conditions)."""
    _allowed(spec, options, {"target", "noise", "mix"}, {"target": ("reverb", "direct")})
    if "noise" in options and "mix" in options:
        raise ValueError(f"dataset spec {spec!r}: name one condition, not {options['noise']} and {options['mix']}")
    named = options.get("noise") or options.get("mix")
    if not cfg.conditions:
        if named is not None:
            raise ValueError(f"dataset spec {spec!r}: this corpus was built without conditions (rebuild it with "
                             "`speechsep data demo` to get clean, noisy and mixed sets)")
        return None
    condition = named or ("mixed" if "mixed" in cfg.conditions else next(iter(cfg.conditions)))
    if condition not in cfg.conditions:
        raise ValueError(f"dataset spec {spec!r}: the corpus has the conditions {', '.join(cfg.conditions)}")
    return condition


def condition_specs(spec: str) -> list[tuple[str, str]]:
    """``[(condition, spec), ...]``: one spec per condition when ``spec`` is a held-out split of a
    corpus built with conditions and names none (what ``eval`` and ``bundle`` report), else
    ``[("", spec)]``."""
    kind, root, split, opt = parse_spec(spec)
    if kind not in ("demo", "corpus") or split == "train" or "noise" in opt or "mix" in opt:
        return [("", spec)]
    cfg = load_config(root)
    # corpus.json stores conditions in name order; report the usual ones from easy to hard
    usual = ("clean", "noisy", "mixed")
    order = sorted(cfg.conditions, key=lambda c: (usual.index(c) if c in usual else len(usual), c))
    return [(c, f"{spec}:{c}") for c in order] or [("", spec)]


def spec_items(spec: str, *, sample_rate: int) -> list[MixtureItem]:
    """The file items of a fixed (non-dynamic) spec."""
    kind, root, split, opt = parse_spec(spec)
    rate = _rate(opt, sample_rate)
    noisy = opt.get("noise", "noisy") == "noisy"
    mode = opt.get("mode", "min")
    if kind == "wham":
        _allowed(spec, opt, {"mode", "rate", "noise"})
        return wham_items(root, split, mode=mode, sample_rate=rate, noisy=noisy)
    if kind == "whamr":
        _allowed(spec, opt, {"mode", "rate", "noise", "target"}, {"target": ("reverb", "anechoic")})
        return whamr_items(root, split, mode=mode, sample_rate=rate, noisy=noisy, target=opt.get("target", "reverb"))
    if kind == "librimix":
        _allowed(spec, opt, {"mode", "rate", "noise", "speakers"})
        n = 3 if opt.get("speakers") == "3mix" else 2
        return librimix_items(root, split, num_speakers=n, mode=mode, sample_rate=rate, noisy=noisy)
    if kind == "folder":
        _allowed(spec, opt, set())
        return folder_items(root, [d for d in split.split(",") if d])
    if kind in ("demo", "corpus"):
        cfg = load_config(root)
        condition = corpus_condition(spec, opt, cfg)
        if split not in ("train", "valid", "test"):
            raise ValueError(f"dataset spec {spec!r}: split must be train, valid or test")
        if cfg.counts.get(split, 0) <= 0:
            raise ValueError(f"{root} has no fixed {split} set (train is dynamic mixing: open it with open_dataset)")
        suffix = "_direct" if opt.get("target") == "direct" else ""
        d = set_dir(root, split, condition)
        return folder_items(d / "mix", [d / f"s{k + 1}{suffix}" for k in range(cfg.mixing.num_speakers)])
    raise ValueError(f"unknown dataset kind {kind!r} in {spec!r}; the grammar is:\n{GRAMMAR}")


def open_dataset(spec: str, *, sample_rate: int, segment_seconds: float | None = None, train: bool = False,
                 seed: int = 0, mixing: dict | None = None, clean_first_epochs: int = 0) -> Dataset:
    """The dataset named by ``spec`` (grammar in the module docstring); items are
    ``(mixture (T,), sources (C, T))`` float32 at ``sample_rate``. ``train`` turns on random
    crops of ``segment_seconds`` (seeded by ``seed`` and the epoch); without it a segment is the
    first ``segment_seconds`` of each mixture. ``mixing`` overrides fields of dynamic mixing's
    :class:`~speechsep.data.mixing.MixingConfig` (augmentation, condition weights); it is an error
    for a dataset that is not mixed on the fly, and so is ``clean_first_epochs`` (dynamic mixing
    draws noise-free mixtures for that many first epochs)."""
    from speechsep.data.datasets import DynamicMixing, MixtureFiles

    kind, root, split, opt = parse_spec(spec)
    if kind in ("demo", "corpus") and split == "train" and load_config(root).counts.get("train", 0) <= 0:
        cfg = load_config(root)
        # Dynamic mixing draws from the corpus's own mix unless the spec names a condition.
        condition = corpus_condition(spec, opt, cfg) if ("noise" in opt or "mix" in opt) else None
        return DynamicMixing(root, sample_rate=sample_rate, segment_seconds=segment_seconds, seed=seed,
                             target=opt.get("target", "reverb"), condition=condition, mixing=mixing,
                             clean_first_epochs=clean_first_epochs)
    if clean_first_epochs:
        raise ValueError(f"dataset {spec!r} is read from files: clean_first_epochs applies only to dynamic mixing "
                         "(a demo corpus's train split)")
    if mixing:
        raise ValueError(f"dataset {spec!r} is read from files: mixing overrides ({', '.join(mixing)}) apply only "
                         "to dynamic mixing (a demo corpus's train split)")
    items = spec_items(spec, sample_rate=sample_rate)
    return MixtureFiles(items, sample_rate=sample_rate, segment_seconds=segment_seconds, train=train, seed=seed,
                        name=spec)
