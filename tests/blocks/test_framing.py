"""Framing, overlap-add and the output aligner: exact layouts, stream == offline, tight latency."""

import pytest
import torch

from speechsep.blocks.framing import Framing, OutputAligner, ms_to_samples, stream_latency

LAYOUTS = [(64, 8), (512, 256), (16, 8), (10, 4)]


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, total)) for i in range(0, total, size)]


def test_stream_latency_is_window_minus_one_plus_lookahead():
    assert stream_latency(64, 8) == 63
    assert stream_latency(512, 256) == 511
    assert stream_latency(16, 8, lookahead_frames=2) == 15 + 16
    with pytest.raises(ValueError, match="hop"):
        stream_latency(8, 16)


def test_ms_to_samples():
    assert ms_to_samples(8, 8000) == 64
    assert ms_to_samples(1, 8000) == 8
    assert ms_to_samples(32, 16000) == 512
    with pytest.raises(ValueError, match="shorter than one sample"):
        ms_to_samples(0.01, 8000)


@pytest.mark.parametrize("window,hop", LAYOUTS)
def test_causal_frame_k_covers_the_documented_samples(window, hop):
    framing = Framing(window, hop, causal=True)
    x = torch.arange(1, 101, dtype=torch.float64)  # nonzero, so padding zeros are distinguishable
    frames = framing.frame(x)
    assert frames.shape == (framing.num_frames(100), window)
    # index of each frame's samples: frame k covers [k*H - (W - H), k*H + H)
    index = torch.arange(frames.shape[0])[:, None] * hop - (window - hop) + torch.arange(window)
    inside = (index >= 0) & (index < 100)
    expected = torch.where(inside, x[index.clamp(0, 99)], torch.zeros((), dtype=x.dtype))
    torch.testing.assert_close(frames, expected, rtol=0, atol=0)
    # every frame overlaps the signal, and one more would not
    assert frames[-1].abs().sum() > 0
    assert (frames.shape[0]) * hop - (window - hop) >= 100


def test_centred_frames_start_like_torch_stft_center():
    framing = Framing(64, 8, causal=False)
    x = torch.randn(2, 333)
    reference = torch.nn.functional.pad(x, (32, 32)).unfold(-1, 64, 8)  # torch.stft(center=True) layout
    frames = framing.frame(x)
    assert frames.shape[-2] == framing.num_frames(333) >= reference.shape[-2]
    torch.testing.assert_close(frames[:, : reference.shape[-2]], reference, rtol=0, atol=0)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window,hop", LAYOUTS)
@pytest.mark.parametrize("chunk", [1, "hop", 37, "all"])
def test_streaming_framer_equals_offline(window, hop, causal, chunk):
    framing = Framing(window, hop, causal=causal)
    total = 300
    x = torch.randn(2, total)
    size = {"hop": hop, "all": total}.get(chunk, chunk)
    state = framing.framer.init_state((2,))
    pieces = []
    for a, b in _chunks(total, size):
        frames, state = framing.framer.step(x[:, a:b], state)
        pieces.append(frames)
        assert state.buffer.shape[-1] < window  # bounded state
    streamed = torch.cat(pieces, dim=-2)
    # complete frames after T samples: those whose last sample index k*H - pad + W - 1 < T
    assert streamed.shape[-2] == (total + framing.pad_left - window) // hop + 1
    torch.testing.assert_close(streamed, framing.frame(x)[:, : streamed.shape[-2]], rtol=0, atol=0)


