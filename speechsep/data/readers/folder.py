"""The generic layout: a folder of mixtures and one folder per source, files matched by name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

__all__ = ["MixtureItem", "require", "folder_items", "scan_items"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class MixtureItem:
    id: str
    mixture: Path
    sources: tuple[Path, ...]


def require(path: Path, layout: str) -> Path:
    """``path`` if it exists, else ``FileNotFoundError`` naming it and the expected layout."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing (expected layout: {layout})")
    return path


def folder_items(mixture_dir: str | os.PathLike, source_dirs, *, layout: str | None = None) -> list[MixtureItem]:
    """One item per audio file in ``mixture_dir``; each source folder must hold a file of the same name."""
    mixture_dir = Path(mixture_dir)
    source_dirs = [Path(d) for d in source_dirs]
    layout = layout or "MIXDIR/NAME.wav with S1DIR/NAME.wav, S2DIR/NAME.wav, ..."
    for d in (mixture_dir, *source_dirs):
        require(d, layout)
    mixtures = sorted(p for p in mixture_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not mixtures:
        raise FileNotFoundError(f"{mixture_dir} holds no audio files (expected layout: {layout})")
    items = []
    for m in mixtures:
        sources = tuple(require(d / m.name, layout) for d in source_dirs)
        items.append(MixtureItem(m.stem, m, sources))
    return items


def scan_items(items: list[MixtureItem]) -> list[tuple[str, str]]:
    """Headers of every file: ``(path, problem)`` for each unreadable or empty one, and for each item
    whose files differ in sample rate or length (naming both paths)."""
    problems = []
    for item in items:
        infos = {}
        for p in (item.mixture, *item.sources):
            try:
                info = sf.info(str(p))
            except Exception as err:  # libsndfile raises several types; all mean "cannot decode"
                problems.append((str(p), f"cannot be decoded ({type(err).__name__})"))
                continue
            if info.frames == 0:
                problems.append((str(p), "empty audio"))
                continue
            infos[p] = info
        ref = infos.get(item.mixture)
        for p, info in infos.items():
            if ref is not None and p != item.mixture and (info.samplerate, info.frames) != (ref.samplerate, ref.frames):
                problems.append((str(p), f"{info.frames} samples at {info.samplerate} Hz but {item.mixture} has "
                                         f"{ref.frames} at {ref.samplerate} Hz"))
    return problems
