"""The contract every separation model keeps, and the optional capabilities it declares.

Axis legend used across ``speechsep.models``:
    B  batch            C  sources (speakers)          T  samples
    N  feature channels F  frequency bins              K  frames

* ``forward(mixture)`` takes ``(B, T)`` or ``(B, 1, T)`` and returns ``(B, C, T)``, always with the
  source axis, even for one source.
* Causal models also stream, through one interface: ``state = model.init_state(B, *, device=None,
  dtype=None, chunk_samples=None)``; ``out, state = model.step(chunk, state)`` with ``chunk`` ``(B, n)``
  for any ``n`` and ``out`` ``(B, C, n)``: the offline output delayed by ``model.latency`` samples.
  ``step`` never mutates the module; all history lives in ``state``, a small typed container (a
  dataclass or NamedTuple, nested) of tensors. The streaming ONNX export traces this same ``step`` from
  ``init_state(B, chunk_samples=n)`` on chunks of exactly ``n`` samples, so a state that a trace can
  carry holds tensors of fixed size only (TFACM's does; the states of the other models still keep
  python-int counters, which export refuses); ``chunk_samples`` lets a model check (or size its state
  for) the fixed chunk, and is ignored by a model that needs neither. Blocks and modules stream the
  same way: ``init_state(batch, ..., *, device, dtype)`` and ``step(x, state) -> (y, state)``. Where a
  model keeps a parallel ``forward`` (or a module a ``forward_block``) for training speed, its
  docstring says so, and the streaming contract tests (tests/models/test_streaming_contract.py)
  check that it agrees with ``step``.

Optional capabilities are declared here with their defaults, so that callers ask the model instead
of probing for names: ``hop`` (the frame hop, for chunk sizes), ``training_outputs`` (every estimate
the training loss may score: per iteration, per layer, the oracle pass; ``forward`` returns only the
final one, always a tensor), and ``step_samples``/``threads`` (what :class:`Streamer`, the interface a
stream driver runs, adds to a model; :class:`speechsep.export.onnx.OnnxStreamer` implements the same
interface).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from speechsep.blocks.encoders import FramedFrontEnd

if TYPE_CHECKING:
    from speechsep.losses.objectives import ObjectiveConfig

__all__ = ["ModelConfig", "SeparationModel", "StreamingNotSupported", "Streamer", "TrainingOutput"]


class TrainingOutput(NamedTuple):
    """One labelled estimate of the sources, as :meth:`SeparationModel.training_outputs` returns it.

    The training objective (:func:`speechsep.losses.objectives.assemble_terms`) picks and weighs
    these by ``iteration``, ``layer`` and ``oracle``; a one-output model returns one, at the defaults.
    """

    estimate: torch.Tensor  # (B, C, T)
    iteration: int = 1  # 1-based; for an oracle pass, the iteration whose modules it used
    layer: int = 0  # 0: the iteration's output; k >= 1: the k-th layer of a model trained layer-wise
    oracle: bool = False  # from a training-only pass fed with the clean targets
    #: (B,) the deep-clustering loss of the model's embedding head against the targets, computed only
    #: when the objective weighs it (``deep_clustering_weight > 0``) and the model has such a head
    deep_clustering: torch.Tensor | None = None

    @property
    def label(self) -> str:
        if (self.iteration, self.layer, self.oracle) == (1, 0, False):
            return "output"
        return f"{'oracle' if self.oracle else f'it{self.iteration}'}/layer{self.layer}"


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

    def init_state(self, batch_size: int = 1) -> Any:
        """The stream's initial state (a model's also takes ``device``, ``dtype`` and ``chunk_samples``)."""
        ...

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
    #: submodules that only ``training_outputs`` uses (an auxiliary head): weights loaded with
    #: ``init_from`` may lack them, and they then start fresh
    training_only_modules: ClassVar[tuple[str, ...]] = ()

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

    def init_state(self, batch_size: int = 1, *, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None, chunk_samples: int | None = None) -> Any:
        """The state :meth:`step` starts a stream from; ``device``/``dtype``: the model's (its parameters')
        unless given; ``chunk_samples``: the fixed chunk a traced ``step`` (ONNX export) will take."""
        raise StreamingNotSupported(f"{type(self).__name__} is not causal and cannot stream")

    def step(self, chunk: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        raise StreamingNotSupported(f"{type(self).__name__} is not causal and cannot stream")

    def state_placement(self, device: torch.device | str | None, dtype: torch.dtype | None) -> dict:
        """``init_state``'s ``device``/``dtype`` keywords with the parameters' filled in where not given."""
        p = next(self.parameters())
        return {"device": device or p.device, "dtype": dtype or p.dtype}

    def training_outputs(
        self, mixture: torch.Tensor, targets: torch.Tensor, objective: ObjectiveConfig | None = None
    ) -> list[TrainingOutput]:
        """Every estimate the training objective may score, labelled: ``[TrainingOutput, ...]``.

        Default: the one output of ``forward``. A model with several outputs (the iterative model's
        iterations, layers and oracle pass) returns those ``objective`` asks for (``None``: the
        default :class:`~speechsep.losses.objectives.ObjectiveConfig`); ``targets`` ``(B, C, T)`` is
        there for a model whose later outputs depend on the order of the earlier ones. Weights are
        not the model's business: :func:`~speechsep.losses.objectives.assemble_terms` sets them.
        """
        return [TrainingOutput(self(mixture))]

    def extra_repr(self) -> str:
        return f"family={self.family!r}, sample_rate={self.sample_rate}, num_sources={self.num_sources}"
