"""Test kit for the serve and export tests: a tiny real causal separator, a test signal, a reference.

Axis legend: B batch, C sources, T samples, H hidden channels, K conv kernel.

Sample-rate conv encoder (causal: K-1 past samples cached) -> one-way LSTM -> sigmoid masks on the
mixture -> a pure delay of ``latency`` samples (a stand-in for an STFT model's look-ahead, so tests
see a non-zero latency). ``forward`` runs ``step`` from the initial state over the whole input (and
``latency`` samples more, to undo the delay), so the arithmetic exists once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from typing import NamedTuple

import numpy as np
import soxr
import torch
import uvicorn
from torch import nn

from bench.serve_load import free_port
from speechsep.models.base import ModelConfig, SeparationModel
from speechsep.utils import check_waveform_batch


@dataclasses.dataclass
class ToyConfig(ModelConfig):
    hidden: int = 8
    kernel: int = 9
    latency: int = 3
    #: the hop it declares (it has no frames: any value is honest; the export test sets one)
    hop: int = 1


class ToyState(NamedTuple):
    #: (B, K-1) the last input samples the encoder's kernel still needs
    conv_cache: torch.Tensor
    #: ((1, B, H), (1, B, H)) the LSTM's hidden and cell states
    lstm: tuple[torch.Tensor, torch.Tensor]
    #: (B, C, latency) separated samples computed but not yet released
    delay: torch.Tensor


class ToyCausalSeparator(SeparationModel):
    family = "toy-causal"  # deliberately not registered: tests only
    config_class = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        h = config.hidden
        self.encoder = nn.Conv1d(1, h, config.kernel)
        self.lstm = nn.LSTM(h, h, batch_first=True)
        self.masker = nn.Conv1d(h, config.num_sources, 1)

    @property
    def is_causal(self) -> bool:
        return True

    @property
    def latency(self) -> int:
        return self.config.latency

    @property
    def hop(self) -> int:
        return self.config.hop

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples=None) -> ToyState:
        h, k, c = self.config.hidden, self.config.kernel, self.config.num_sources
        zeros = torch.zeros(1, batch_size, h)
        return ToyState(torch.zeros(batch_size, k - 1), (zeros, zeros.clone()),
                        torch.zeros(batch_size, c, self.config.latency))

    def _run(self, x: torch.Tensor, state: ToyState) -> tuple[torch.Tensor, ToyState]:
        padded = torch.cat([state.conv_cache, x], dim=-1)  # (B, K-1+T)
        feats = torch.relu(self.encoder(padded[:, None]))  # (B, H, T)
        y, lstm_state = self.lstm(feats.transpose(1, 2), state.lstm)  # (B, T, H)
        masks = torch.sigmoid(self.masker(y.transpose(1, 2)))  # (B, C, T)
        est = torch.cat([state.delay, masks * x[:, None]], dim=-1)  # (B, C, latency+T)
        t = x.shape[-1]
        keep = self.config.kernel - 1
        return est[..., :t], ToyState(padded[:, padded.shape[-1] - keep:], lstm_state, est[..., t:])

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        # offline output is not delayed (the contract: stream output = forward delayed by latency),
        # so run `latency` samples past the end and drop the first `latency`
        x = check_waveform_batch(mixture)
        padded = torch.nn.functional.pad(x, (0, self.config.latency))
        return self._run(padded, self.init_state(x.shape[0]))[0][..., self.config.latency :]

    def step(self, chunk: torch.Tensor, state: ToyState) -> tuple[torch.Tensor, ToyState]:
        if chunk.dim() != 2:
            raise ValueError(f"chunk must be (batch, n); got {tuple(chunk.shape)}")
        return self._run(chunk, state)


class GainSeparator(SeparationModel):
    """Source c is the mixture times (c + 1) / C: almost no compute, so its output outruns any
    reader (the slow-client test). State: samples seen so far, as a 0-d tensor."""

    family = "gain-test"
    config_class = ModelConfig

    @property
    def is_causal(self) -> bool:
        return True

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples=None) -> torch.Tensor:
        return torch.zeros((), dtype=torch.int64)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        x = check_waveform_batch(mixture)
        return self.step(x, self.init_state(x.shape[0]))[0]

    def step(self, chunk: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config.num_sources
        gains = torch.arange(1, c + 1, dtype=chunk.dtype) / c
        return chunk[:, None] * gains[:, None], state + chunk.shape[-1]


def toy_model(**overrides) -> ToyCausalSeparator:
    torch.manual_seed(0)
    return ToyCausalSeparator(ToyConfig(**overrides)).eval()


def two_tone_mixture(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A deterministic test signal: two tones with different envelopes plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    a = 0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
    b = 0.2 * np.sin(2 * np.pi * 1250 * t) * (t % 0.4 < 0.2)
    return (a + b + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _at_model_rate(separate, model: SeparationModel, wav: np.ndarray, client_rate: int, quality: str) -> np.ndarray:
    """``separate (T',) -> (C, T')`` applied at the model's rate, with the whole input through soxr's
    stream resamplers (as a live session uses them) there and back, then cut or zero-padded to the
    input's length (as a session ends). ``(C, T)`` at ``client_rate``."""
    x = np.asarray(wav, dtype=np.float32)
    if client_rate != model.sample_rate:
        x = soxr.ResampleStream(client_rate, model.sample_rate, 1, "float32", quality).resample_chunk(x, last=True)
    y = separate(np.ascontiguousarray(x))
    if client_rate != model.sample_rate:
        back = soxr.ResampleStream(model.sample_rate, client_rate, y.shape[0], "float32", quality)
        y = back.resample_chunk(np.ascontiguousarray(y.T), last=True).T
    y = np.pad(y, ((0, 0), (0, max(0, wav.shape[-1] - y.shape[1]))))[:, : wav.shape[-1]]
    return np.ascontiguousarray(y)


def offline_reference(model: SeparationModel, wav: np.ndarray, client_rate: int, quality: str = "LQ") -> np.ndarray:
    """What a live session must return for ``wav``, computed in one piece: the model's offline forward
    delayed by its latency (a stream delivers the offline output ``latency`` samples late)."""

    def forward_delayed(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = model(torch.from_numpy(x)[None])[0].numpy()  # (C, T')
        return np.pad(y, ((0, 0), (model.latency, 0)))[:, : y.shape[1]]

    return _at_model_rate(forward_delayed, model, wav, client_rate, quality)


def streamed_reference(model: SeparationModel, wav: np.ndarray, client_rate: int, chunk_ms: float = 16.0,
                       quality: str = "LQ") -> np.ndarray:
    """The same through ``speechsep stream``'s loop: ``model.step`` over fixed ``chunk_ms`` chunks, not
    aligned (so, like a live stream, ``latency`` samples late)."""
    from speechsep.inference.streaming import stream_through_model

    chunk = max(1, round(model.sample_rate * chunk_ms / 1000))
    return _at_model_rate(lambda x: stream_through_model(model, torch.from_numpy(x)[None], chunk, align=False)[0][0].numpy(),
                          model, wav, client_rate, quality)


@contextlib.contextmanager
def running_server(app, ws_max_size: int = 2**22):
    """uvicorn serving ``app`` on a free loopback port in a thread; yields ``http://127.0.0.1:PORT``."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=ws_max_size,
                            ws_per_message_deflate=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
