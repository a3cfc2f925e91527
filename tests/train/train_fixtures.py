"""A tiny registered model and a synthetic dataset for the training tests (importable by spawned workers)."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from speechsep.models.base import ModelConfig, SeparationModel
from speechsep.registry import register_model
from speechsep.train.config import DataConfig, LossConfig, ModelSpec, TrainConfig


@dataclasses.dataclass
class TinyMaskConfig(ModelConfig):
    channels: int = 16
    kernel: int = 16
    dropout: float = 0.0


@register_model
class TinyMaskNet(SeparationModel):
    """Learned encoder (B, 1, T) -> (B, N, K), a conv mask per source, transposed-conv decoder.

    Axes: B batch, C sources, T samples, N channels, K frames.
    """

    family = "test-tiny-mask"
    config_class = TinyMaskConfig

    def __init__(self, config: TinyMaskConfig):
        super().__init__(config)
        n, k = config.channels, config.kernel
        self.encoder = nn.Conv1d(1, n, k, stride=k // 2, bias=False)
        self.masker = nn.Sequential(
            nn.Conv1d(n, n, 3, padding=1), nn.PReLU(), nn.Dropout(config.dropout),
            nn.Conv1d(n, n * config.num_sources, 1), nn.Sigmoid(),
        )
        self.decoder = nn.ConvTranspose1d(n, 1, k, stride=k // 2, bias=False)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        batch, length = mixture.shape[0], mixture.shape[-1]
        feats = torch.relu(self.encoder(mixture.reshape(batch, 1, length)))  # (B, N, K)
        masks = self.masker(feats).reshape(batch, self.num_sources, feats.shape[1], feats.shape[2])  # (B, C, N, K)
        masked = (masks * feats.unsqueeze(1)).reshape(batch * self.num_sources, feats.shape[1], feats.shape[2])
        out = self.decoder(masked)[..., :length]  # (B*C, 1, T')
        out = nn.functional.pad(out, (0, length - out.shape[-1]))
        return out.reshape(batch, self.num_sources, length)


class ToneMixtures(torch.utils.data.Dataset):
    """Two sources a mixture: a low sinusoid sum and a high one, amplitude-modulated; lengths vary."""

    def __init__(self, count: int, length: int = 2400, seed: int = 0, sample_rate: int = 8000):
        gen = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(count):
            n = length + 100 * (i % 3)
            t = torch.arange(n) / sample_rate
            sources = []
            for lo, hi in ((150, 600), (1200, 3000)):
                f = lo + (hi - lo) * torch.rand(3, generator=gen)
                phase = 2 * math.pi * torch.rand(3, 1, generator=gen)
                wave = torch.sin(2 * math.pi * f[:, None] * t + phase).sum(0)
                env = 0.6 + 0.4 * torch.sin(2 * math.pi * (2 + 3 * torch.rand(1, generator=gen)) * t)
                sources.append(0.3 * env * wave)
            src = torch.stack(sources).float()
            self.items.append((src.sum(0), src))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def tiny_config(**changes) -> TrainConfig:
    cfg = TrainConfig(
        model=ModelSpec("test-tiny-mask", {"channels": 16, "kernel": 16}),
        data=DataConfig(segment_seconds=0.25, batch_size=4, num_workers=0),
        loss=LossConfig("neg_snr", pit=True),
        max_epochs=2,
        seed=3,
        log_every=1,
    )
    return dataclasses.replace(cfg, **changes)


def ddp_worker(rank: int, world: int, port: int, config: TrainConfig, out_dir: str) -> None:
    """One torchrun-like process: the environment torchrun would set, then the ordinary entry point."""
    import os

    from speechsep.train import train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(config, out_dir, device="cpu", train_data=ToneMixtures(12), valid_data=ToneMixtures(2, seed=1),
          progress=False)
