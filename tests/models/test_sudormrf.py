"""SuDoRM-RF: shapes, paper sizes, the U-ConvBlock pyramid, checkpoints, causality, streaming, learning.

Causality and stream = offline for every causal preset are also in test_streaming_contract.py.
"""

from __future__ import annotations

import pytest
import torch
from model_learning import two_tone_losses

from speechsep.checkpoint import load_model, save_checkpoint
from speechsep.complexity import count_parameters
from speechsep.config import to_dict
from speechsep.models.base import StreamingNotSupported
from speechsep.models.sudormrf import SuDoRMRFConfig, UConvBlock, _upsample
from speechsep.registry import build, build_from_config

PRESETS = ["sudormrf-1.0x", "sudormrf-0.5x", "sudormrf-0.25x", "sudormrf-causal", "sudormrf-tiny"]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(**overrides):
    torch.manual_seed(0)
    return build("sudormrf-tiny", **overrides).eval()


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("length", [1, 333])
def test_every_preset_returns_the_input_length(name, length):
    torch.manual_seed(0)
    model = build(name).eval()
    with torch.no_grad():
        assert model(torch.randn(2, length)).shape == (2, 2, length)
        assert model(torch.randn(1, 1, length)).shape == (1, 2, length)


@pytest.mark.parametrize("length", [2, 19, 80, 81, 1001])
@pytest.mark.parametrize("causal", [True, False])
def test_odd_lengths_through_a_deep_pyramid(length, causal):
    # depth 5: frame counts that are not multiples of 2^4 at every level
    model = _tiny(depth=5, causal=causal)
    with torch.no_grad():
        assert model(torch.randn(1, length)).shape == (1, 2, length)


def test_options_and_errors():
    model = _tiny()
    assert build("sudormrf-tiny", num_sources=3)(torch.randn(1, 300)).shape == (1, 3, 300)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        model(torch.randn(2, 3, 4))
    x = torch.randn(1, 500)
    with torch.no_grad():
        for mask in ("sigmoid", "softmax"):
            assert _tiny(mask=mask)(x).shape == (1, 2, 500)
        # softmax masks share the encoder output out: the sources' features sum to it, so the decoded
        # sources sum to the decoded (ReLU'd) mixture features, whatever the weights
        m = _tiny(mask="softmax", causal=False)
        w = torch.relu(m.encoder(x))
        torch.testing.assert_close(m(x).sum(1), m.decoder(w, x.shape[-1]), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="mask"):
        SuDoRMRFConfig(mask="tanh")
    with pytest.raises(ValueError, match="odd"):
        SuDoRMRFConfig(dw_kernel=4)
    with pytest.raises(StreamingNotSupported):
        build("sudormrf-0.5x").init_state(1)


def test_sizes_follow_the_paper():
    # Table 1 of the paper: 1.0x 2.66 M, 0.5x 1.42 M (ours: one decoder basis shared by the sources)
    assert count_parameters(build("sudormrf-1.0x")) / 2.66e6 == pytest.approx(1, abs=0.03)
    assert count_parameters(build("sudormrf-0.5x")) / 1.42e6 == pytest.approx(1, abs=0.03)
    assert 0.6e6 <= count_parameters(build("sudormrf-0.25x")) <= 1.0e6
    assert count_parameters(build("sudormrf-tiny")) < 10_000
    causal = build("sudormrf-causal")
    assert causal.is_causal and causal.latency == 20  # the 21-sample encoder window, W - 1
    assert not build("sudormrf-0.5x").is_causal


def test_upsample_picks_the_coarse_frame_of_each_fine_frame():
    coarse = torch.tensor([[[10.0, 11.0, 12.0]]])
    assert _upsample(coarse, None, 0, 5).tolist() == [[[10, 10, 11, 11, 12]]]
    # odd start: fine frame 3 takes coarse frame 1, the previous chunk's last one
    last = torch.tensor([[[9.0]]])
    assert _upsample(coarse, last, 3, 6).tolist() == [[[9, 10, 10, 11, 11, 12]]]


def test_causal_block_reads_no_later_frame():
    torch.manual_seed(0)
    block = UConvBlock(4, 6, depth=4, kernel=5, causal=True).eval()
    x = torch.randn(1, 4, 40)
    changed = x.clone()
    changed[..., 21] += 1.0
    with torch.no_grad():
        diff = (block(changed) - block(x)).abs().sum(1)[0]
    assert diff[:21].max() == 0.0 and diff[21] > 0
    # the non-causal block sees up to (k // 2) * 2^(Q-1) frames ahead through its coarsest level
    free = UConvBlock(4, 6, depth=4, kernel=5, causal=False).eval()
    with torch.no_grad():
        assert (free(changed) - free(x)).abs().sum(1)[0, :21].max() > 0


@pytest.mark.parametrize("name", ["sudormrf-tiny", "sudormrf-0.25x"])
def test_checkpoint_and_config_round_trip(name, tmp_path):
    model = build(name, enc_bases=16, bottleneck=8, hidden=16).eval()
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt")
    rebuilt = build_from_config("sudormrf", to_dict(model.config))
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 777)
    with torch.no_grad():
        y = model(x)
        torch.testing.assert_close(loaded(x), y, rtol=0, atol=0)
        torch.testing.assert_close(rebuilt.eval()(x), y, rtol=0, atol=0)
    assert loaded.config == model.config


def test_causal_future_never_changes_the_past_and_streams_in_odd_chunks():
    # the preset's depth (4: three halvings), so odd positions occur at every level
    model = _tiny(depth=4)
    x = torch.randn(1, 2000)
    cut = 1200
    changed = x.clone()
    changed[:, cut:] = torch.randn(1, 2000 - cut)
    with torch.no_grad():
        diff = (model(changed) - model(x)).abs()
    assert diff[..., : cut - model.latency].max() == 0.0
    assert diff[..., cut:].max() > 1e-6
    model, x = model.double(), x.double()
    padded = torch.cat([x, x.new_zeros(1, model.latency)], -1)
    with torch.no_grad():
        offline = model(x)
        state, outs, pos = model.init_state(1), [], 0
        for n in [0, 3, 7, 10, 11, 1, 29, 0, 80, 90, 169, 600, 1020]:
            piece = padded[:, pos:pos + n]
            out, state = model.step(piece, state)
            assert out.shape == (1, 2, piece.shape[-1])
            outs.append(out)
            pos += n
    assert pos >= padded.shape[-1]
    streamed = torch.cat(outs, -1)[..., model.latency:model.latency + x.shape[-1]]
    torch.testing.assert_close(streamed, offline, rtol=0, atol=1e-9)


def test_gradients_reach_every_parameter():
    for causal in (True, False):
        model = _tiny(causal=causal).train()
        model(torch.randn(2, 800)).pow(2).mean().backward()
        assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.parameters())


@pytest.mark.parametrize("causal", [True, False])
def test_tiny_model_learns_two_tones(causal):
    torch.manual_seed(0)
    losses = two_tone_losses(build("sudormrf-tiny", causal=causal).train())
    assert min(losses[-5:]) < losses[0] - 10.0, losses  # at least 10 dB better SNR
