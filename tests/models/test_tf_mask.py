"""tf-mask (uPIT-(B)LSTM STFT masking): shapes, sizes, checkpoints, causality, streaming, gain, learning.

Causality and stream = offline for every causal preset are also in test_streaming_contract.py.
"""

from __future__ import annotations

import pytest
import torch
from model_learning import two_tone_losses

from speechsep.checkpoint import load_model, save_checkpoint
from speechsep.complexity import count_parameters
from speechsep.config import to_dict
from speechsep.inference.streaming import stream_through_model
from speechsep.models.base import StreamingNotSupported
from speechsep.models.tf_mask import BinNorm, TFMaskConfig
from speechsep.registry import build, build_from_config

PRESETS = ["tf-mask-blstm", "tf-mask-lstm", "tf-mask-tiny"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(**overrides):
    torch.manual_seed(0)
    return build("tf-mask-tiny", **overrides).eval()


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("length", [1, 333, 1001])
def test_every_preset_returns_the_input_length(name, length):
    torch.manual_seed(0)
    model = build(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, length)).shape == (2, 2, length)
        assert model(torch.randn(1, 1, length)).shape == (1, 2, length)


def test_options_and_errors():
    model = _tiny()
    assert build("tf-mask-tiny", num_sources=3)(torch.randn(1, 300)).shape == (1, 3, 300)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        model(torch.randn(2, 3, 4))
    for mask in ("softplus", "relu", "complex"):
        assert _tiny(mask=mask)(torch.randn(1, 500)).shape == (1, 2, 500)
    assert _tiny(feature="power", causal=False, residual=False)(torch.randn(1, 500)).shape == (1, 2, 500)
    with pytest.raises(ValueError, match="utterance"):
        TFMaskConfig(causal=True, norm="utterance")
    with pytest.raises(ValueError, match="mask"):
        TFMaskConfig(mask="tanh")
    with pytest.raises(StreamingNotSupported):
        build("tf-mask-blstm").init_state(1)


def test_latency_and_sizes():
    lstm, blstm = build("tf-mask-lstm"), build("tf-mask-blstm")
    assert lstm.is_causal and not blstm.is_causal
    assert lstm.latency == 255 and lstm.latency_ms == pytest.approx(31.875)  # the 32 ms window, W - 1
    assert (lstm.stft.window, lstm.stft.hop, lstm.num_bins) == (256, 64, 129)
    assert 2.0e6 <= count_parameters(blstm) <= 4.2e6
    assert 2.0e6 <= count_parameters(lstm) <= 4.2e6
    assert count_parameters(build("tf-mask-tiny")) < 50_000
    # 16 kHz keeps the durations: 512-sample window, 257 bins
    assert build("tf-mask-tiny", sample_rate=16000).num_bins == 257


@pytest.mark.parametrize("name", ["tf-mask-tiny", "tf-mask-blstm"])
def test_checkpoint_and_config_round_trip(name, tmp_path):
    model = build(name, hidden_size=8).eval()
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt")
    rebuilt = build_from_config("tf-mask", to_dict(model.config))
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 777)
    with torch.no_grad():
        y = model(x)
        torch.testing.assert_close(loaded(x), y, rtol=0, atol=0)
        torch.testing.assert_close(rebuilt.eval()(x), y, rtol=0, atol=0)
    assert loaded.config == model.config


def test_future_never_changes_the_past_and_streams_in_odd_chunks():
    model = _tiny(mask="complex")
    x = torch.randn(1, 2000)
    cut = 1200
    changed = x.clone()
    changed[:, cut:] = torch.randn(1, 2000 - cut)
    with torch.no_grad():
        diff = (model(changed) - model(x)).abs()
    assert diff[..., : cut - model.latency].max() == 0.0
    assert diff[..., cut:].max() > 1e-4
    # uneven chunks (none, less than a hop, several hops): exactly n out per n in, offline delayed
    model = model.double()
    x = x.double()
    with torch.no_grad():
        offline = model(x)
        state, outs, pos = model.init_state(1), [], 0
        for n in [0, 5, 63, 64, 1, 200, 7, 0, 900, 1015]:
            piece = torch.cat([x, x.new_zeros(1, model.latency)], -1)[:, pos:pos + n]
            out, state = model.step(piece, state)
            assert out.shape == (1, 2, piece.shape[-1])
            outs.append(out)
            pos += n
    streamed = torch.cat(outs, -1)[..., model.latency:model.latency + x.shape[-1]]
    torch.testing.assert_close(streamed, offline, rtol=0, atol=1e-9)


