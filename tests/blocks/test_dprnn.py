import pytest
import torch

from speechsep.blocks.dprnn import DPRNNBlock, GlobalLayerNorm, num_segments, overlap_add, segment


@pytest.mark.parametrize("length", [1, 7, 50, 100, 101, 333])
@pytest.mark.parametrize("size", [2, 24, 100])
def test_every_frame_lies_in_exactly_two_segments(length, size):
    x = torch.randn(2, 3, length)
    segs = segment(x, size)
    assert segs.shape == (2, num_segments(length, size), size, 3)
    # 50 % overlap: overlap-add of the untouched segments sums each frame twice
    torch.testing.assert_close(overlap_add(segs, length), 2 * x, rtol=0, atol=1e-6)


def test_segments_hold_the_frames_at_hop_spacing():
    x = torch.arange(10.0).reshape(1, 1, 10)
    segs = segment(x, 4)[0, :, :, 0]  # (G, S)
    # hop 2 zeros in front, then the frames; segment g starts at padded index 2g
    assert segs[0].tolist() == [0, 0, 0, 1]
    assert segs[1].tolist() == [0, 1, 2, 3]
    assert segs[2].tolist() == [2, 3, 4, 5]
    assert segs.shape[0] == 6 and segs[-1].tolist() == [8, 9, 0, 0]


def test_block_keeps_shape_and_batch_independence():
    block = DPRNNBlock(8, 6)
    x = segment(torch.randn(3, 8, 90), 20)
    y = block(x)
    assert y.shape == x.shape
    # gLN normalises per example: example 0 must not depend on example 1
    x2 = x.clone()
    x2[1] += 5.0 * torch.randn_like(x2[1])
    torch.testing.assert_close(block(x2)[0], y[0])


def _stack_forward(block, frames, size):
    return overlap_add(block(segment(frames, size)), frames.shape[-1])


def test_causal_variant_never_sees_the_future():
    torch.manual_seed(1)
    block = DPRNNBlock(6, 5, intra_bidirectional=False, inter_bidirectional=False, norm="ln").eval()
    x = torch.randn(1, 6, 97)
    t = 41
    x2 = x.clone()
    x2[..., t:] = torch.randn_like(x2[..., t:])
    y, y2 = _stack_forward(block, x, 10), _stack_forward(block, x2, 10)
    torch.testing.assert_close(y[..., :t], y2[..., :t], rtol=0, atol=1e-6)
    assert (y[..., t:] - y2[..., t:]).abs().max() > 1e-3


def test_bidirectional_variant_does_see_the_future():
    block = DPRNNBlock(6, 5).eval()
    x = torch.randn(1, 6, 97)
    x2 = x.clone()
    x2[..., 60:] += 1.0
    y, y2 = _stack_forward(block, x, 10), _stack_forward(block, x2, 10)
    assert (y[..., :40] - y2[..., :40]).abs().max() > 1e-4


def test_one_way_lstms_halve_the_recurrent_parameters():
    two = DPRNNBlock(8, 6)
    one = DPRNNBlock(8, 6, intra_bidirectional=False, inter_bidirectional=False)
    lstm = lambda b: sum(p.numel() for m in (b.intra.rnn, b.inter.rnn) for p in m.parameters())  # noqa: E731
    assert lstm(two) == 2 * lstm(one)


def test_global_layer_norm_statistics():
    norm = GlobalLayerNorm(4)
    y = norm(torch.randn(2, 3, 5, 4) * 7 + 3)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(y.var(dim=(1, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)


def test_wrong_shapes_raise_with_the_shape():
    with pytest.raises(ValueError, match=r"\(2, 8\)"):
        segment(torch.randn(2, 8), 10)
    with pytest.raises(ValueError, match=r"\(1, 3, 10, 5\)"):
        DPRNNBlock(8, 4)(torch.randn(1, 3, 10, 5))
    with pytest.raises(ValueError, match="at least 2"):
        segment(torch.randn(1, 2, 8), 1)
    with pytest.raises(ValueError, match="unknown norm"):
        DPRNNBlock(8, 4, norm="batch")
