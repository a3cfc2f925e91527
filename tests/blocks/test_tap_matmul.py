"""conv_transpose_taps equals nn.ConvTranspose1d on any stride, window and convolved axis, values and grads."""

import pytest
import torch
import torch.nn.functional as F

from speechsep.blocks.causal_conv import CausalConvTranspose1d
from speechsep.blocks.tap_matmul import conv_transpose_taps


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 4, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_equals_conv_transpose1d_along_a_leading_axis(stride, kernel, bias):
    g = torch.Generator().manual_seed(stride * 10 + kernel)
    weight = torch.randn(6, 5, kernel, generator=g)
    b = torch.randn(5, generator=g) if bias else None
    x = torch.randn(9, 3, 6, generator=g)  # (L, batch, C_in): the sub-band-major layout of F-Local
    want = F.conv_transpose1d(x.permute(1, 2, 0), weight, b, stride=stride)  # (batch, C_out, L_out)
    full = want.shape[-1]
    for start, length in [(0, None), (0, 4), (2, 5), (full - 3, 3), (1, full - 1)]:
        got = conv_transpose_taps(x, weight, b, dim=0, stride=stride, start=start, length=length)
        stop = full if length is None else start + length
        assert got.shape == (stop - start, 3, 5)
        torch.testing.assert_close(got.permute(1, 2, 0), want[..., start:stop], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("bias", [True, False])
def test_a_trace_runs_the_operator_and_agrees_with_the_taps(dim, bias):
    """A trace (ONNX export) takes the transposed-conv operator instead of the strided in-place adds,
    which export as element-wise ScatterND; same values on every output range, beyond the last tap too."""
    g = torch.Generator().manual_seed(7 + dim)
    weight = torch.randn(6, 5, 4, generator=g)
    b = torch.randn(5, generator=g) if bias else None
    x = torch.randn(9, 3, 6, generator=g) if dim == 0 else torch.randn(3, 9, 6, generator=g)
    full = (9 - 1) * 2 + 4
    for start, length in [(0, None), (2, 5), (full - 3, 6)]:
        eager = conv_transpose_taps(x, weight, b, dim=dim, stride=2, start=start, length=length)

        def taps(t, start=start, length=length):
            return conv_transpose_taps(t, weight, b, dim=dim, stride=2, start=start, length=length)

        traced = torch.jit.trace(taps, (x,))
        graph = str(traced.graph)
        assert "conv_transpose1d" in graph or "_convolution" in graph
        assert "index_put" not in graph and "add_" not in graph
        torch.testing.assert_close(traced(x), eager, rtol=1e-5, atol=1e-5)


def test_middle_axis_and_gradients_match():
    g = torch.Generator().manual_seed(3)
    conv = torch.nn.ConvTranspose1d(4, 7, 3, stride=2)
    x = torch.randn(2, 5, 4, generator=g, requires_grad=True)  # (B, K, C_in)
    got = conv_transpose_taps(x, conv.weight, conv.bias, dim=1, stride=2)
    want = conv(x.transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    upstream = torch.randn(want.shape, generator=g)
    grads = torch.autograd.grad((got * upstream).sum(), [x, conv.weight, conv.bias])
    wants = torch.autograd.grad((want * upstream).sum(), [x, conv.weight, conv.bias])
    for a, b in zip(grads, wants, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_rejects_channels_on_the_convolved_axis_and_a_wrong_width():
    with pytest.raises(ValueError, match="last axis holds the channels"):
        conv_transpose_taps(torch.randn(2, 3), torch.randn(3, 2, 2), None, dim=1)
    with pytest.raises(ValueError, match="input has 4 channels, the weight expects 3"):
        conv_transpose_taps(torch.randn(5, 4), torch.randn(3, 2, 2), None, dim=0)


@pytest.mark.parametrize("stride", [1, 2])
def test_channels_last_causal_layer_equals_the_channel_first_one(stride):
    torch.manual_seed(stride)
    first = CausalConvTranspose1d(4, 6, 5, stride=stride)
    last = CausalConvTranspose1d(4, 6, 5, stride=stride, channels_last=True)
    last.load_state_dict(first.state_dict())  # same parameters, same names
    x = torch.randn(2, 4, 11)
    want = first(x)
    torch.testing.assert_close(last(x.transpose(1, 2)), want.transpose(1, 2), rtol=1e-5, atol=1e-5)
    # streamed in uneven chunks from the channels-last cache
    cache, outs = last.init_state(2), []
    assert cache.shape == (2, last.context, 4)
    for a, b in [(0, 3), (3, 4), (4, 11)]:
        y, cache = last.step(x[..., a:b].transpose(1, 2), cache)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), want.transpose(1, 2), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"expects \(B, K, C\) with C = 4"):
        last(x)
