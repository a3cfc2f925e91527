"""One-way LSTM whose (h, c) state is explicit, so that it streams.

Axis legend: ``B`` batch (any flattening of batch, bins, segments), ``K`` steps, ``D`` features.
A bidirectional LSTM reads the future; causal models (TFACM Sec. II-B) use one direction only.
``forward`` starts from zeros (or a given state) and ``step`` continues from the state it is given;
both are one call of the same ``nn.LSTM``, whose CPU kernel computes the input projection of every
step as a single matrix product before it runs the recurrence.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from speechsep.threads import heavy_kernel

__all__ = ["LSTMState", "CausalLSTM", "select_state"]


class LSTMState(NamedTuple):
    """Hidden and cell state of a one-layer LSTM, each ``(1, B, H)`` (``nn.LSTM``'s layout)."""

    h: torch.Tensor
    c: torch.Tensor


def select_state(condition: torch.Tensor, if_true: LSTMState, if_false: LSTMState) -> LSTMState:
    """``if_true`` where the 0-d bool ``condition`` holds, else ``if_false``: a branch a traced graph
    (ONNX export) can carry, where a python ``if`` on a tensor would be frozen at trace time. Eagerly
    it is that ``if`` (one read of the flag instead of two element-wise selects a step)."""
    if not torch.jit.is_tracing():
        return if_true if bool(condition) else if_false
    return LSTMState(torch.where(condition, if_true.h, if_false.h), torch.where(condition, if_true.c, if_false.c))


class CausalLSTM(nn.Module):
    """``(B, K, D_in) -> (B, K, H)``, optionally followed by a linear projection ``H -> D_out``.

    ``batch_first=False`` takes and returns ``(K, B, D)``: the layout the CPU kernel runs in, which
    saves a transposed copy when the caller can build its input that way.
    """

    def __init__(self, input_size: int, hidden_size: int, *, proj_size: int | None = None,
                 batch_first: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.batch_first = input_size, hidden_size, batch_first
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=1, batch_first=batch_first)
        self.proj = nn.Linear(hidden_size, proj_size) if proj_size else None

    def init_state(self, batch_size: int, *, device=None, dtype=None) -> LSTMState:
        weight = self.lstm.weight_hh_l0
        zero = torch.zeros(1, batch_size, self.hidden_size, device=device or weight.device,
                           dtype=dtype or weight.dtype)
        return LSTMState(zero, zero.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whole sequence from a zero state."""
        return self.step(x, self.init_state(x.shape[0 if self.batch_first else 1], device=x.device))[0]

    def step(self, x: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            layout = "(B, K, {})" if self.batch_first else "(K, B, {})"
            raise ValueError(f"CausalLSTM expects {layout.format(self.input_size)}; got {tuple(x.shape)}")
        if x.shape[1 if self.batch_first else 0] == 0:  # nn.LSTM rejects empty sequences: the state carries over
            out_size = self.proj.out_features if self.proj is not None else self.hidden_size
            return x.new_zeros(*x.shape[:2], out_size), state
        with heavy_kernel:  # one of a streaming step's few kernels worth several threads (speechsep.threads)
            y, (h, c) = self.lstm(x, tuple(state))
        if self.proj is not None:
            y = self.proj(y)
        return y, LSTMState(h, c)
