"""Every causal block: the past never depends on the future, and streaming equals offline.

Each case wraps a block as ``offline(x) -> y`` and ``stream(x, sizes) -> y`` over frames on the last
axis (or axis 1 for sequence-first blocks), so one pair of tests covers them all.
"""

from __future__ import annotations

import pytest
import torch

from speechsep.blocks.attention import KVCache, WindowedCausalAttention
from speechsep.blocks.causal_conv import (
    CausalConv1d,
    CausalConv2d,
    CausalConvTranspose1d,
    CausalConvTranspose2d,
)
from speechsep.blocks.norm import ChannelLayerNorm, CumulativeLayerNorm, FrameLayerNorm
from speechsep.blocks.recurrent import CausalLSTM

FRAMES = 23


def _split(x: torch.Tensor, sizes: list[int], dim: int) -> list[torch.Tensor]:
    pieces, start = [], 0
    while start < x.shape[dim]:
        for n in sizes:
            pieces.append(x.narrow(dim, start, min(n, x.shape[dim] - start)))
            start += pieces[-1].shape[dim]
            if start >= x.shape[dim]:
                break
    return pieces


class Case:
    """A block with its input shape, time axis, output frames per input frame, and stream wrapper."""

    def __init__(self, name, module, shape, *, time_dim=-1, ratio=1, stream=None):
        self.name, self.module, self.shape, self.time_dim, self.ratio = name, module, shape, time_dim, ratio
        self._stream = stream

    def offline(self, x):
        return self.module(x)

    def stream(self, x, sizes):
        state = self._init(x)
        outs = []
        for piece in _split(x, sizes, self.time_dim):
            y, state = self._stream(piece, state)
            outs.append(y)
        return torch.cat(outs, dim=self.time_dim)

    def _init(self, x):
        m = self.module
        if isinstance(m, CausalLSTM):
            return m.init_state(x.shape[0])
        if isinstance(m, CumulativeLayerNorm):
            return m.init_state(x.shape[0])
        return m.init_state(x.shape[0], x.shape[2] if x.dim() == 4 else None)


def _attention_case():
    attn = WindowedCausalAttention(window=6, block=4)  # block < window < frames: exercises the block loop

    class QKV(torch.nn.Module):
        """Self-attention on (B, K, 8): q = x, k = x * 0.5, v = x[..., :5]."""

        def __init__(self):
            super().__init__()
            self.attn = attn

        def forward(self, x):
            return attn(x, 0.5 * x, x[..., :5])

        def init_state(self, batch, _bins=None):
            return attn.init_state(batch, 8, 5)

    m = QKV()
    return Case("attention", m, (2, FRAMES, 8), time_dim=1,
                stream=lambda x, s: attn.step(x, 0.5 * x, x[..., :5], s))


