"""The speech of the demo corpus: many real-speech sources fetched, listed, decoded, measured and split.

Each source is a reader of one package layout (:mod:`speechsep.data.sources`). This module runs them:

1. fetch and unpack each source's Debian packages (``apt-get download`` + ``dpkg -x``, cached), or
   take the folders and ``.deb`` files the user points at; a package that cannot be had, or an
   archive that does not unpack, is named in one line and its source is left out;
2. list the utterances (the reader says who speaks, in which language, and what it left out);
3. decode them in parallel, resample to the corpus rate and measure each source's bandwidth;
4. assign speakers to splits by actor group (see :func:`assign_splits`).

The build report keeps, per source: package and version, files seen, decoded, skipped with why,
speakers, minutes, sample rates and bandwidth; per split: voices, actor groups, hours, languages.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.signal

from speechsep.audio import AudioError, resample
from speechsep.data.corpus import mp_context
from speechsep.data.packages import PackageError, cache_dir, download_deb, unpack_deb
from speechsep.data.sources import DEFAULT_SOURCES, SOURCES, Listing, SourceError, SourceUtterance, get_source
from speechsep.data.utterances import Utterances

__all__ = ["SpeechOptions", "TINY_SOURCES", "WORD_SOURCES", "TRAIN_ONLY_SOURCES", "fetch_sources", "make_speech", "assign_splits",
           "bandwidth_edge", "power_spectrum", "skip_reason_key"]

TINY_SOURCES = ("fotaq", "drascula-en", "drascula-es", "asterisk-fr-armelle", "asterisk-es-co", "festvox-ru")
"""The sources of the CI-sized build (small packages, held-out splits from several sources)."""

WORD_SOURCES = frozenset({"klettres", "ktuberling", "hedgewars"})
"""Sources of single words and shouts: they add voices to training, never a test sentence."""

TRAIN_ONLY_SOURCES = frozenset({"beneath-a-steel-sky"})
"""Sources whose speakers are unlabelled (one pool of many voices): they cannot be kept out of training
reliably, so they only train, and :func:`assign_splits` does not see them at all (adding one leaves
every other speaker's split as it was)."""

MIN_SECONDS = 0.3  # shorter decoded lines are left out: a click or a breath, not a voice


@dataclass
class SpeechOptions:
    sample_rate: int = 8000
    seed: int = 0
    sources: tuple[str, ...] = DEFAULT_SOURCES
    #: package name -> a ``.deb`` or an unpacked folder the user supplies instead of apt-get
    package_paths: dict[str, str] = field(default_factory=dict)
    tiny: bool = False
    #: the build stops when fewer training voices than this remain (sources may fail to fetch)
    min_train_speakers: int = 60
    #: shares of all speech for the held-out splits (at least; whole actor groups are moved)
    test_share: float = 0.08
    valid_share: float = 0.05
    processes: int = 2


def _package_version(deb: Path | None) -> str:
    # Debian file names are NAME_VERSION_ARCH.deb, with ':' of an epoch written as %3a.
    if deb is None or deb.suffix != ".deb":
        return "unknown (folder given)"
    parts = deb.stem.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else "unknown"


def fetch_sources(opts: SpeechOptions, log=print) -> tuple[dict[str, tuple[Listing, dict]], dict[str, str]]:
    """``({source: (listing, info)}, {source: why it was left out})``; one line logged per failure."""
    cache = cache_dir()
    found: dict[str, tuple[Listing, dict]] = {}
    failed: dict[str, str] = {}
    for name in opts.sources:
        if name not in SOURCES:
            raise ValueError(f"unknown speech source {name!r}; known: {', '.join(SOURCES)}")
        source = get_source(name)
        folders, versions = {}, {}
        try:
            for package in source.packages:
                given = opts.package_paths.get(package)
                deb = Path(given) if given else None
                if deb is None:
                    deb = download_deb(package, cache / "debs", log=log,
                                       hint=f"pass --package {package}=PATH (its .deb or unpacked folder), "
                                            f"or leave the source out with --sources")
                folders[package] = unpack_deb(deb, cache / "unpacked", log=log) if deb.suffix == ".deb" else deb
                versions[package] = _package_version(deb)
            listing = source.list(folders)
        except (PackageError, SourceError, OSError) as err:
            why = str(err).strip().splitlines()[0][:300]
            log(f"[speech] source {name} left out: {why}")
            failed[name] = why
            continue
        if not listing.utterances:
            failed[name] = "no utterances found"
            log(f"[speech] source {name} left out: no utterances found")
            continue
        found[name] = (listing, {"packages": versions, "description": source.description})
    return found, failed


_PSD_SEGMENT = 256  # Welch segment at the corpus rate: 129 bins at 8 kHz


def power_spectrum(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Welch power spectrum ``(_PSD_SEGMENT // 2 + 1,)``; summed over a source's utterances it is the
    source's long-term spectrum (one utterance is too short and too peaky to judge a band)."""
    if wav.size < _PSD_SEGMENT:
        return np.zeros(_PSD_SEGMENT // 2 + 1)
    return scipy.signal.welch(wav.astype(np.float64), fs=sample_rate, nperseg=_PSD_SEGMENT)[1]


def bandwidth_edge(psd: np.ndarray, sample_rate: int, floor_db: float = 30.0) -> float:
    """Highest frequency where a long-term spectrum ``psd`` (from 0 to Nyquist) is within
    ``floor_db`` of its peak (Hz).

    Codecs and old recordings end in a steep slope, or are dull throughout (one game's Dutch speech:
    99 % of its energy below 1.3 kHz). 30 dB, measured on this corpus's sources at 8 kHz, sets that
    one apart (2.0 kHz) from the rest (3.78 kHz and up); 40-50 dB puts every source near Nyquist.
    """
    freqs = np.linspace(0, sample_rate / 2, psd.size)
    if not psd.any():
        return sample_rate / 2
    level = 10 * np.log10(psd + 1e-20)
    # Smooth over ~5 bins so one tonal peak or notch does not move the edge.
    level = np.convolve(level, np.ones(5) / 5, mode="same")
    above = np.nonzero(level > level.max() - floor_db)[0]
    return float(freqs[above[-1]]) if above.size else sample_rate / 2


# Worker side: one reader instance per process.
_READERS: dict = {}


def _decode_task(task: tuple[str, SourceUtterance, int]):
    name, utt, sample_rate = task
    reader = _READERS.get(name) or _READERS.setdefault(name, get_source(name))
    try:
        wav, sr = reader.decode(utt)
    except AudioError as err:
        return None, err.problem, 0, 0.0
    except Exception as err:  # a reader bug must not stop the build: name the file and go on
        return None, f"{type(err).__name__}: {err}", 0, 0.0
    if sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
    return wav.astype(np.float32), "", sr, power_spectrum(wav, sample_rate)


def _tiny_subset(utterances: list[SourceUtterance], per_speaker: int = 6) -> list[SourceUtterance]:
    count: Counter = Counter()
    kept = []
    for u in utterances:
        if count[u.speaker] < per_speaker:
            kept.append(u)
            count[u.speaker] += 1
    return kept


def assign_splits(
    seconds: dict[str, float], group_of: dict[str, str], source_of: dict[str, str], seed: int, *,
    test_share: float = 0.08, valid_share: float = 0.05, min_group_seconds: float = 120.0,
    max_group_share: float = 0.12, held_out_sources: frozenset[str] | None = None,
    min_groups: tuple[int, int] = (5, 4), min_sources: tuple[int, int] = (3, 3),
) -> dict[str, str]:
    """Speaker -> split, moving whole actor groups; speakers of :data:`TRAIN_ONLY_SOURCES` always train.

    A group is eligible for a held-out split when its source speaks in sentences (not in
    :data:`WORD_SOURCES`), it has at least ``min_group_seconds`` of speech (enough lines to fill
    mixtures) and at most ``max_group_share`` of all speech (the largest casts train; the largest
    group always does, so training keeps its biggest source of voices). Eligible
    groups are taken round-robin over their sources in a seeded order, so each held-out split
    mixes sources: test until it holds ``test_share`` of the speech, ``min_groups[0]`` actor groups
    from ``min_sources[0]`` sources and four speakers; then valid likewise (``[1]``, three speakers).
    A held-out mixture pairs two groups, so the groups, not the characters, are its variety.

    Train-only speakers are set aside before anything else (the shares, the largest group and the
    seeded order are those of the other speakers), so adding such a source changes no other split.
    """
    train_only = [s for s in seconds if source_of[s] in TRAIN_ONLY_SOURCES]
    if train_only:
        others = {s: v for s, v in seconds.items() if source_of[s] not in TRAIN_ONLY_SOURCES}
        if not others:
            raise ValueError(f"no held-out voices: every source read is training-only "
                             f"({', '.join(sorted({source_of[s] for s in train_only}))}); add sources (--sources)")
        split_of = assign_splits(
            others, group_of, source_of, seed, test_share=test_share, valid_share=valid_share,
            min_group_seconds=min_group_seconds, max_group_share=max_group_share, held_out_sources=held_out_sources,
            min_groups=min_groups, min_sources=min_sources)
        return {s: split_of.get(s, "train") for s in seconds}
    total = sum(seconds.values())
    group_speakers: dict[str, list[str]] = defaultdict(list)
    for s in sorted(seconds):
        group_speakers[group_of[s]].append(s)
    group_seconds = {g: sum(seconds[s] for s in v) for g, v in group_speakers.items()}
    group_source = {g: source_of[v[0]] for g, v in group_speakers.items()}
    allowed = held_out_sources if held_out_sources is not None else frozenset(source_of.values()) - WORD_SOURCES
    largest = max(group_seconds, key=lambda g: (group_seconds[g], g))  # always trains
    eligible = [g for g in sorted(group_speakers) if group_source[g] in allowed and g != largest
                and min_group_seconds <= group_seconds[g] <= max_group_share * total]
    rng = np.random.default_rng([seed, 13])
    by_source: dict[str, list[str]] = defaultdict(list)
    for g in eligible:
        by_source[group_source[g]].append(g)
    for groups in by_source.values():
        rng.shuffle(groups)
    sources = sorted(by_source)
    rng.shuffle(sources)
    order = []
    while any(by_source.values()):  # round-robin: one group of each source in turn
        for src in sources:
            if by_source[src]:
                order.append(by_source[src].pop(0))
    split_of = dict.fromkeys(seconds, "train")
    targets = (("test", test_share, 4, min_groups[0], min_sources[0]),
               ("valid", valid_share, 3, min_groups[1], min_sources[1]))
    for split, share, need_speakers, need_groups, need_sources in targets:
        have, groups, speakers, srcs = 0.0, 0, 0, set()
        while order and (have < share * total or len(srcs) < need_sources or groups < need_groups
                         or speakers < need_speakers):
            g = order.pop(0)
            for s in group_speakers[g]:
                split_of[s] = split
            have, groups, speakers = have + group_seconds[g], groups + 1, speakers + len(group_speakers[g])
            srcs.add(group_source[g])
        if speakers < 2:
            raise ValueError(f"too few held-out voices for a {split} split ({speakers}): the sources read have "
                             f"{len(eligible)} actor group(s) that may be held out; add sources (--sources)")
    return split_of


def _split_summary(utts: Utterances) -> dict:
    out = {}
    for split in ("train", "valid", "test"):
        idx = [i for i, s in enumerate(utts.splits) if s == split]
        out[split] = {
            "voices": len({utts.speakers[i] for i in idx}),
            "actor_groups": len({utts.groups[i] for i in idx}),
            "hours": round(sum(int(utts.lengths[i]) for i in idx) / utts.sample_rate / 3600, 3),
            "languages": sorted({utts.languages[i] for i in idx}),
            "sources": sorted({utts.sources[i] for i in idx}),
            "utterances": len(idx),
        }
    return out


def skip_reason_key(reason: str) -> str:
    """A skip reason without the paths inside it ("byte-identical copy of /x/y.ogg" -> "byte-identical
    copy"), so reasons can be counted."""
    return re.sub(r"(\s+of)?\s*/\S+", "", reason)


def _too_few_voices(count: int, opts: SpeechOptions, failed: dict[str, str]) -> ValueError:
    return ValueError(
        f"only {count} training voices remain (the minimum is {opts.min_train_speakers})"
        + (f"; sources left out: {', '.join(f'{k} ({v})' for k, v in failed.items())}" if failed else "")
        + ". Fetch the missing packages (see the lines above) or lower --min-train-speakers."
    )


def make_speech(opts: SpeechOptions, log=print) -> tuple[Utterances, list[np.ndarray], dict]:
    """The corpus builder's speech stage: ``(table with splits, samples, report)``."""
    found, failed = fetch_sources(opts, log)
    tasks = []
    per_source: dict[str, dict] = {}
    for name, (listing, info) in found.items():
        utterances = _tiny_subset(listing.utterances) if opts.tiny else listing.utterances
        per_source[name] = {**info, "files_seen": listing.files_seen, "listed": len(listing.utterances),
                            "skipped": [{"file": f, "reason": r} for f, r in listing.skipped]}
        tasks += [(name, u, opts.sample_rate) for u in utterances]
    log(f"[speech] decoding {len(tasks)} utterances from {len(found)} sources")
    samples, kept, rates, spectra = [], [], defaultdict(Counter), {}
    with mp_context().Pool(opts.processes) as pool:
        step = max(1, len(tasks) // 10)
        for i, (wav, problem, sr, psd) in enumerate(pool.imap(_decode_task, tasks, chunksize=16), 1):
            name, u = tasks[i - 1][0], tasks[i - 1][1]
            if wav is None:  # a decoding failure is rare and worth a line of its own
                where = u.path + (f":{u.entry}" if u.entry else "")
                per_source[name]["skipped"].append({"file": where, "reason": problem})
                log(f"[speech] skipped {where}: {problem}")
            elif wav.size < MIN_SECONDS * opts.sample_rate:
                per_source[name]["skipped"].append({"file": u.id, "reason": f"shorter than {MIN_SECONDS} s"})
            else:
                samples.append(wav)
                kept.append((name, u))
                rates[name][sr] += 1
                spectra[name] = spectra.get(name, 0.0) + psd
            if i % step == 0 or i == len(tasks):
                log(f"  decode: {i}/{len(tasks)}")
    if not kept:
        raise _too_few_voices(0, opts, failed)
    # One bandwidth per source, from its long-term spectrum at the corpus rate.
    band = {name: bandwidth_edge(psd, opts.sample_rate) for name, psd in spectra.items()}
    lengths = np.array([w.size for w in samples], dtype=np.int64)
    seconds: dict[str, float] = defaultdict(float)
    group_of, source_of = {}, {}
    for (name, u), n in zip(kept, lengths, strict=True):
        seconds[u.speaker] += n / opts.sample_rate
        group_of[u.speaker], source_of[u.speaker] = u.group, name
    split_of = assign_splits(dict(seconds), group_of, source_of, opts.seed, test_share=opts.test_share,
                             valid_share=opts.valid_share, min_group_seconds=0.0 if opts.tiny else 120.0,
                             max_group_share=0.5 if opts.tiny else 0.12,
                             min_groups=(2, 2) if opts.tiny else (5, 4), min_sources=(2, 2) if opts.tiny else (3, 3))
    utts = Utterances(
        ids=[u.id for _, u in kept], speakers=[u.speaker for _, u in kept],
        splits=[split_of[u.speaker] for _, u in kept], lengths=lengths, sample_rate=opts.sample_rate,
        sources=[name for name, _ in kept], languages=[u.language for _, u in kept],
        groups=[u.group for _, u in kept], bandwidths=np.array([band[name] for name, _ in kept]),
    )
    for name, info in per_source.items():
        mine = [i for i, s in enumerate(utts.sources) if s == name]
        info.update(
            decoded=len(mine),
            speakers=len({utts.speakers[i] for i in mine}),
            actor_groups=len({utts.groups[i] for i in mine}),
            minutes=round(sum(int(lengths[i]) for i in mine) / opts.sample_rate / 60, 2),
            sample_rates={str(k): v for k, v in sorted(rates[name].items())},
            bandwidth_hz=round(band.get(name, math.nan)),
            languages=sorted({utts.languages[i] for i in mine}),
            skipped_by_reason=dict(Counter(skip_reason_key(s["reason"]) for s in info["skipped"]).most_common()),
        )
        log(f"[speech] {name}: {info['decoded']} utterances, {info['speakers']} speakers, {info['minutes']} min, "
            f"{len(info['skipped'])} skipped, bandwidth {info['bandwidth_hz']} Hz")
    splits = _split_summary(utts)
    if splits["train"]["voices"] < opts.min_train_speakers:
        raise _too_few_voices(splits["train"]["voices"], opts, failed)
    report = {
        "sources": per_source, "failed_sources": failed, "splits": splits,
        "speaker_split": dict(sorted(split_of.items())),
        "speaker_seconds": {s: round(v, 1) for s, v in sorted(seconds.items())},
    }
    return utts, samples, report


def package_paths_from(pairs: list[str] | None) -> dict[str, str]:
    """``["pkg=PATH", ...]`` (the CLI's ``--package``) -> ``{pkg: PATH}``, each path checked."""
    out = {}
    for pair in pairs or []:
        package, sep, path = pair.partition("=")
        if not sep or not package or not path:
            raise ValueError(f"--package takes PACKAGE=PATH (a .deb or an unpacked folder); got {pair!r}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"--package {package}: {path} does not exist")
        out[package] = path
    return out