@pytest.mark.parametrize("causal", [True, False])
def test_dropout_acts_in_training_only(causal):
    """Dropout between the LSTM layers (a bundle's recipe may set it) changes training outputs and
    nothing at inference: the same weights with dropout 0 give the same eval output, and a causal
    model with dropout still streams exactly as it runs offline."""
    torch.manual_seed(0)
    model = build("tf-mask-tiny", causal=causal, num_layers=3, dropout=0.5)
    plain = build("tf-mask-tiny", causal=causal, num_layers=3, dropout=0.0)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(1, 1200)
    with torch.no_grad():
        model.train()
        assert (model(x) - model(x)).abs().max() > 1e-4  # two draws of the dropout mask
        model.eval()
        torch.testing.assert_close(model(x), plain.eval()(x), rtol=0, atol=0)
        if causal:
            streamed, _ = stream_through_model(model, x, 128)
            torch.testing.assert_close(streamed, model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_output_scales_with_the_input(causal):
    """Per-bin normalisation makes log features gain-free, so masks are too: f(g x) = g f(x)."""
    model = _tiny(causal=causal).double()
    x = torch.randn(2, 1500, dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
        # not exact: the log power's floor and the variance floor are not scaled
        torch.testing.assert_close(model(10.0 * x), 10.0 * y, rtol=1e-4, atol=1e-5 * float(y.pow(2).mean().sqrt()))


def test_cumulative_norm_uses_only_the_past():
    norm = BinNorm(3, "cumulative")
    x = torch.randn(2, 6, 3)
    y, state = norm.step(x, norm.init_state(2))
    torch.testing.assert_close(norm(x), y)  # the offline forward is the step from the initial state
    # frame k normalised with the mean and variance of frames 0..k of its own bin
    k = 3
    past = x[:, : k + 1].double()
    expected = (x[:, k] - past.mean(1)) / torch.sqrt(past.var(1, unbiased=False) + norm.eps)
    torch.testing.assert_close(y[:, k], expected.float(), rtol=1e-5, atol=1e-5)
    # continuing from the state equals one pass
    y1, s1 = norm.step(x[:, :2], norm.init_state(2))
    y2, _ = norm.step(x[:, 2:], s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y)
    assert tuple(state.total.shape) == (2, 3)


def test_gradients_reach_every_parameter():
    model = _tiny().train()
    model(torch.randn(2, 800)).pow(2).mean().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())


@pytest.mark.parametrize("causal", [True, False])
def test_tiny_model_learns_two_tones(causal):
    torch.manual_seed(0)
    losses = two_tone_losses(build("tf-mask-tiny", causal=causal).train())
    assert min(losses[-5:]) < losses[0] - 10.0, losses  # at least 10 dB better SNR


def test_deep_clustering_head_trains_beside_the_masks_and_is_not_used_at_inference():
    from speechsep.losses.objectives import ObjectiveConfig

    model = _tiny(embedding_dim=4, embedding_stride=2).train()
    torch.manual_seed(1)
    targets = torch.randn(2, 2, 1600)
    mixture = targets.sum(1)
    (out,) = model.training_outputs(mixture, targets, ObjectiveConfig(deep_clustering_weight=1.0))
    assert out.deep_clustering.shape == (2,) and bool(torch.isfinite(out.deep_clustering).all())
    assert bool((out.deep_clustering >= 0).all()) and bool((out.deep_clustering <= 4).all())
    model.eval()
    torch.testing.assert_close(out.estimate, model(mixture))  # the head changes nothing the listener hears
    model.train()
    out.deep_clustering.sum().backward()
    assert float(model.embedding_head.weight.grad.abs().sum()) > 0
    assert all(float(p.grad.abs().sum()) > 0 for p in model.layers.parameters())  # it shapes the shared stack
    assert model.head.weight.grad is None  # and the mask head only through the mask loss
    # unweighted, the term is not computed at all
    (plain,) = model.training_outputs(mixture, targets, ObjectiveConfig())
    assert plain.deep_clustering is None
    with pytest.raises(ValueError, match="embedding_dim"):
        _tiny(embedding_dim=-1)
    with pytest.raises(ValueError, match="embedding_stride"):
        _tiny(embedding_stride=0)


def test_deep_clustering_term_falls_when_trained():
    from speechsep.losses.objectives import ObjectiveConfig

    model = _tiny(embedding_dim=4).train()
    gen = torch.Generator().manual_seed(2)
    t = torch.arange(1600) / 8000
    targets = torch.stack([torch.sin(2 * torch.pi * 300 * t), torch.sin(2 * torch.pi * 2000 * t)])[None].repeat(2, 1, 1)
    targets = targets + 0.01 * torch.randn(targets.shape, generator=gen)
    objective = ObjectiveConfig(deep_clustering_weight=1.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    terms = []
    for _ in range(40):
        (out,) = model.training_outputs(targets.sum(1), targets, objective)
        opt.zero_grad()
        out.deep_clustering.mean().backward()
        opt.step()
        terms.append(float(out.deep_clustering.detach().mean()))
    assert min(terms[-5:]) < 0.5 * terms[0], terms