def _cases():
    conv1 = CausalConv1d(3, 4, 3, dilation=2)
    dw = CausalConv1d(4, 4, 5, groups=4)
    conv2 = CausalConv2d(2, 3, time_kernel=3, freq_kernel=3)
    tconv1 = CausalConvTranspose1d(3, 2, 8)
    tconv1s = CausalConvTranspose1d(3, 2, 5, stride=2)
    tconv2 = CausalConvTranspose2d(3, 4, time_kernel=3, freq_kernel=3)
    lstm = CausalLSTM(4, 6, proj_size=3)
    cln = CumulativeLayerNorm(4)
    return [
        Case("conv1d", conv1, (2, 3, FRAMES), stream=conv1.step),
        Case("depthwise-conv1d", dw, (2, 4, FRAMES), stream=dw.step),
        Case("conv2d", conv2, (2, 2, 5, FRAMES), stream=conv2.step),
        Case("conv-transpose1d", tconv1, (2, 3, FRAMES), stream=tconv1.step),
        Case("conv-transpose1d-stride2", tconv1s, (2, 3, FRAMES), ratio=2, stream=tconv1s.step),
        Case("conv-transpose2d", tconv2, (2, 3, 5, FRAMES), stream=tconv2.step),
        Case("lstm", lstm, (2, FRAMES, 4), time_dim=1, stream=lstm.step),
        Case("cumulative-layer-norm", cln, (2, 4, FRAMES), stream=cln.step),
        _attention_case(),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("t", [1, 9, FRAMES - 1])
def test_changing_the_future_changes_nothing_before(case, t):
    x = torch.randn(case.shape)
    x2 = x.clone()
    x2.narrow(case.time_dim, t, FRAMES - t).normal_()
    y, y2 = case.offline(x), case.offline(x2)
    keep = t * case.ratio
    torch.testing.assert_close(y.narrow(case.time_dim, 0, keep), y2.narrow(case.time_dim, 0, keep),
                               rtol=0, atol=1e-6)
    # ... and the change does show at t: the test could fail
    assert not torch.allclose(y.narrow(case.time_dim, keep, 1), y2.narrow(case.time_dim, keep, 1))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("sizes", [[1], [7], [FRAMES], [2, 5, 1, 11]], ids=["one", "prime", "all", "mixed"])
def test_streaming_equals_offline(case, sizes):
    x = torch.randn(case.shape)
    with torch.no_grad():
        y = case.offline(x)
        ys = case.stream(x, sizes)
    assert ys.shape == y.shape
    torch.testing.assert_close(ys, y, rtol=0, atol=1e-5 * float(y.pow(2).mean().sqrt()))


def test_empty_chunk_keeps_state_and_returns_no_frames():
    conv = CausalConv2d(2, 3, time_kernel=3, freq_kernel=3)
    cache = torch.randn(1, 2, 5, 2)
    y, new = conv.step(torch.zeros(1, 2, 5, 0), cache)
    assert y.shape == (1, 3, 5, 0) and new is cache
    lstm = CausalLSTM(4, 6)
    state = lstm.init_state(3)
    y, new = lstm.step(torch.zeros(3, 0, 4), state)
    assert y.shape == (3, 0, 6) and new is state


def test_attention_state_is_bounded_and_window_is_bounded():
    attn = WindowedCausalAttention(window=4, block=3)
    x = torch.randn(1, 30, 2)
    state = attn.init_state(1, 2, 2)
    sizes = []
    for piece in x.split(7, dim=1):
        _, state = attn.step(piece, piece, piece, state)
        sizes.append(state.keys.shape)
    assert set(sizes) == {(1, 3 + attn.slack, 2)} and int(state.count) == 30
    # frame 20 does not see frame 16 (window 4): changing frame 16 leaves output 20 unchanged
    x2 = x.clone()
    x2[:, 16] += 5.0
    y, y2 = attn(x, x, x), attn(x2, x2, x2)
    torch.testing.assert_close(y[:, 20:], y2[:, 20:], rtol=0, atol=1e-6)
    assert not torch.allclose(y[:, 19], y2[:, 19])


def test_attention_cache_branches_do_not_interfere():
    # two different continuations of the same state (the buffer is shared and written in place by the
    # newest state only), and the same state stepped again long after: each sees its own past
    attn = WindowedCausalAttention(window=5, block=8, slack=3)
    x = torch.randn(1, 30, 3)
    with torch.no_grad():
        _, s0 = attn.step(x[:, :4], x[:, :4], x[:, :4], attn.init_state(1, 3, 3))
        a, s_a = attn.step(x[:, 4:8], x[:, 4:8], x[:, 4:8], s0)
        b, s_b = attn.step(-x[:, 4:8], -x[:, 4:8], -x[:, 4:8], s0)  # a branch from s0
        a_next, s_a = attn.step(x[:, 8:9], x[:, 8:9], x[:, 8:9], s_a)  # must not see the branch
        b_next, _ = attn.step(x[:, 8:9], x[:, 8:9], x[:, 8:9], s_b)
        for t in range(9, 30):  # many epochs later, s0 still means what it meant
            _, s_a = attn.step(x[:, t:t + 1], x[:, t:t + 1], x[:, t:t + 1], s_a)
        again, _ = attn.step(x[:, 4:8], x[:, 4:8], x[:, 4:8], s0)
        ref = attn(x, x, x)
        branch = torch.cat([x[:, :4], -x[:, 4:8], x[:, 8:]], dim=1)
        ref_b = attn(branch, branch, branch)
    torch.testing.assert_close(a, ref[:, 4:8])
    torch.testing.assert_close(a_next, ref[:, 8:9])
    torch.testing.assert_close(b, ref_b[:, 4:8])
    torch.testing.assert_close(b_next, ref_b[:, 8:9])
    torch.testing.assert_close(again, a, rtol=0, atol=0)


def test_attention_steps_with_gradient_leave_the_given_state_intact():
    # while autograd records, a step writes a new ring (an in-place write would break the graph)
    attn = WindowedCausalAttention(window=4, block=8)
    x = torch.randn(1, 9, 2, requires_grad=True)
    s0 = attn.init_state(1, 2, 2)
    _, s1 = attn.step(x[:, :5], x[:, :5], x[:, :5], s0)
    y, _ = attn.step(x[:, 5:], x[:, 5:], x[:, 5:], s1)
    y.sum().backward()
    assert s1.keys is not s0.keys and not s0.keys.any() and x.grad is not None and x.grad[:, 2:5].abs().sum() > 0


def test_attention_first_frame_sees_only_itself():
    attn = WindowedCausalAttention(window=5)
    x = torch.randn(2, 6, 3)
    v = torch.randn(2, 6, 4)
    torch.testing.assert_close(attn(x, x, v)[:, 0], v[:, 0])


def test_stateless_norms_are_per_frame():
    x = torch.randn(2, 4, 5, 9)
    for norm, dims in [(ChannelLayerNorm(4), (1,)), (FrameLayerNorm(4, 5), (1, 2))]:
        y = norm(x)
        assert torch.allclose(y.mean(dims), torch.zeros(()), atol=1e-5)
        x2 = x.clone()
        x2[..., 6:] *= 3.0
        torch.testing.assert_close(norm(x2)[..., :6], y[..., :6])


def test_cumulative_norm_first_frame_and_closed_form():
    cln = CumulativeLayerNorm(3, eps=0.0)
    x = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])  # (1, 3, 2)
    y = cln(x)
    # frame 0: mean 2, var 2/3; frame 1: mean over {1,2,3,0,0,0} = 1, var = 14/6 - 1
    torch.testing.assert_close(y[0, :, 0], (torch.tensor([1.0, 2.0, 3.0]) - 2) / (2 / 3) ** 0.5)
    torch.testing.assert_close(y[0, :, 1], torch.full((3,), -1.0) / (14 / 6 - 1) ** 0.5)


