"""Encoders/decoders: reconstruction, conv equivalence, stream == offline, causality, shape errors."""

import pytest
import torch
import torch.nn.functional as F

from speechsep.blocks.encoders import (
    ISTFT,
    STFT,
    ComplexCodec,
    ConvDecoder,
    ConvEncoder,
    MagnitudeCodec,
    make_window,
)
from speechsep.blocks.framing import OutputAligner

LAYOUTS = [(64, 8), (512, 256), (16, 8)]
CHUNKS = [1, "hop", 37, "all"]


def _sizes(total: int, chunk, hop: int) -> list[tuple[int, int]]:
    size = {"hop": hop, "all": total}.get(chunk, chunk)
    return [(i, min(i + size, total)) for i in range(0, total, size)]


def _rms(x: torch.Tensor) -> float:
    return float(x.abs().square().mean().sqrt())


# ----------------------------------------------------------------------------- STFT / iSTFT
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window,hop", LAYOUTS)
@pytest.mark.parametrize("length", [1000, 1024])
def test_stft_istft_reconstructs_input(window, hop, causal, length):
    stft, istft = STFT(window, hop, causal=causal), ISTFT(window, hop, causal=causal)
    x = torch.randn(2, length)
    spec = stft(x)
    assert spec.shape == (2, window // 2 + 1, stft.num_frames(length)) and spec.is_complex()
    assert float((istft(spec, length) - x).abs().max()) < 1e-5


def test_istft_default_length_and_zero_padded_fft():
    stft, istft = STFT(64, 16, n_fft=128, causal=True), ISTFT(64, 16, n_fft=128, causal=True)
    assert stft.num_bins == 65
    x = torch.randn(1, 800)  # a multiple of the hop: the default length recovers it
    y = istft(stft(x))
    assert y.shape == x.shape
    assert float((y - x).abs().max()) < 1e-5


@pytest.mark.parametrize("causal", [True, False])
def test_istft_past_the_covered_length_gives_the_zero_padding(causal):
    # asking for more samples than the frames fully cover takes the exact-envelope path
    stft, istft = STFT(64, 8, causal=causal), ISTFT(64, 8, causal=causal)
    x = torch.randn(2, 1003)
    spec = stft(x)
    assert istft.framing.pad_left + 1043 > spec.shape[-1] * 8
    y = istft(spec, 1043)
    torch.testing.assert_close(y, torch.nn.functional.pad(x, (0, 40)), rtol=0, atol=1e-5)


def test_centred_stft_matches_torch_stft_on_its_frames():
    stft = STFT(64, 8, causal=False)
    x = torch.randn(2, 500)
    ref = torch.stft(x, 64, 8, window=torch.hann_window(64), center=True, pad_mode="constant", return_complex=True)
    torch.testing.assert_close(stft(x)[..., : ref.shape[-1]], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window,hop", LAYOUTS)
def test_centred_istft_of_an_arbitrary_spectrum_matches_torch_istft(window, hop):
    # not just reconstruction: for a spectrum no signal has, both give the least-squares signal
    istft = ISTFT(window, hop, causal=False)
    spec = torch.randn(2, window // 2 + 1, istft.num_frames(900), dtype=torch.complex64)
    ref = torch.istft(spec, window, hop, window=torch.hann_window(window), center=True, length=900)
    torch.testing.assert_close(istft(spec, 900), ref, rtol=1e-4, atol=1e-5)


def test_float64_reconstruction_is_exact_to_double_precision():
    stft, istft = STFT(64, 8, causal=True).double(), ISTFT(64, 8, causal=True).double()
    x = torch.randn(1, 700, dtype=torch.float64)
    assert float((istft(stft(x), 700) - x).abs().max()) < 1e-12


@pytest.mark.parametrize("window,hop", LAYOUTS)
@pytest.mark.parametrize("chunk", CHUNKS)
def test_stft_step_equals_forward(window, hop, chunk):
    stft = STFT(window, hop, causal=True)
    total = window + 150
    x = torch.randn(2, total)
    state = stft.init_state(2)
    pieces = []
    for a, b in _sizes(total, chunk, hop):
        spec, state = stft.step(x[:, a:b], state)
        pieces.append(spec)
    streamed = torch.cat(pieces, dim=-1)
    assert streamed.shape[-1] == total // hop  # causal: one frame per completed hop
    offline = stft(x)[..., : streamed.shape[-1]]
    assert float((streamed - offline).abs().max()) <= 1e-5 * _rms(offline)


def _frame_local_mask(magnitude: torch.Tensor) -> torch.Tensor:
    """A fixed 2-source mask computed bin by bin (frame-local, so streamable): (B, F, K) -> (B, 2, F, K)."""
    m = torch.sigmoid(magnitude - 1.0)
    return torch.stack([m, 1 - m], dim=1) * magnitude.unsqueeze(1)


@pytest.mark.parametrize("window,hop", LAYOUTS)
@pytest.mark.parametrize("chunk", CHUNKS)
def test_magnitude_codec_stream_equals_offline_delayed(window, hop, chunk):
    codec = MagnitudeCodec(window, hop, causal=True)
    aligner = OutputAligner(codec.latency)
    total = window + 150  # enough to compare 150 samples after the latency
    x = torch.randn(2, total)
    mag, spec = codec.encode(x)
    offline = codec.decode(_frame_local_mask(mag), spec, total)
    assert offline.shape == (2, 2, total)

    analysis, synthesis, align = codec.encoder.init_state(2), codec.decoder.init_state((2, 2)), aligner.init_state((2, 2))
    outs = []
    for a, b in _sizes(total, chunk, hop):
        (m, s), analysis = codec.encoder.step(x[:, a:b], analysis)
        samples, synthesis = codec.decoder.step(_frame_local_mask(m), synthesis, mixture_spec=s)
        out, align = aligner.step(samples, b - a, align)
        assert out.shape == (2, 2, b - a)
        outs.append(out)
    streamed = torch.cat(outs, dim=-1)
    lat = codec.latency
    assert lat == window - 1
    assert float(streamed[..., :lat].abs().max()) == 0.0
    assert float((streamed[..., lat:] - offline[..., : total - lat]).abs().max()) <= 1e-5 * _rms(offline)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_complex_codec_stream_equals_offline_delayed(chunk):
    codec = ComplexCodec(64, 8, causal=True)
    aligner = OutputAligner(codec.latency)
    total = 400
    x = torch.randn(1, total)
    gains = torch.tensor([0.5, -2.0]).view(1, 2, 1, 1, 1)  # two "sources", frame-local
    ri = codec.encode(x)
    assert ri.shape == (1, 2, 33, codec.num_frames(total))
    offline = codec.decode(ri.unsqueeze(1) * gains, total)
    torch.testing.assert_close(offline, x.unsqueeze(1) * gains.view(1, 2, 1), rtol=1e-4, atol=1e-5)

    analysis, synthesis, align = codec.encoder.init_state(1), codec.decoder.init_state((1, 2)), aligner.init_state((1, 2))
    outs = []
    for a, b in _sizes(total, chunk, 8):
        ri_k, analysis = codec.encoder.step(x[:, a:b], analysis)
        samples, synthesis = codec.decoder.step(ri_k.unsqueeze(1) * gains, synthesis)
        out, align = aligner.step(samples, b - a, align)
        outs.append(out)
    streamed = torch.cat(outs, dim=-1)
    lat = codec.latency
    assert float((streamed[..., lat:] - offline[..., : total - lat]).abs().max()) <= 1e-5 * _rms(offline)


def test_magnitude_decode_uses_the_mixture_phase():
    codec = MagnitudeCodec(64, 8, causal=False)
    x = torch.randn(1, 640)
    mag, spec = codec.encode(x)
    # masks of 0.25 and 0.75 with the mixture phase give 0.25 x and 0.75 x back
    y = codec.decode(torch.stack([0.25 * mag, 0.75 * mag], dim=1), spec, 640)
    torch.testing.assert_close(y, torch.stack([0.25 * x, 0.75 * x], dim=1), rtol=1e-4, atol=1e-5)


def test_nola_violation_is_rejected():
    with pytest.raises(ValueError, match="NOLA"):
        ISTFT(16, 16, window_fn="hann")  # w[0] = 0 and no overlap: sample 0 of each hop is lost
    STFT(16, 16, window_fn="hann")  # analysis alone need not be invertible
    ISTFT(16, 16, window_fn="rect")  # fine
    with pytest.raises(ValueError, match="window_fn"):
        make_window("kaiser", 16)


# ----------------------------------------------------------------------------- learnable conv codec
@pytest.mark.parametrize("causal", [True, False])
def test_conv_encoder_is_a_strided_conv1d(causal):
    enc = ConvEncoder(12, 16, causal=causal)
    assert enc.hop == 8
    x = torch.randn(3, 203)
    feats = enc(x)
    k = enc.num_frames(203)
    assert feats.shape == (3, 12, k)
    pad_left = enc.framing.pad_left  # W - H == W // 2 == 8 here; the two layouts differ in frame count
    padded = F.pad(x, (pad_left, (k - 1) * 8 + 16 - pad_left - 203)).unsqueeze(1)
    ref = F.conv1d(padded, enc.basis.weight.unsqueeze(1), stride=8)
    torch.testing.assert_close(feats, ref, rtol=1e-5, atol=1e-5)


def test_conv_decoder_is_a_transposed_conv1d_and_keeps_leading_axes():
    dec = ConvDecoder(12, 16, causal=True, bias=True)
    with torch.no_grad():
        dec.bias.fill_(0.3)
    feats = torch.randn(2, 3, 12, 25)  # (B, C, N, K)
    out = dec(feats, 150)
    assert out.shape == (2, 3, 150)
    weight = dec.basis.weight.t().unsqueeze(1)  # (N, 1, W) for conv_transpose1d
    ref = F.conv_transpose1d(feats.reshape(6, 12, 25), weight, stride=8).reshape(2, 3, -1)
    torch.testing.assert_close(out, ref[..., 8 : 8 + 150] + 0.3, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("window,hop", [(16, 8), (4, 2), (2, 1)])
@pytest.mark.parametrize("chunk", CHUNKS)
def test_conv_codec_stream_equals_offline_delayed(window, hop, chunk):
    enc = ConvEncoder(10, window, hop, causal=True)
    dec = ConvDecoder(10, window, hop, causal=True)
    aligner = OutputAligner(window - 1)
    total = 400
    x = torch.randn(2, total)
    enc.requires_grad_(False), dec.requires_grad_(False)
    offline = dec(torch.relu(enc(x)).unsqueeze(1), total)  # (B, 1, T)
    es, ds, al = enc.init_state(2), dec.init_state((2, 1)), aligner.init_state((2, 1))
    outs = []
    for a, b in _sizes(total, chunk, hop):
        feats, es = enc.step(x[:, a:b], es)
        assert feats.shape[:2] == (2, 10)
        samples, ds = dec.step(torch.relu(feats).unsqueeze(1), ds)
        out, al = aligner.step(samples, b - a, al)
        outs.append(out)
    streamed = torch.cat(outs, dim=-1)
    lat = window - 1
    assert float((streamed[..., lat:] - offline[..., : total - lat]).abs().max()) <= 1e-5 * _rms(offline)


def test_step_does_not_mutate_the_module():
    enc = ConvEncoder(8, 16, causal=True)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    state = enc.init_state(1)
    _, new_state = enc.step(torch.randn(1, 50), state)
    assert state.buffer.shape[-1] == 8  # the old state is untouched too
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())
    assert new_state.buffer.shape[-1] == (8 + 50) % 8 + 8


def test_decoder_gradients_reach_encoder():
    enc, dec = ConvEncoder(8, 16, causal=True), ConvDecoder(8, 16, causal=True)
    x = torch.randn(2, 160)
    dec(torch.relu(enc(x)).unsqueeze(1), 160).square().sum().backward()
    assert float(enc.basis.weight.grad.abs().sum()) > 0 and float(dec.basis.weight.grad.abs().sum()) > 0


# ----------------------------------------------------------------------------- causality
@pytest.mark.parametrize("make", [lambda: ConvEncoder(6, 16, causal=True), lambda: STFT(64, 8, causal=True)])
def test_causal_encoders_do_not_look_ahead(make):
    enc = make()
    hop, window = enc.hop, enc.window
    x = torch.randn(1, 640)
    t = 333
    y = x.clone()
    y[:, t:] = torch.randn(1, 640 - t)
    with torch.no_grad():
        fx, fy = enc(x), enc(y)
    # frame k ends at input sample k*H + H - 1: every frame that ends before t is unchanged ...
    ends_before = (t - hop) // hop + 1
    torch.testing.assert_close(fx[..., :ends_before], fy[..., :ends_before], rtol=0, atol=0)
    # ... and the first frame that contains sample t does change (the check can fail)
    assert float((fx[..., ends_before] - fy[..., ends_before]).abs().max()) > 0
    assert window > hop


def test_streamed_codec_output_is_causal():
    codec = ComplexCodec(64, 8, causal=True)
    aligner = OutputAligner(codec.latency)

    def run(x):
        analysis, synthesis = codec.encoder.init_state(1), codec.decoder.init_state((1, 1))
        align = aligner.init_state((1, 1))
        outs = []
        for a in range(0, x.shape[-1], 13):
            ri, analysis = codec.encoder.step(x[:, a : a + 13], analysis)
            samples, synthesis = codec.decoder.step(ri.unsqueeze(1), synthesis)
            out, align = aligner.step(samples, min(13, x.shape[-1] - a), align)
            outs.append(out)
        return torch.cat(outs, dim=-1)

    x = torch.randn(1, 500)
    y = x.clone()
    y[:, 300:] += 1.0
    ox, oy = run(x), run(y)
    torch.testing.assert_close(ox[..., :300], oy[..., :300], rtol=0, atol=0)
    assert float((ox[..., 300 + codec.latency :] - oy[..., 300 + codec.latency :]).abs().max()) > 0.5


# ----------------------------------------------------------------------------- shape errors
def test_wrong_shapes_raise_value_error_naming_the_shape():
    with pytest.raises(ValueError, match=r"\(2, 3, 100\)"):
        STFT(16, 8)(torch.zeros(2, 3, 100))
    with pytest.raises(ValueError, match=r"\(2, 5, 10\)"):
        ISTFT(16, 8)(torch.zeros(2, 5, 10, dtype=torch.complex64))
    with pytest.raises(ValueError, match="complex"):
        ISTFT(16, 8)(torch.zeros(2, 9, 10))
    with pytest.raises(ValueError, match=r"\(2, 7, 10\)"):
        ConvDecoder(8, 16)(torch.zeros(2, 7, 10))
    with pytest.raises(ValueError, match="floating-point"):
        ConvEncoder(8, 16)(torch.zeros(4, 100).long())
    with pytest.raises(ValueError, match=r"\(4, 2, 100\)"):
        ConvEncoder(8, 16)(torch.zeros(4, 2, 100))
    codec = MagnitudeCodec(16, 8)
    mag, spec = codec.encode(torch.zeros(2, 80))
    with pytest.raises(ValueError, match=r"\(2, 9"):
        codec.decode(mag, spec)  # missing the source axis
    with pytest.raises(ValueError, match=r"\(1, 9"):
        codec.decode(mag.unsqueeze(1), spec[:1])
    with pytest.raises(ValueError, match=r"\(2, 1, 9"):
        ComplexCodec(16, 8).decode(torch.zeros(2, 1, 9, 9, 11))
