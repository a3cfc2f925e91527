"""Building a simulated corpus on disk: splits, fixed sets, room bank, manifest; resumable.

The builder is shared by the demo corpus (speech from the game, noise from LinCity) and the
iterative paper's recipe (a LibriSpeech-style folder and a noise folder): callers provide the
utterance table and the noise clips, everything after that is the same code.

Layout under ``root``::

    corpus.json             the settings; a rebuild with other settings is refused
    speech/utterances.csv   one row an utterance: id, speaker, split, length (+ .npy of samples)
    noise/clips.csv         one row a noise clip: name, split, offset, length (+ noise.npy)
    train/rooms.npz         the room bank for dynamic mixing (RoomBank)
    {split}/{stream}/{id}.wav   fixed mixtures; streams mix, s1.., s1_direct.., noise (float32 wav)
    {split}/meta/{id}.json  one mixture's manifest row, written last: the mixture's completion marker
    {split}/{condition}/...     the same, one fixed set per named condition, when the corpus has
                            conditions (``CorpusConfig.conditions``: clean, noisy, mixed, ...)
    manifest.csv            every fixed mixture: speakers, utterances, offsets, gains, condition,
                            SNR, room, RT60, overlap
    build_report.json       skipped inputs (with reasons), counts, timings
    .stages/{stage}.done    written when a stage is complete; a rerun skips it

Every file is written to a temporary name and renamed, so a half-written file is never taken as
complete, and every random draw comes from ``default_rng([seed, stream, index])``: the output is
the same for a seed whatever the number of processes and whichever run finished it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from speechsep.audio import write_audio
from speechsep.data.mixing import MixingConfig, synthesize
from speechsep.data.noise import NoiseClip
from speechsep.data.pitch import corpus_speaker_pitch
from speechsep.data.rooms import RoomBank, RoomDistribution, sample_room, simulate_room
from speechsep.data.utterances import Utterances
from speechsep.utils import atomic_path

__all__ = [
    "SPLITS",
    "CorpusConfig",
    "NoiseBank",
    "build_corpus",
    "load_config",
    "load_utterances",
    "load_noise_bank",
    "split_noise",
    "stream_names",
    "set_dir",
    "tuples_from_json",
    "condition_mixing",
    "write_json",
    "mp_context",
]

SPLITS = ("train", "valid", "test")
_STREAM_CODE = {"train": 0, "valid": 1, "test": 2, "rooms": 3}

Log = Callable[[str], None]


@dataclass
class CorpusConfig:
    sample_rate: int = 8000
    seed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "valid": 300, "test": 500})
    train_hours: float = 10.0  # length of one dynamic-mixing epoch, in hours of mixtures
    room_bank_size: int = 1000
    write_direct: bool = True  # also write direct-path sources (dereverberation targets)
    subtype: str = "FLOAT"  # float32 wav keeps target + noise = mixture exact; PCM_16 halves the size
    source: str = ""  # what the speech and noise come from, for the record
    mixing: MixingConfig = field(default_factory=MixingConfig)
    rooms: RoomDistribution = field(default_factory=RoomDistribution)
    #: fixed sets per named condition: name -> MixingConfig fields that differ from ``mixing``
    #: (``counts`` mixtures of each per split). Empty: one fixed set per split, drawn from ``mixing``.
    conditions: dict[str, dict] = field(default_factory=dict)
    #: MixingConfig fields that dynamic mixing (the train split) changes on top of ``mixing``:
    #: augmentation, which the fixed sets never have
    train_mixing: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as they are stored

    @classmethod
    def from_json(cls, d: dict) -> CorpusConfig:
        d = dict(d)
        mixing = MixingConfig(**tuples_from_json(d.pop("mixing")))
        rooms = RoomDistribution(**tuples_from_json(d.pop("rooms")))
        conditions = {k: tuples_from_json(v) for k, v in d.pop("conditions", {}).items()}
        train_mixing = tuples_from_json(d.pop("train_mixing", {}))
        return cls(mixing=mixing, rooms=rooms, conditions=conditions, train_mixing=train_mixing, **d)


def tuples_from_json(d: dict) -> dict:
    """JSON stores tuples as lists; the dataclasses want tuples back."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def condition_mixing(cfg: CorpusConfig, condition: str | None) -> MixingConfig:
    """The mixing config of one named fixed-set condition (``None``: the corpus's own mix)."""
    if condition is None:
        return cfg.mixing
    if condition not in cfg.conditions:
        raise ValueError(f"condition {condition!r} is not one of this corpus's: {', '.join(cfg.conditions) or 'none'}")
    return dataclasses.replace(cfg.mixing, **tuples_from_json(cfg.conditions[condition]))