@pytest.mark.parametrize("window,hop", [(64, 8), (16, 8), (512, 256)])
def test_plain_overlap_add_of_causal_frames_is_exactly_w_over_h_times_input(window, hop):
    # causal framing keeps every frame overlapping the signal, so each sample lies in W/H frames
    framing = Framing(window, hop, causal=True)
    x = torch.randn(3, 517, dtype=torch.float64)
    torch.testing.assert_close(framing.overlap_add(framing.frame(x), 517), x * (window // hop))


@pytest.mark.parametrize("with_gain", [False, True])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window,hop", LAYOUTS)
@pytest.mark.parametrize("frames_per_call", [1, 3, 1000])
def test_streaming_overlap_add_equals_offline(window, hop, causal, with_gain, frames_per_call):
    framing = Framing(window, hop, causal=causal)
    frames = torch.randn(2, 3, 40, window)
    taper = torch.hann_window(window) + 0.1
    gain = framing.envelope_gain(taper) if with_gain else None
    offline = framing.overlap_add(frames, 40 * hop, gain=gain)
    state = framing.overlap_adder.init_state((2, 3))
    pieces = []
    for a, b in _chunks(40, frames_per_call):
        samples, state = framing.overlap_adder.step(frames[..., a:b, :], state, gain=gain)
        pieces.append(samples)
        assert state.pending.shape == (2, 3, window - hop)
    streamed = torch.cat(pieces, dim=-1)
    assert streamed.shape[-1] == 40 * hop - framing.pad_left  # every sample no later frame touches
    torch.testing.assert_close(streamed, offline[..., : streamed.shape[-1]], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window,hop", LAYOUTS)
def test_synthesis_window_and_gain_equal_envelope_division(window, hop, causal):
    # the folded normalisation equals the textbook one: sum_j w f_j / sum_j w^2, exactly where covered
    framing = Framing(window, hop, causal=causal)
    taper = torch.hann_window(window, dtype=torch.float64)
    frames = torch.randn(2, 30, window, dtype=torch.float64)
    envelope = framing.window_envelope(taper, 30)
    textbook = _plain_sum(framing, frames * taper) / envelope
    folded = framing.overlap_add(
        frames * framing.synthesis_window(taper), 30 * hop + window - hop - framing.pad_left,
        gain=framing.envelope_gain(taper, 30),
    )
    covered = (envelope > 1e-11)[framing.pad_left :]
    torch.testing.assert_close(folded[:, covered], textbook[:, framing.pad_left :][:, covered])
    # the steady envelope of a Hann window at 75 % or more overlap is flat: sum w^2 = 3W / (8H)
    if window // hop >= 4:
        torch.testing.assert_close(framing.steady_envelope(taper), torch.full((hop,), 3 * window / (8 * hop), dtype=torch.float64))


def _plain_sum(framing: Framing, frames: torch.Tensor) -> torch.Tensor:
    """Overlap-add by an explicit loop over frames (the reference for the vectorised one)."""
    *lead, count, window = frames.shape
    out = frames.new_zeros(*lead, count * framing.hop + window - framing.hop)
    for k in range(count):
        out[..., k * framing.hop : k * framing.hop + window] += frames[..., k, :]
    return out


@pytest.mark.parametrize("window,hop", [(64, 8), (10, 4), (5, 5), (512, 256)])
def test_vectorised_overlap_equals_loop(window, hop):
    framing = Framing(window, hop, causal=True)
    frames = torch.randn(3, 17, window, dtype=torch.float64)
    out = framing.overlap_add(frames, 17 * hop + window - hop - framing.pad_left)
    torch.testing.assert_close(out, _plain_sum(framing, frames)[..., framing.pad_left :])


@pytest.mark.parametrize("window,hop", [(16, 8), (10, 4), (6, 6)])
def test_overlap_add_gradient(window, hop):
    # the custom backward (framing of the output gradient) against finite differences
    framing = Framing(window, hop, causal=True)
    frames = torch.randn(2, 5, window, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: framing.overlap_add(f, 30), (frames,))


def test_nola_violation_is_rejected():
    with pytest.raises(ValueError, match="NOLA"):
        Framing(16, 16).synthesis_window(torch.hann_window(16))  # w[0] = 0 and no overlap


@pytest.mark.parametrize("window,hop", LAYOUTS)
@pytest.mark.parametrize("chunk", [1, "hop", 37])
def test_aligner_returns_n_samples_equal_to_offline_delayed_by_latency(window, hop, chunk):
    # frame -> plain overlap-add (an identity-like analysis/synthesis) streamed through the aligner
    framing = Framing(window, hop, causal=True)
    latency = stream_latency(window, hop)
    aligner = OutputAligner(latency)
    total = 600
    x = torch.randn(2, total)
    size = {"hop": hop}.get(chunk, chunk)
    framer, ola, align = framing.framer.init_state((2,)), framing.overlap_adder.init_state((2,)), aligner.init_state((2,))
    outs = []
    for a, b in _chunks(total, size):
        frames, framer = framing.framer.step(x[:, a:b], framer)
        samples, ola = framing.overlap_adder.step(frames, ola)
        out, align = aligner.step(samples, b - a, align)
        assert out.shape == (2, b - a)
        outs.append(out)
    streamed = torch.cat(outs, dim=-1)
    offline = framing.overlap_add(framing.frame(x), total)
    torch.testing.assert_close(streamed[:, :latency], torch.zeros(2, latency), rtol=0, atol=0)
    torch.testing.assert_close(streamed[:, latency:], offline[:, : total - latency], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("window,hop", [(64, 8), (16, 8)])
def test_one_sample_less_latency_runs_dry(window, hop):
    # the derivation's bound is tight: with sample-by-sample input, W - 2 is not enough
    framing = Framing(window, hop, causal=True)
    aligner = OutputAligner(stream_latency(window, hop) - 1)
    framer, ola, align = framing.framer.init_state((1,)), framing.overlap_adder.init_state((1,)), aligner.init_state((1,))
    with pytest.raises(RuntimeError, match="ran dry"):
        for _ in range(4 * window):
            frames, framer = framing.framer.step(torch.randn(1, 1), framer)
            samples, ola = framing.overlap_adder.step(frames, ola)
            _, align = aligner.step(samples, 1, align)


def test_aligner_without_batch_shape_and_with_zero_latency():
    aligner = OutputAligner(3)
    state = aligner.init_state()  # shape taken from the first samples
    out, state = aligner.step(torch.tensor([[1.0, 2.0]]), 2, state)
    torch.testing.assert_close(out, torch.zeros(1, 2))
    out, state = aligner.step(torch.tensor([[3.0, 4.0, 5.0]]), 4, state)
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 2.0, 3.0]]))
    assert state.fifo.shape == (1, 2) and state.silence == 0
    passthrough = OutputAligner(0)
    out, _ = passthrough.step(torch.arange(5.0).view(1, 5), 5, passthrough.init_state((1,)))
    torch.testing.assert_close(out, torch.arange(5.0).view(1, 5))


def test_wrong_shapes_raise_value_error_naming_the_shape():
    framing = Framing(16, 8)
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        framing.framer.step(torch.zeros(3, 5), framing.framer.init_state((2,)))
    with pytest.raises(ValueError, match=r"\(2, 4, 15\)"):
        framing.overlap_add(torch.zeros(2, 4, 15))
    with pytest.raises(ValueError, match=r"\(3, 4, 16\)"):
        framing.overlap_adder.step(torch.zeros(3, 4, 16), framing.overlap_adder.init_state((2,)))
    with pytest.raises(ValueError, match=r"\(2, 3, 7\)"):
        OutputAligner(4).step(torch.zeros(2, 3, 7), 1, OutputAligner(4).init_state((2,)))
    with pytest.raises(ValueError, match="hop"):
        Framing(8, 0)