@pytest.mark.parametrize("bad", [torch.zeros(2, 5, 7), torch.zeros(2, 3)])
def test_wrong_shape_raises_with_shape(bad):
    with pytest.raises(ValueError, match=str(tuple(bad.shape)).replace("(", r"\(").replace(")", r"\)")):
        CausalConv1d(3, 4, 3)(bad)


@pytest.mark.parametrize("sliding", [False, True], ids=["epochs", "sliding"])
@pytest.mark.parametrize("sizes", [[1], [3], [6], [2, 5, 1]], ids=["one", "prime", "window", "mixed"])
def test_attention_cache_has_a_fixed_size_and_steps_equal_the_whole_sequence(sizes, sliding):
    """The one step (also what ONNX export traces): a cache of window - 1 (+ slack) frames, ``count`` a tensor."""
    attn = WindowedCausalAttention(window=6, block=4)
    x = torch.randn(2, FRAMES, 8)
    size = 5 + (0 if sliding else attn.slack)
    with torch.no_grad():
        ref = attn(x, 0.5 * x, x[..., :5])
        state = attn.init_state(2, 8, 5, sliding=sliding)
        outs, shapes = [], set()
        for piece in _split(x, sizes, 1):
            y, state = attn.step(piece, 0.5 * piece, piece[..., :5], state)
            outs.append(y)
            shapes.add((state.keys.shape, state.values.shape))
    torch.testing.assert_close(torch.cat(outs, 1), ref, rtol=0, atol=1e-6)
    assert shapes == {((2, size, 8), (2, size, 5))}  # never grows, never shrinks
    assert state.count.dtype == torch.long and int(state.count) == FRAMES


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("sliding", [False, True], ids=["epochs", "sliding"])
def test_a_traced_attention_step_streams_like_the_whole_sequence(sliding):
    # a trace reads no python position: one graph of a 3-frame step holds at every stream position,
    # across epochs (slack 4) and before the window has filled
    attn = WindowedCausalAttention(window=6, block=4, slack=4)
    x = torch.randn(1, 27, 8)
    state = attn.init_state(1, 8, 8, sliding=sliding)
    with torch.no_grad():
        ref = attn(x, x, x)
        traced = torch.jit.trace(lambda q, c: attn.step(q, q, q, KVCache(*c)), (x[:, :3], tuple(state)),
                                 check_trace=False)
        outs = []
        for piece in x.split(3, dim=1):
            y, state = traced(piece, tuple(state))
            outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), ref, rtol=0, atol=1e-5)
    assert int(state[2]) == 27