def set_dir(root: str | os.PathLike, split: str, condition: str | None = None) -> Path:
    """Folder of one fixed set: ``root/split`` or ``root/split/condition``."""
    return Path(root) / split if condition is None else Path(root) / split / condition


def _set_names(cfg: CorpusConfig) -> list[str | None]:
    return list(cfg.conditions) or [None]


def stream_names(num_speakers: int, direct: bool) -> list[str]:
    names = ["mix"] + [f"s{k + 1}" for k in range(num_speakers)]
    if direct:
        names += [f"s{k + 1}_direct" for k in range(num_speakers)]
    return names + ["noise"]


def write_json(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))


def load_config(root: str | os.PathLike) -> CorpusConfig:
    path = Path(root) / "corpus.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {root} is not a built corpus (run `speechsep data demo`)")
    return CorpusConfig.from_json(json.loads(path.read_text()))


def load_utterances(root: str | os.PathLike, sample_rate: int) -> Utterances:
    root = Path(root)
    return Utterances.load_table(root / "speech" / "utterances.csv", sample_rate, root / "speech" / "utterances.npy")


@dataclass
class NoiseBank:
    names: list[str]
    splits: list[str]
    offsets: np.ndarray
    lengths: np.ndarray
    array_path: str

    def clips(self, split: str) -> list[np.ndarray]:
        data = np.load(self.array_path, mmap_mode="r")
        return [
            np.asarray(data[o : o + n]) for o, n, s in zip(self.offsets, self.lengths, self.splits, strict=True)
            if s == split
        ]


def load_noise_bank(root: str | os.PathLike) -> NoiseBank:
    root = Path(root)
    with open(root / "noise" / "clips.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return NoiseBank(
        [r["name"] for r in rows], [r["split"] for r in rows],
        np.array([int(r["offset"]) for r in rows]), np.array([int(r["length"]) for r in rows]),
        str(root / "noise" / "noise.npy"),
    )


def split_noise(clips: list[NoiseClip], seed: int, fractions=(0.7, 0.15, 0.15)) -> list[str]:
    """Disjoint noise splits. Clips sharing a name stem (``Traffic1``, ``Traffic2``) stay together,
    so a test noise is a sound the model has not heard; groups go where the deficit is largest."""
    stems: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        stem = Path(c.name).stem.rstrip("0123456789_- ").lower() or Path(c.name).stem
        stems.setdefault(stem, []).append(i)
    order = sorted(stems)
    np.random.default_rng([seed, 7]).shuffle(order)
    total = sum(c.wav.size for c in clips)
    have = dict.fromkeys(SPLITS, 0)
    out = [""] * len(clips)
    for stem in order:
        # Largest remaining share first; train takes whatever is left.
        split = max(SPLITS, key=lambda s: fractions[SPLITS.index(s)] * total - have[s])
        for i in stems[stem]:
            out[i] = split
            have[split] += clips[i].wav.size
    if any(have[s] == 0 for s in SPLITS) and len(clips) >= 3:
        # Too few stems to balance: fall back to one clip per held-out split at least.
        for s, i in zip(("valid", "test"), np.argsort([c.wav.size for c in clips])[:2], strict=True):
            out[i] = s
    return out


