"""Parameters and multiply-accumulates per second of audio, counted by ptflops.

ptflops is the counter the TFACM paper used (its Table I footnote). Its PyTorch backend hooks
modules, so ``nn.LSTM`` is counted (PyTorch's own FlopCounterMode counts zero for a CPU LSTM), and
with functional counting on it also counts ``matmul``/``softmax`` calls such as attention scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import types

import torch

from speechsep.models.base import SeparationModel

__all__ = ["Complexity", "complexity", "count_parameters"]


@dataclasses.dataclass(frozen=True)
class Complexity:
    params: int
    macs_per_second: float

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def gmacs_per_second(self) -> float:
        return self.macs_per_second / 1e9


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def complexity(model: SeparationModel, seconds: float = 1.0) -> Complexity:
    """Count parameters and MACs of one forward pass on ``seconds`` of audio, per second of audio."""
    from ptflops import get_model_complexity_info

    num_samples = int(round(seconds * model.sample_rate))
    device = next(model.parameters()).device

    def make_input(_shape):
        return {"mixture": torch.zeros(1, num_samples, device=device).normal_(generator=torch.Generator(device).manual_seed(0))}

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            macs, _ = get_model_complexity_info(
                model,
                (num_samples,),
                input_constructor=make_input,
                as_strings=False,
                print_per_layer_stat=False,
                verbose=False,
                backend="pytorch",
                backend_specific_config={"count_functional": True},
            )
    finally:
        model.train(was_training)
    if macs is None:
        raise RuntimeError(f"ptflops could not count {type(model).__name__}")
    return Complexity(params=count_parameters(model), macs_per_second=float(macs) / seconds)


class _CallableModule(types.ModuleType):
    """Importing this submodule makes ``speechsep.complexity`` the module, not the function the
    package exports lazily under that name; calling the module calls the function, so both
    ``speechsep.complexity(model)`` and ``from speechsep.complexity import complexity`` work without
    ``import speechsep`` loading torch."""

    def __call__(self, model: SeparationModel, seconds: float = 1.0) -> Complexity:
        return complexity(model, seconds)


sys.modules[__name__].__class__ = _CallableModule
