"""Simulated rooms: random shoebox geometry and RT60, impulse responses by the image method.

The distribution is the iterative paper's (Sec. 3.1, after Luo et al. ICASSP 2020): length and
width uniform in 3-10 m, height uniform in 2.5-4 m, RT60 uniform in 0.1-0.5 s, random source and
microphone positions. The paper used gpuRIR; we use pyroomacoustics' image method (Allen & Berkley
1979) with wall absorption from Sabine's formula. The full reflection order needed for a 0.5 s
RT60 in a 3 m room is near 90 (about 2 s a room); like gpuRIR's diffuse-tail option we compute the
image sources up to order ``max_order`` (default 12, tens of milliseconds) and continue the
response after the time up to which those images are complete with an exponentially decaying
Gaussian tail, 60 dB down after RT60 and matched in level to the last image-method stretch. Sabine cannot reach a
short RT60 in a large room (absorption would exceed 1); such (room, RT60) draws are redrawn
together, which slightly favours smaller rooms at RT60 near 0.1 s.

Every room gives two impulse responses per source at the microphone: the full reverberant one
(the default training target is the dry source convolved with it) and the direct path alone
(same delay and 1/r attenuation, no reflections; the dereverberation target).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechsep.utils import atomic_path

__all__ = ["RoomDistribution", "RoomSample", "sample_room", "simulate_room", "RoomBank"]


@dataclass
class RoomDistribution:
    length: tuple[float, float] = (3.0, 10.0)
    width: tuple[float, float] = (3.0, 10.0)
    height: tuple[float, float] = (2.5, 4.0)
    rt60: tuple[float, float] = (0.1, 0.5)
    wall_margin: float = 0.5  # metres between any source/microphone and the walls
    position_height: tuple[float, float] = (1.0, 2.0)  # heads and table microphones
    min_source_distance: float = 0.5  # metres from each source to the microphone
    max_order: int = 12  # image-method order; the rest of the response is the modelled tail


@dataclass
class RoomSample:
    dims: np.ndarray  # (3,) metres
    rt60: float  # seconds
    mic: np.ndarray  # (3,)
    sources: np.ndarray  # (C, 3)
    tail_seed: int = 0  # seeds the diffuse tail, so a room is the same wherever it is simulated


def _feasible_absorption(rt60: float, dims: np.ndarray) -> tuple[float, int] | None:
    import pyroomacoustics as pra

    try:
        return pra.inverse_sabine(rt60, dims)
    except ValueError:
        return None


def _position(rng: np.random.Generator, dims: np.ndarray, dist: RoomDistribution) -> np.ndarray:
    m = dist.wall_margin
    return np.array([rng.uniform(m, dims[0] - m), rng.uniform(m, dims[1] - m), rng.uniform(*dist.position_height)])


def sample_room(rng: np.random.Generator, dist: RoomDistribution, num_sources: int = 2) -> RoomSample:
    for _ in range(1000):
        dims = np.array([rng.uniform(*dist.length), rng.uniform(*dist.width), rng.uniform(*dist.height)])
        rt60 = float(rng.uniform(*dist.rt60))
        if _feasible_absorption(rt60, dims) is None:
            continue

        mic = _position(rng, dims, dist)
        sources = []
        while len(sources) < num_sources:
            p = _position(rng, dims, dist)
            if np.linalg.norm(p - mic) >= dist.min_source_distance:
                sources.append(p)
        return RoomSample(dims, rt60, mic, np.stack(sources), int(rng.integers(2**32)))
    raise ValueError(f"no feasible room in 1000 draws from {dist}")


def _pad_stack(rirs: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(rirs), max(r.size for r in rirs)), dtype=np.float32)
    for i, r in enumerate(rirs):
        out[i, : r.size] = r
    return out


def _trim(rir: np.ndarray, floor_db: float = -60.0) -> np.ndarray:
    """Cut the (C, L) responses where every source's remaining energy is below ``floor_db``."""
    energy = np.cumsum((rir.astype(np.float64) ** 2)[:, ::-1], axis=1)[:, ::-1]  # energy from t on
    keep = energy > energy[:, :1] * 10 ** (floor_db / 10)
    last = int(np.max(np.nonzero(keep.any(axis=0))[0])) + 1
    return rir[:, :last]