def write_noise(root: Path, clips: list[NoiseClip], splits: list[str]) -> None:
    """The noise bank's layout (``noise/noise.npy`` + ``noise/clips.csv``), read by :func:`load_noise_bank`."""
    data = np.concatenate([c.wav for c in clips]).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum([c.wav.size for c in clips])[:-1]])
    with atomic_path(root / "noise" / "noise.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, data)
    with atomic_path(root / "noise" / "clips.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "split", "offset", "length"])
        for c, s, o in zip(clips, splits, offsets, strict=True):
            w.writerow([c.name, s, int(o), c.wav.size])


# ----------------------------------------------------------------------------------------------
# Worker side: state is loaded once per process by the pool initializer.

_WORKER: dict = {}


def _init_worker(root: str, config: dict) -> None:
    cfg = CorpusConfig.from_json(config)
    _WORKER.update(root=Path(root), cfg=cfg, utterances=load_utterances(root, cfg.sample_rate))
    _WORKER["groups"] = _WORKER["utterances"].speaker_groups()
    _WORKER["noise"] = load_noise_bank(root)
    _WORKER["noise_clips"] = {}
    _WORKER["pools"] = {}


def _worker_pitch() -> dict[str, float]:
    """Speaker pitch for pitch-aware pairing, measured (or read from its cache) on first use."""
    if "pitch" not in _WORKER:
        _WORKER["pitch"] = corpus_speaker_pitch(_WORKER["root"], _WORKER["utterances"])
    return _WORKER["pitch"]


def _room_task(index: int):
    cfg: CorpusConfig = _WORKER["cfg"]
    rng = np.random.default_rng([cfg.seed, _STREAM_CODE["rooms"], index])
    room = sample_room(rng, cfg.rooms, cfg.mixing.num_speakers)
    return room, simulate_room(room, cfg.sample_rate, max_order=cfg.rooms.max_order)


def _fmt(values, scale=1.0) -> str:
    return ";".join(f"{v * scale:.4f}" if isinstance(v, float) else str(v) for v in values)


def _mixture_task(task: tuple[str, str | None, int]) -> dict:
    split, condition, index = task
    root: Path = _WORKER["root"]
    cfg: CorpusConfig = _WORKER["cfg"]
    mixing = condition_mixing(cfg, condition)
    mixture_id = f"{split}_{index:06d}" if condition is None else f"{split}_{condition}_{index:06d}"
    folder = set_dir(root, split, condition)
    meta = folder / "meta" / f"{mixture_id}.json"
    if meta.exists():  # written last: the mixture is complete
        return json.loads(meta.read_text())
    utt: Utterances = _WORKER["utterances"]
    if split not in _WORKER["pools"]:
        _WORKER["pools"][split] = utt.speaker_pools(split)
        _WORKER["noise_clips"][split] = _WORKER["noise"].clips(split)
    sr = cfg.sample_rate
    rooms = {}

    def responses(rng):
        rooms["room"] = room = sample_room(rng, cfg.rooms, cfg.mixing.num_speakers)
        return (-1, *simulate_room(room, sr, max_order=cfg.rooms.max_order))

    # One random stream per (split, condition, mixture); a condition's code is a hash of its name.
    stream = [_STREAM_CODE[split]] if condition is None else [_STREAM_CODE[split], zlib.crc32(condition.encode())]
    rng = np.random.default_rng([cfg.seed, *stream, index])
    plan, out = synthesize(rng, _WORKER["pools"][split], utt.lengths, utt.load, _WORKER["noise_clips"][split],
                           responses, mixing, sr, speaker_groups=_WORKER["groups"], bandwidths=utt.bandwidths,
                           speaker_pitch=_worker_pitch() if mixing.uses_pitch else None)
    room = rooms["room"]
    streams = {"mix": out.mixture, "noise": out.noise}
    for k in range(out.reverb.shape[0]):
        streams[f"s{k + 1}"] = out.reverb[k]
        if cfg.write_direct:
            streams[f"s{k + 1}_direct"] = out.direct[k]
    for name in stream_names(out.reverb.shape[0], cfg.write_direct):
        write_audio(folder / name / f"{mixture_id}.wav", streams[name], sr, subtype=cfg.subtype)
    row = {"split": split, "condition": condition or "", "id": mixture_id}
    for k, (spk, places) in enumerate(zip(plan.speakers, plan.placements, strict=True)):
        row[f"s{k + 1}_speaker"] = spk
        row[f"s{k + 1}_utterances"] = _fmt([utt.ids[p.utterance] for p in places])
        row[f"s{k + 1}_starts_s"] = _fmt([p.start / sr for p in places])
        row[f"s{k + 1}_offsets_s"] = _fmt([p.source_offset / sr for p in places])
        row[f"s{k + 1}_gain_db"] = round(float(out.gains_db[k]), 4)
        row[f"s{k + 1}_distance_m"] = round(float(np.linalg.norm(room.sources[k] - room.mic)), 3)
        row[f"s{k + 1}_speed"] = round(plan.speeds[k], 4)
    noisy = plan.noise != "none"
    row.update(
        relative_level_db=round(plan.relative_level_db, 4),
        noise=plan.noise, snr_db=round(plan.snr_db, 4) if noisy else "",
        noise_clip=_WORKER["noise"].names[[i for i, s in enumerate(_WORKER["noise"].splits) if s == split][plan.noise_clip]]
        if noisy else "",
        noise_offset_s=round(plan.noise_offset / sr, 4) if noisy else "",
        noise_gain_db=round(out.noise_gain_db, 4) if noisy else "",
        reverb="anechoic" if plan.dry else "reverberant", overlap=round(plan.overlap, 4),
        bandwidth_hz="" if math.isinf(out.bandwidth_hz) else round(out.bandwidth_hz),
        room_length_m=round(float(room.dims[0]), 3), room_width_m=round(float(room.dims[1]), 3),
        room_height_m=round(float(room.dims[2]), 3), rt60_s=round(room.rt60, 4),
    )
    write_json(meta, row)
    return row


# ----------------------------------------------------------------------------------------------
# Parent side.


class _Stages:
    def __init__(self, root: Path):
        self.dir = root / ".stages"

    def done(self, name: str) -> bool:
        return (self.dir / f"{name}.done").exists()

    def mark(self, name: str, info: dict | None = None) -> None:
        write_json(self.dir / f"{name}.done", info or {})


def mp_context():
    """fork where the platform has it: workers run numpy/scipy/pyroomacoustics only (never torch,
    whose thread pools do not survive a fork), and fork works from scripts without a main guard."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _pool(processes: int, root: Path, cfg: CorpusConfig):
    return mp_context().Pool(processes, initializer=_init_worker, initargs=(str(root), cfg.to_json()))


def _run_tasks(pool, fn, tasks: list, label: str, log: Log) -> list:
    out, start, step = [], time.time(), max(1, len(tasks) // 10)
    for i, result in enumerate(pool.imap(fn, tasks, chunksize=4), 1):
        out.append(result)
        if i % step == 0 or i == len(tasks):
            log(f"  {label}: {i}/{len(tasks)} ({time.time() - start:.1f} s)")
    return out


def _check_config(root: Path, cfg: CorpusConfig) -> None:
    path = root / "corpus.json"
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != cfg.to_json():
            diff = sorted(k for k in stored.keys() | cfg.to_json().keys() if stored.get(k) != cfg.to_json().get(k))
            raise ValueError(
                f"{root} holds a corpus built with other settings (differs in: {', '.join(diff)}); "
                "use another --root, or delete it to rebuild"
            )
    else:
        write_json(path, cfg.to_json())


def build_corpus(
    root: str | os.PathLike,
    cfg: CorpusConfig,
    make_speech: Callable[[], tuple[Utterances, list[np.ndarray] | None, dict]],
    make_noise: Callable[[], tuple[list[NoiseClip], dict]],
    *,
    processes: int = 2,
    log: Log = print,
) -> dict:
    """Build (or finish building) the corpus at ``root``; returns the build report.

    ``make_speech()`` returns the utterance table with splits assigned, the decoded samples when
    they should be stored in the corpus (``None`` when the table points at files), and a report of
    what it skipped. ``make_noise()`` returns the clips and a report. Each runs only if its stage
    is not complete yet.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _check_config(root, cfg)
    stages = _Stages(root)
    report_path = root / "build_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"timings_s": {}}
    t_all = time.time()

    if not stages.done("speech"):
        t = time.time()
        log("[speech] reading utterances")
        utts, samples, speech_report = make_speech()
        if samples is not None:
            from speechsep.data.utterances import write_int16_array

            utts.offsets = write_int16_array(root / "speech" / "utterances.npy", samples)
        utts.save_table(root / "speech" / "utterances.csv")
        report["speech"] = speech_report
        report["timings_s"]["speech"] = round(time.time() - t, 1)
        write_json(report_path, report)
        stages.mark("speech")
    utts = load_utterances(root, cfg.sample_rate)
    for split in SPLITS:
        pools = utts.speaker_pools(split)
        n = sum(len(v) for v in pools.values())
        log(f"[speech] {split}: {len(pools)} speakers, {n} utterances, "
            f"{sum(int(utts.lengths[i]) for v in pools.values() for i in v) / cfg.sample_rate / 60:.1f} min")

    if not stages.done("noise"):
        t = time.time()
        log("[noise] reading noise clips")
        clips, noise_report = make_noise()
        splits = split_noise(clips, cfg.seed)
        write_noise(root, clips, splits)
        report["noise"] = noise_report
        report["timings_s"]["noise"] = round(time.time() - t, 1)
        write_json(report_path, report)
        stages.mark("noise")

    with _pool(processes, root, cfg) as pool:
        if cfg.room_bank_size > 0 and not stages.done("rooms"):
            t = time.time()
            log(f"[rooms] simulating {cfg.room_bank_size} rooms for dynamic mixing")
            results = _run_tasks(pool, _room_task, list(range(cfg.room_bank_size)), "rooms", log)
            RoomBank.from_rooms(cfg.sample_rate, [r for r, _ in results], [x for _, x in results]).save(
                root / "train" / "rooms.npz"
            )
            report["timings_s"]["rooms"] = round(time.time() - t, 1)
            write_json(report_path, report)
            stages.mark("rooms")
        for split in SPLITS:
            count = int(cfg.counts.get(split, 0))
            for condition in _set_names(cfg):
                name = split if condition is None else f"{split}/{condition}"
                stage = "mix-" + name.replace("/", "-")
                if count <= 0 or stages.done(stage):
                    continue
                t = time.time()
                log(f"[{name}] {count} mixtures")
                rows = _run_tasks(pool, _mixture_task, [(split, condition, i) for i in range(count)], name, log)
                _write_manifest(set_dir(root, split, condition) / "manifest.csv", rows)
                report["timings_s"][stage] = round(time.time() - t, 1)
                write_json(report_path, report)
                stages.mark(stage, {"count": count})

    rows = []
    for split in SPLITS:
        for condition in _set_names(cfg):
            manifest = set_dir(root, split, condition) / "manifest.csv"
            if manifest.exists():
                with open(manifest, newline="") as f:
                    rows += list(csv.DictReader(f))
    _write_manifest(root / "manifest.csv", rows)
    report["timings_s"]["total_last_run"] = round(time.time() - t_all, 1)
    write_json(report_path, report)
    stages.mark("complete")
    log(f"done: {root} ({len(rows)} fixed mixtures)")
    return report


def _write_manifest(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
