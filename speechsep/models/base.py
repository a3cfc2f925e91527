"""The contract every separation model keeps.

Axis legend used across ``speechsep.models``:
    B  batch            C  sources (speakers)          T  samples
    N  feature channels F  frequency bins              K  frames

* ``forward(mixture)`` takes ``(B, T)`` or ``(B, 1, T)`` and returns ``(B, C, T)``, always with the
  source axis, even for one source.
* Causal models also stream: ``state = model.init_state(B)``; ``out, state = model.step(chunk, state)``
  with ``chunk`` ``(B, n)`` for any ``n`` and ``out`` ``(B, C, n)``: the offline output delayed by
  ``model.latency`` samples. ``step`` never mutates the module; all history lives in ``state``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["ModelConfig", "SeparationModel", "StreamingNotSupported"]


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has; model configs subclass this."""

    sample_rate: int = 8000
    num_sources: int = 2


class StreamingNotSupported(RuntimeError):
    """Raised by ``init_state``/``step`` of a model that looks at the future (not causal)."""


class SeparationModel(nn.Module):
    """Base class: holds the config it was built from so a checkpoint can rebuild it."""

    #: name of the model family in the registry (set by each subclass)
    family: ClassVar[str] = ""
    #: the config dataclass this family is built from
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def num_sources(self) -> int:
        return self.config.num_sources

    @property
    def is_causal(self) -> bool:
        """True when no output sample depends on input later than ``latency`` samples ahead."""
        return False

    @property
    def latency(self) -> int:
        """Algorithmic latency in samples: how far the stream output lags the input."""
        return 0

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency / self.sample_rate

    def init_state(self, batch_size: int = 1) -> Any:
        raise StreamingNotSupported(f"{type(self).__name__} is not causal and cannot stream")

    def step(self, chunk: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise StreamingNotSupported(f"{type(self).__name__} is not causal and cannot stream")

    def extra_repr(self) -> str:
        return f"family={self.family!r}, sample_rate={self.sample_rate}, num_sources={self.num_sources}"
