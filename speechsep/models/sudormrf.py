"""SuDoRM-RF: successive downsampling and resampling of multi-resolution features (Tzinis, Wang and
Smaragdis, "Sudo rm -rf: efficient networks for universal audio source separation", MLSP 2020).

Axis legend:
    B  batch          C  sources            T  samples           n  samples in a streamed chunk
    N  encoder bases (N_E)                  D  bottleneck channels (the paper's B)
    M  U-ConvBlock inner channels (the paper's C)                K  encoder frames
    Q  resolutions per U-ConvBlock (the paper's upsampling depth)

Pipeline (Sec. 2, Fig. 1): learnable conv encoder (21-sample kernel, stride 10 at 8 kHz) + ReLU ->
norm + 1x1 conv bottleneck N -> D -> R U-ConvBlocks -> PReLU + 1x1 conv to C x N masks -> masks
times the encoder output -> transposed-conv decoder (one basis shared by the sources), cut to the
input length.

U-ConvBlock (Sec. 2.2, Fig. 2): a 1x1 conv expands D -> M (norm, PReLU); a depth-wise conv (stride 1)
gives resolution 0, and Q - 1 depth-wise convs with stride 2 each halve the frame rate in turn (each
followed by a norm, no activation); from the coarsest up, every resolution is upsampled by
nearest-neighbour interpolation and added to the next finer one; the sum is normalised, PReLU'd,
projected back M -> D by a 1x1 conv and added to the block input.

Causal variant (``causal=True``; in the spirit of C-SuDoRM-RF, Tzinis et al., "Compute and memory
efficient universal sound source separation", JSPS 2022): causal framing in the codec, depth-wise
convs padded only on the past (coarse frame ``j`` reads finer frames up to ``2 j``), per-frame
channel layer norms instead of the global layer norm. Nearest upsampling gives fine frame ``t`` the
coarse frame ``floor(t / 2)``, which reads fine frames up to ``2 floor(t / 2) <= t``: the pyramid adds
no look-ahead, and the model's latency is the encoder window (``W - 1 = 20`` samples at 8 kHz).
``forward`` of the causal model runs the streaming code from the initial state over all frames.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
from torch import nn

from speechsep.blocks.encoders import ConvDecoder, ConvEncoder
from speechsep.blocks.framing import AlignerState, FramerState, OutputAligner, OverlapAddState
from speechsep.blocks.norm import ChannelLayerNorm
from speechsep.models.base import ModelConfig, SeparationModel, StreamingNotSupported
from speechsep.registry import register_model, register_preset
from speechsep.utils import check_waveform_batch

__all__ = ["SuDoRMRFConfig", "SuDoRMRF", "UConvBlock", "UBlockState", "SuDoRMRFState", "MASKS"]

MASKS = ("relu", "sigmoid", "softmax")


@dataclasses.dataclass
class SuDoRMRFConfig(ModelConfig):
    """SuDoRM-RF sizes; defaults: the paper's 1.0x model at 8 kHz (Sec. 3.3: N_E=512, B=128, C=512,
    R=16, Q=4, encoder kernel 21 with stride 10)."""

    enc_kernel: int = 21  #: encoder/decoder window (samples)
    enc_stride: int = 10  #: encoder hop (samples): 800 frames a second at 8 kHz
    enc_bases: int = 512  #: N (N_E)
    bottleneck: int = 128  #: D (the paper's B)
    hidden: int = 512  #: M (the paper's C), channels inside a U-ConvBlock
    num_blocks: int = 16  #: R
    depth: int = 4  #: Q, resolutions per U-ConvBlock (Q - 1 halvings)
    dw_kernel: int = 5  #: depth-wise conv kernel (frames), odd
    mask: str = "relu"  #: "relu" (the paper), "sigmoid", or "softmax" over the sources
    causal: bool = False  #: causal convs and per-frame norms; streams

    def __post_init__(self) -> None:
        if self.mask not in MASKS:
            raise ValueError(f"sudormrf mask must be one of {MASKS}; got {self.mask!r}")
        if self.dw_kernel < 1 or self.dw_kernel % 2 == 0:
            raise ValueError(f"sudormrf dw_kernel must be odd; got {self.dw_kernel}")
        if self.depth < 1 or self.num_blocks < 1:
            raise ValueError(f"need depth >= 1 and num_blocks >= 1; got {self.depth}, {self.num_blocks}")


def _norm(channels: int, causal: bool) -> nn.Module:
    # gLN (GroupNorm with one group: mean and variance over channels and all frames) reads the whole
    # utterance; the causal model normalises each frame over its channels only
    return ChannelLayerNorm(channels, eps=1e-8) if causal else nn.GroupNorm(1, channels, eps=1e-8)


class UBlockState(NamedTuple):
    """Streaming state of one :class:`UConvBlock`.

    caches: per resolution ``q``, the last ``dw_kernel - 1`` frames of its depth-wise conv's input
        (resolution ``q - 1``, or the expanded input for ``q = 0``), each ``(B, M, dw_kernel - 1)``.
    lasts: per resolution ``q >= 1``, its last summed (resolution q and coarser) frame ``(B, M, 1)``:
        the coarse frame an odd finer frame at the start of the next chunk is upsampled from.
    position: input frames the block has had (where each resolution's next frame lies).
    """

    caches: list[torch.Tensor]
    lasts: list[torch.Tensor]
    position: int = 0


def _upsample(coarse: torch.Tensor, last: torch.Tensor | None, position: int, count: int) -> torch.Tensor:
    """Nearest upsampling by 2 of coarse frames onto ``count`` finer frames from ``position`` on.

    Fine frame ``t`` takes coarse frame ``t // 2``. ``coarse`` holds coarse frames from
    ``ceil(position / 2)`` on; an odd ``position`` also needs coarse frame ``(position - 1) / 2``,
    which is ``last`` (from the previous chunk). (B, M, k) -> (B, M, count).
    """
    if position % 2:
        coarse = torch.cat([last, coarse], dim=-1)
    # (B, M, k) -> (B, M, 2 k): every coarse frame twice, from fine frame 2 * (position // 2)
    return coarse.repeat_interleave(2, dim=-1)[..., position % 2 : position % 2 + count]


class UConvBlock(nn.Module):
    """One U-ConvBlock on ``(B, D, K)``; see the module doc (paper Sec. 2.2, Fig. 2)."""

    def __init__(self, channels: int, hidden: int, depth: int, kernel: int, causal: bool):
        super().__init__()
        self.hidden, self.depth, self.kernel, self.causal = hidden, depth, kernel, causal
        self.expand = nn.Sequential(nn.Conv1d(channels, hidden, 1), _norm(hidden, causal), nn.PReLU())
        pad = 0 if causal else kernel // 2
        self.dw = nn.ModuleList(
            nn.Conv1d(hidden, hidden, kernel, stride=1 if q == 0 else 2, padding=pad, groups=hidden)
            for q in range(depth)
        )
        self.dw_norms = nn.ModuleList(_norm(hidden, causal) for _ in range(depth))
        self.out_norm = _norm(hidden, causal)
        self.act = nn.PReLU()
        self.project = nn.Conv1d(hidden, channels, 1)

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> UBlockState:
        w = self.project.weight
        kw = {"device": device or w.device, "dtype": dtype or w.dtype}
        caches = [torch.zeros(batch_size, self.hidden, self.kernel - 1, **kw) for _ in range(self.depth)]
        lasts = [torch.zeros(batch_size, self.hidden, 1, **kw) for _ in range(self.depth - 1)]
        return UBlockState(caches, lasts)

    def _causal_dw(self, q: int, x: torch.Tensor, cache: torch.Tensor, position: int) -> torch.Tensor:
        """Depth-wise conv ``q`` on the new input frames ``x`` (B, M, n) at ``position`` of its input rate.

        Output frame ``j`` reads input frames ``[s j - (kernel - 1), s j]`` (stride ``s``); the ones
        this chunk completes are those with ``s j`` in ``[position, position + n)``.
        """
        conv = self.dw[q]
        stride = conv.stride[0]
        full = torch.cat([cache, x], dim=-1)  # input frames from position - (kernel - 1)
        start = (-position) % stride  # first input frame that ends an output frame, from position
        if full.shape[-1] - start < self.kernel:
            return x.new_zeros(x.shape[0], self.hidden, 0)
        return conv(full[..., start:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, K) -> (B, D, K), a whole utterance (a causal block: :meth:`step` from its initial state)."""
        if self.causal:
            return self.step(x, self.init_state(x.shape[0], device=x.device, dtype=x.dtype))[0]
        y = self.expand(x)  # (B, M, K)
        levels = [self.dw_norms[0](self.dw[0](y))]
        for q in range(1, self.depth):  # each (B, M, ceil(K_{q-1} / 2))
            levels.append(self.dw_norms[q](self.dw[q](levels[-1])))
        for q in range(self.depth - 1, 0, -1):
            levels[q - 1] = levels[q - 1] + _upsample(levels[q], None, 0, levels[q - 1].shape[-1])
        return x + self.project(self.act(self.out_norm(levels[0])))

    def step(self, x: torch.Tensor, state: UBlockState) -> tuple[torch.Tensor, UBlockState]:
        """(B, D, n) -> (B, D, n): the next ``n`` frames of a stream continuing ``state`` (causal only)."""
        if not self.causal:
            raise ValueError("a non-causal U-ConvBlock (centred convs, global norms) reads the future and cannot stream")
        y = self.expand(x)  # (B, M, n)
        levels, positions, caches = [], [], []
        inp, pos = y, state.position
        for q in range(self.depth):
            level = self.dw_norms[q](self._causal_dw(q, inp, state.caches[q], pos))
            full = torch.cat([state.caches[q], inp], dim=-1)
            caches.append(full[..., full.shape[-1] - (self.kernel - 1):])
            positions.append(pos)
            levels.append(level)
            inp, pos = level, -(-pos // self.dw[q].stride[0])  # the next input rate: this output's
        positions = positions[1:] + [pos]  # positions[q]: first frame of levels[q] at its own rate
        lasts = list(state.lasts)
        for q in range(self.depth - 1, 0, -1):
            fine, coarse = levels[q - 1], levels[q]
            if fine.shape[-1]:
                levels[q - 1] = fine + _upsample(coarse, state.lasts[q - 1], positions[q - 1], fine.shape[-1])
            if coarse.shape[-1]:
                lasts[q - 1] = coarse[..., -1:]
        out = x + self.project(self.act(self.out_norm(levels[0])))
        return out, UBlockState(caches, lasts, state.position + x.shape[-1])


class SuDoRMRFState(NamedTuple):
    """Streaming state of :class:`SuDoRMRF`. Sizes never depend on how long the stream has run.

    encoder: samples waiting for the next complete encoder frame.
    blocks: per U-ConvBlock, its :class:`UBlockState` (which counts the frames it has had).
    decoder: overlap-add partial sums, batch shape (B, C).
    aligner: output FIFO that returns exactly ``n`` samples per ``n`` input samples.
    """

    encoder: FramerState
    blocks: list[UBlockState]
    decoder: OverlapAddState
    aligner: AlignerState


@register_model
class SuDoRMRF(SeparationModel):
    """``(B, T)`` or ``(B, 1, T)`` -> ``(B, C, T)``; see the module doc."""

    family = "sudormrf"
    config_class = SuDoRMRFConfig
    config: SuDoRMRFConfig

    def __init__(self, config: SuDoRMRFConfig):
        super().__init__(config)
        c = config
        self.encoder = ConvEncoder(c.enc_bases, c.enc_kernel, c.enc_stride, causal=c.causal)
        self.decoder = ConvDecoder(c.enc_bases, c.enc_kernel, c.enc_stride, causal=c.causal)
        self.in_norm = _norm(c.enc_bases, c.causal)
        self.bottleneck = nn.Conv1d(c.enc_bases, c.bottleneck, 1)
        self.blocks = nn.ModuleList(UConvBlock(c.bottleneck, c.hidden, c.depth, c.dw_kernel, c.causal)
                                    for _ in range(c.num_blocks))
        # Sec. 2.3: PReLU, 1x1 conv to C x N_E, mask non-linearity
        self.head = nn.Sequential(nn.PReLU(), nn.Conv1d(c.bottleneck, c.num_sources * c.enc_bases, 1))
        self._aligner = OutputAligner(self.latency)

    @property
    def is_causal(self) -> bool:
        return bool(self.config.causal)

    @property
    def latency(self) -> int:
        return self.encoder.latency if self.config.causal else 0

    def _masked(self, feats: torch.Tensor, blocks: list[UBlockState] | None
                ) -> tuple[torch.Tensor, list[UBlockState] | None]:
        """Encoder output (B, N, K) -> masked features (B, C, N, K); offline when ``blocks`` is None."""
        b, n, k = feats.shape
        w = torch.relu(feats)
        x = self.bottleneck(self.in_norm(w))  # (B, D, K)
        states = []
        for i, block in enumerate(self.blocks):
            if blocks is None:
                x = block(x)
            else:
                x, st = block.step(x, blocks[i])
                states.append(st)
        # (B, C * N, K) -> (B, C, N, K)
        m = self.head(x).view(b, self.num_sources, n, k)
        if self.config.mask == "relu":
            m = torch.relu(m)
        elif self.config.mask == "sigmoid":
            m = torch.sigmoid(m)
        else:
            m = torch.softmax(m, dim=1)
        return m * w.unsqueeze(1), (states if blocks is not None else None)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        mixture = check_waveform_batch(mixture)
        feats = self.encoder(mixture)  # (B, N, K)
        if feats.shape[-1] == 0:
            return mixture.new_zeros(mixture.shape[0], self.num_sources, mixture.shape[-1])
        masked, _ = self._masked(feats, None)  # a causal model's blocks: their steps from initial states
        return self.decoder(masked, mixture.shape[-1])

    def _check_streamable(self) -> None:
        if not self.is_causal:
            raise StreamingNotSupported("sudormrf with causal=False (centred convs, global norms) reads the future")

    def init_state(self, batch_size: int = 1, *, device=None, dtype=None, chunk_samples: int | None = None
                   ) -> SuDoRMRFState:
        self._check_streamable()
        kw = self.state_placement(device, dtype)
        return SuDoRMRFState(
            encoder=self.encoder.init_state(batch_size),
            blocks=[blk.init_state(batch_size) for blk in self.blocks],
            decoder=self.decoder.init_state((batch_size, self.num_sources)),
            aligner=self._aligner.init_state((batch_size, self.num_sources), **kw),
        )

    def step(self, chunk: torch.Tensor, state: SuDoRMRFState) -> tuple[torch.Tensor, SuDoRMRFState]:
        """(B, n) -> (B, C, n): the offline output delayed by ``latency`` samples."""
        self._check_streamable()
        chunk = check_waveform_batch(chunk, "chunk")
        feats, encoder = self.encoder.step(chunk, state.encoder)  # (B, N, k): frames this chunk completes
        blocks = state.blocks
        if feats.shape[-1]:
            masked, blocks = self._masked(feats, state.blocks)
        else:
            masked = feats.new_zeros(feats.shape[0], self.num_sources, feats.shape[1], 0)
        samples, decoder = self.decoder.step(masked, state.decoder)
        out, aligner = self._aligner.step(samples, chunk.shape[-1], state.aligner)
        return out, SuDoRMRFState(encoder, blocks, decoder, aligner)


def _scaled(blocks: int, **kw) -> SuDoRMRFConfig:
    return SuDoRMRFConfig(num_blocks=blocks, **kw)


register_preset("sudormrf-1.0x", "sudormrf", _scaled(16), "SuDoRM-RF 1.0x (Sec. 3.3): R=16 U-ConvBlocks")
register_preset("sudormrf-0.5x", "sudormrf", _scaled(8), "SuDoRM-RF 0.5x: R=8 U-ConvBlocks")
register_preset("sudormrf-0.25x", "sudormrf", _scaled(4), "SuDoRM-RF 0.25x: R=4 U-ConvBlocks")
register_preset("sudormrf-causal", "sudormrf", _scaled(8, causal=True),
                "causal SuDoRM-RF (C-SuDoRM-RF style): R=8, causal depth-wise convs, per-frame norms; streams")
register_preset("sudormrf-tiny", "sudormrf",
                _scaled(2, enc_bases=16, bottleneck=8, hidden=16, depth=3, causal=True),
                "tiny causal SuDoRM-RF for tests")
