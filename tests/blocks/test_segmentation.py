"""Segmentation with run-time sizes: the same values as unfold/fold, and a trace that holds for other lengths."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from speechsep.blocks import segmentation
from speechsep.blocks.attention import WindowedCausalAttention


@pytest.mark.parametrize("n", [-3, -1, 0, 1, 6, 7, 8, 100])
def test_ceil_div_and_segment_count(n):
    assert segmentation.ceil_div(n, 7) == -(-n // 7)
    assert segmentation.segment_count(max(n, 0), 7) == max(1, -(-max(n, 0) // 7))


@pytest.mark.parametrize(("size", "hop"), [(4, 2), (5, 2), (7, 3), (6, 6), (24, 12)])
@pytest.mark.parametrize("frames", [1, 5, 12, 61])
def test_windows_and_overlap_add_equal_unfold_and_fold_exactly(size, hop, frames):
    x = torch.randn(2, frames, 3)
    count = segmentation.ceil_div(frames, hop)
    # reference: zero-pad so `count` windows fit, unfold (B, N, J, S), fold back
    reach = (count - 1) * hop + size
    padded = F.pad(x, (0, 0, 0, reach - frames)).transpose(1, 2)
    ref = padded.unfold(-1, size, hop).permute(0, 2, 3, 1)
    got = segmentation.windows(x, size, hop, count)
    assert got.shape == (2, count, size, 3) and torch.equal(got, ref)
    segments = torch.randn_like(got)
    cols = segments.permute(0, 3, 2, 1).reshape(2, 3 * size, count)
    folded = F.fold(cols, output_size=(1, reach), kernel_size=(1, size), stride=(1, hop))[:, :, 0]
    assert torch.equal(segmentation.overlap_add(segments, hop), folded.transpose(1, 2))


def test_split_pads_the_last_segment_with_zeros():
    x = torch.arange(1.0, 8.0).view(1, 7, 1)
    segs = segmentation.split(x, 3)[0, :, :, 0]
    assert segs.tolist() == [[1, 2, 3], [4, 5, 6], [7, 0, 0]]
    assert segmentation.split(x[:, :0], 3).shape == (1, 1, 3, 1)  # an empty input: one segment of zeros


def _trace(fn, example):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about python values; the check is below
        return torch.jit.trace(fn, (example,), check_trace=False)


def test_a_trace_of_the_segmentation_holds_for_other_lengths():
    def roundtrip(x):
        count = segmentation.segment_count(x.shape[1], 4)
        y = segmentation.windows(x, 8, 4, count) * 2.0 + segmentation.split(x, 4).repeat(1, 1, 2, 1)
        return segmentation.overlap_add(y, 4)[:, : x.shape[1]], segmentation.sliding(x.transpose(1, 2), 3)

    traced = _trace(roundtrip, torch.randn(1, 13, 2))
    for frames in (5, 13, 40):
        x = torch.randn(2, frames, 2)
        for got, ref in zip(traced(x), roundtrip(x), strict=True):
            assert got.shape == ref.shape and torch.equal(got, ref), frames


@pytest.mark.parametrize(("window", "block"), [(1, None), (5, 3), (6, 4), (9, 64), (70, None)])
@pytest.mark.parametrize("frames", [1, 4, 63, 65, 150])
def test_block_parallel_attention_equals_the_block_loop(window, block, frames):
    attn = WindowedCausalAttention(window, block=block)
    q, k, v = torch.randn(2, frames, 8), torch.randn(2, frames, 8), torch.randn(2, frames, 5)
    ref = attn(q, k, v)
    got = attn.forward_blocked(q, k, v)
    assert got.shape == ref.shape == (2, frames, 5)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)


def test_traced_attention_is_block_parallel_and_holds_for_other_lengths():
    attn = WindowedCausalAttention(6, block=4)
    traced = _trace(lambda x: attn(x, 0.5 * x, x[..., :5]), torch.randn(1, 9, 8))
    for frames in (3, 9, 30):
        x = torch.randn(2, frames, 8)
        torch.testing.assert_close(traced(x), attn(x, 0.5 * x, x[..., :5]), rtol=0, atol=1e-5)
