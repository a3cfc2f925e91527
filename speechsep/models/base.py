"""The contract every separation model keeps, and the optional capabilities it declares.

Axis legend used across ``speechsep.models``:
    B  batch            C  sources (speakers)          T  samples
    N  feature channels F  frequency bins              K  frames

* ``forward(mixture)`` takes ``(B, T)`` or ``(B, 1, T)`` and returns ``(B, C, T)``, always with the
  source axis, even for one source.
* Causal models also stream: ``state = model.init_state(B)``; ``out, state = model.step(chunk, state)``
  with ``chunk`` ``(B, n)`` for any ``n`` and ``out`` ``(B, C, n)``: the offline output delayed by
  ``model.latency`` samples. ``step`` never mutates the module; all history lives in ``state``.

Optional capabilities are declared here with their defaults, so that callers ask the model instead
of probing for names: ``hop`` (the frame hop, for chunk sizes), ``training_outputs`` (the estimates
the training loss sums), ``export_state``/``export_step`` (the step that ONNX export traces), and
``step_samples``/``threads`` (what :class:`Streamer`, the interface a stream driver runs, adds to a
model; :class:`speechsep.export.onnx.OnnxStreamer` implements the same interface).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from speechsep.blocks.encoders import FramedFrontEnd

__all__ = ["ModelConfig", "SeparationModel", "StreamingNotSupported", "Streamer", "TrainingTerm"]

#: one term of the training loss: ``(estimate (B, C, T), weight)`` or ``(estimate, weight, label)``
TrainingTerm = tuple[torch.Tensor, float] | tuple[torch.Tensor, float, str]


@dataclasses.dataclass
class ModelConfig:
    """Fields every model config has; model configs subclass this."""

    sample_rate: int = 8000
    num_sources: int = 2


class StreamingNotSupported(RuntimeError):
    """Raised by ``init_state``/``step`` of a model that looks at the future (not causal)."""


@runtime_checkable
class Streamer(Protocol):
    """What a stream driver (:func:`speechsep.inference.streaming.stream_through_model`) runs: a causal
    :class:`SeparationModel`, or a runtime standing in for one
    (:class:`speechsep.export.onnx.OnnxStreamer`)."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def num_sources(self) -> int: ...

    @property
    def latency(self) -> int:
        """Samples the stream output lags the input."""
        ...

    @property
    def is_causal(self) -> bool: ...

    @property
    def step_samples(self) -> int:
        """``step`` takes chunks of a multiple of this many samples (1: any length)."""
        ...

    @property
    def threads(self) -> int | None:
        """Threads the runtime was opened with; None: PyTorch's current setting."""
        ...

    def init_state(self, batch_size: int = 1) -> Any: ...

    def step(self, chunk: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


class SeparationModel(nn.Module):
    """Base class: holds the config it was built from so a checkpoint can rebuild it."""

    #: name of the model family in the registry (set by each subclass)
    family: ClassVar[str] = ""
    #: the config dataclass this family is built from
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: :class:`Streamer`: a PyTorch model steps on any chunk length
    step_samples: ClassVar[int] = 1
    #: :class:`Streamer`: a PyTorch model runs on PyTorch's current thread setting
    threads: ClassVar[int | None] = None

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

    @property
    def hop(self) -> int:
        """Samples between the model's frames; streaming chunks of whole hops complete whole frames.

        Default: the hop of the first front-end (learnable encoder, STFT or codec) among the model's
        modules, 1 for a model without one. A model whose frames are set elsewhere overrides this.
        """
        for module in self.modules():
            if isinstance(module, FramedFrontEnd):
                return module.hop
        return 1

    def init_state(self, batch_size: int = 1) -> Any:
        raise StreamingNotSupported(f"{type(self).__name__} is not causal and cannot stream")

    def step(self, chunk: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise StreamingNotSupported(f"{type(self).__name__} is not causal and cannot stream")

    def training_outputs(self, mixture: torch.Tensor, targets: torch.Tensor) -> list[TrainingTerm]:
        """The estimates the training loss sums, each with its weight: ``[(estimate (B, C, T), weight[, label])]``.

        Default: the one output of ``forward``, weight 1. A model trained on several outputs (the
        iterative model's iterations and layers) returns them all; ``targets`` ``(B, C, T)`` is there
        for a model whose later outputs depend on the order of the earlier ones.
        """
        return [(self(mixture), 1.0)]

    def export_state(self, batch_size: int, chunk_samples: int) -> Any:
        """Initial state of :meth:`export_step`, for chunks of exactly ``chunk_samples`` samples.

        Default: ``init_state``, for a model whose state holds tensors of fixed size only.
        """
        return self.init_state(batch_size)

    def export_step(self, chunk: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The step that ONNX export traces: ``step``'s output, in tensor operations whose sizes do
        not change from call to call (a trace freezes python values at their first ones).

        Default: ``step``, for a model whose step is already traceable.
        """
        return self.step(chunk, state)

    def extra_repr(self) -> str:
        return f"family={self.family!r}, sample_rate={self.sample_rate}, num_sources={self.num_sources}"