def _diffuse_tail(ism: np.ndarray, start: int, rt60: float, sample_rate: int, rng: np.random.Generator,
                  fade: int) -> np.ndarray:
    """Replace ``ism[start:]`` by Gaussian noise decaying 60 dB per RT60 (Schroeder's diffuse-field
    model), scaled to the image-method energy just before ``start``; raised-cosine crossfade."""
    window = ism[max(0, start - 2 * fade) : start]
    level = float(np.sqrt(np.mean(window.astype(np.float64) ** 2))) if window.size else 0.0
    length = start + int(rt60 * sample_rate)
    t = np.arange(length - start) / sample_rate
    tail = rng.standard_normal(length - start) * level * 10 ** (-3.0 * t / rt60)  # -60 dB at t = RT60
    out = np.zeros(length, dtype=np.float64)
    n = min(ism.size, length)
    out[:n] = ism[:n]
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)  # 0 -> 1
    keep = np.ones(length - start)
    keep[:fade] = 1 - ramp
    keep[fade:] = 0
    out[start:] = out[start:] * keep + tail * np.concatenate([ramp, np.ones(length - start - fade)])
    return out.astype(np.float32)


def simulate_room(room: RoomSample, sample_rate: int, *, max_order: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Responses at the microphone: ``(reverberant (C, L), direct (C, Ld))`` float32."""
    import pyroomacoustics as pra

    absorption, full_order = _feasible_absorption(room.rt60, room.dims)
    order = min(full_order, max_order)
    responses = []
    for k in (order, 0):  # order 0 = the direct path only, same delay and attenuation
        sim = pra.ShoeBox(room.dims, fs=sample_rate, materials=pra.Material(absorption), max_order=k)
        for s in room.sources:
            sim.add_source(s)
        sim.add_microphone(room.mic)
        sim.compute_rir()
        responses.append([np.asarray(r, dtype=np.float32) for r in sim.rir[0]])
    reverb, direct = responses
    if order < full_order:
        # Every path shorter than `order` crossings of the room is among the images; a path of
        # length d crosses the room about d * (1/Lx + 1/Ly + 1/Lz) times.
        complete_m = order / float(np.sum(1.0 / room.dims))
        start = int(complete_m / pra.constants.get("c") * sample_rate) + pra.constants.get("frac_delay_length") // 2
        rng = np.random.default_rng(room.tail_seed)
        fade = max(1, int(0.005 * sample_rate))
        reverb = [_diffuse_tail(r, start, room.rt60, sample_rate, rng, fade) for r in reverb]
    return _trim(_pad_stack(reverb)), _pad_stack(direct)


@dataclass
class RoomBank:
    """Precomputed rooms for dynamic mixing: reusing them makes a new mixture cost two FFT convolutions."""

    sample_rate: int
    reverb: np.ndarray  # (N, C, L) float32, zero-padded
    reverb_length: np.ndarray  # (N,) valid samples of each room's responses
    direct: np.ndarray  # (N, C, Ld)
    dims: np.ndarray  # (N, 3)
    rt60: np.ndarray  # (N,)

    def __len__(self) -> int:
        return int(self.reverb.shape[0])

    def responses(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.reverb[index, :, : self.reverb_length[index]], self.direct[index]

    @classmethod
    def from_rooms(cls, sample_rate: int, rooms: list[RoomSample], rirs: list[tuple[np.ndarray, np.ndarray]]):
        def stack(arrays):
            out = np.zeros((len(arrays), arrays[0].shape[0], max(a.shape[1] for a in arrays)), np.float32)
            for i, a in enumerate(arrays):
                out[i, :, : a.shape[1]] = a
            return out

        return cls(
            sample_rate=sample_rate,
            reverb=stack([r for r, _ in rirs]),
            reverb_length=np.array([r.shape[1] for r, _ in rirs], dtype=np.int64),
            direct=stack([d for _, d in rirs]),
            dims=np.stack([r.dims for r in rooms]).astype(np.float32),
            rt60=np.array([r.rt60 for r in rooms], dtype=np.float32),
        )

    def save(self, path: str | os.PathLike) -> Path:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, sample_rate=self.sample_rate, reverb=self.reverb, reverb_length=self.reverb_length,
                     direct=self.direct, dims=self.dims, rt60=self.rt60)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RoomBank:
        with np.load(path) as z:
            return cls(int(z["sample_rate"]), z["reverb"], z["reverb_length"], z["direct"], z["dims"], z["rt60"])
