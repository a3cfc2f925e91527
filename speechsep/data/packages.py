"""Fetching and unpacking Debian packages without installing them (no engine, no root needed).

``apt-get download`` fetches a ``.deb`` into the current folder; we keep them in a cache
(``~/.cache/speechsep/debs``) so a second build does not download again, and unpack each once into
``~/.cache/speechsep/unpacked/<deb name>`` (``dpkg -x``, or our own reader of the ``ar`` + ``tar``
container where dpkg is missing). A ``.complete`` marker is written after unpacking, so an
interrupted unpack is redone rather than trusted.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

__all__ = ["PackageError", "cache_dir", "download_deb", "unpack_deb"]


class PackageError(RuntimeError):
    """A package could not be fetched; the message says what to install or which option to use."""


def cache_dir() -> Path:
    """``$SPEECHSEP_CACHE``, else ``$XDG_CACHE_HOME/speechsep``, else ``~/.cache/speechsep``."""
    if os.environ.get("SPEECHSEP_CACHE"):
        return Path(os.environ["SPEECHSEP_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "speechsep"


def _cached(debs: Path, package: str) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def download_deb(package: str, debs: Path, *, hint: str, log=print) -> Path:
    """The cached ``.deb`` of ``package``, downloading it with ``apt-get download`` if needed."""
    debs.mkdir(parents=True, exist_ok=True)
    if (hit := _cached(debs, package)) is not None:
        return hit
    if shutil.which("apt-get") is None:
        raise PackageError(
            f"apt-get is not available, so the Debian package {package!r} cannot be fetched. "
            f"Download {package}_*.deb from https://packages.debian.org/stable/all/{package}/download "
            f"and {hint}"
        )
    log(f"downloading {package} with apt-get into {debs}")

    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)

    result = attempt()
    if result.returncode != 0:
        # A fresh machine often has no package lists yet; refresh them once and retry.
        log(f"apt-get download failed ({result.stderr.strip().splitlines()[-1:]}); running apt-get update")
        subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        result = attempt()
    if result.returncode != 0 or (hit := _cached(debs, package)) is None:
        raise PackageError(
            f"apt-get download {package} failed: {result.stderr.strip()[-400:]}\n"
            f"Enable Debian's 'main' archive (then `apt-get update`), or {hint}"
        )
    return hit


def _extract_with_python(deb: Path, target: Path) -> None:
    """A .deb is an ``ar`` archive whose ``data.tar.*`` member holds the files."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise PackageError(f"{deb} is not a Debian package (no ar header)")
        while header := f.read(60):
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            body = f.read(size)
            if size % 2:
                f.read(1)
            if name.startswith("data.tar"):
                with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                    tar.extractall(target, filter="data")
                return
    raise PackageError(f"{deb} has no data.tar member")


def unpack_deb(deb: Path, unpacked_root: Path, *, log=print) -> Path:
    """Unpack ``deb`` once into ``unpacked_root/<deb stem>``; returns that folder."""
    target = unpacked_root / deb.stem
    marker = target / ".complete"
    if marker.exists():
        return target
    if target.exists():
        shutil.rmtree(target)  # a previous unpack was interrupted
    target.mkdir(parents=True)
    log(f"unpacking {deb.name}")
    if shutil.which("dpkg") is not None:
        result = subprocess.run(["dpkg", "-x", str(deb), str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            raise PackageError(f"dpkg -x {deb} failed: {result.stderr.strip()}")
    else:
        _extract_with_python(deb, target)
    marker.touch()
    return target
