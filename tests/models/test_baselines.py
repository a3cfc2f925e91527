"""The four causal baselines of TFACM Table I: shapes, causality, streaming = offline, sizes."""

from __future__ import annotations

import pytest
import torch

from speechsep.blocks.dprnn import CausalDualPath
from speechsep.checkpoint import load_model, save_checkpoint
from speechsep.complexity import complexity, count_parameters
from speechsep.models.dprnn_causal import DPRNNCausalConfig
from speechsep.models.resepformer import ReSepFormerConfig, TransformerConfig
from speechsep.models.skim import SkiMCore
from speechsep.registry import build, get_preset

FAMILIES = ["dprnn-causal", "skim", "resepformer", "tfgridnet-causal"]
TINY = [f"{name}-tiny" for name in FAMILIES]


@pytest.fixture(autouse=True)
def _one_thread():
    # the tiny models run hundreds of small ops per stream step; a second thread only adds sync cost
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(name: str, **overrides):
    torch.manual_seed(0)
    return build(name, **overrides).eval()


def _stream(model, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """Stream ``x`` plus ``latency`` zeros in chunks; return the outputs aligned with the offline ones."""
    latency = model.latency
    padded = torch.cat([x, x.new_zeros(x.shape[0], latency)], dim=-1)
    state, outs = model.init_state(x.shape[0]), []
    for start in range(0, padded.shape[-1], chunk):
        piece = padded[:, start:start + chunk]
        out, state = model.step(piece, state)
        assert out.shape == (x.shape[0], model.num_sources, piece.shape[-1])
        outs.append(out)
    return torch.cat(outs, dim=-1)[..., latency:latency + x.shape[-1]]


def _state_numel(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, (tuple, list)):
        return sum(_state_numel(s) for s in state)
    return 0


def _tensors(state) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in _tensors(s)]
    return []


@pytest.mark.parametrize("name", TINY)
def test_shapes_and_wrong_shape(name):
    model = _model(name)
    x = torch.randn(2, 333)
    assert model(x).shape == (2, 2, 333)
    assert model(x.unsqueeze(1)).shape == (2, 2, 333)
    assert _model(name, num_sources=3)(x[:1]).shape == (1, 3, 333)
    with pytest.raises(ValueError, match=r"\(2, 2, 333\)"):
        model(torch.randn(2, 2, 333))
    assert model.is_causal


@pytest.mark.parametrize("name", TINY)
def test_causal(name):
    model = _model(name)
    cut = 400
    x = torch.randn(1, 800)
    changed = x.clone()
    changed[:, cut:] = torch.randn(1, 800 - cut)
    with torch.no_grad():
        diff = (model(changed) - model(x)).abs()
    # output sample s reads input up to s + latency: nothing before cut - latency may move
    assert diff[..., : cut - model.latency].max() == 0.0
    assert diff[..., cut:].max() > 1e-4  # the change does reach the output


@pytest.mark.parametrize("chunk", ["hop", 13, 8000])
@pytest.mark.parametrize("name", TINY)
def test_stream_equals_offline(name, chunk):
    model = _model(name)
    chunk = model.hop if chunk == "hop" else chunk
    x = torch.randn(2, 8100 if chunk == 8000 else 201)
    with torch.no_grad():
        offline = model(x)
        streamed = _stream(model, x, chunk)
    torch.testing.assert_close(streamed, offline, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", TINY)
def test_state_is_constant_and_step_is_pure(name):
    model = _model(name)
    params = {k: v.clone() for k, v in model.state_dict().items()}
    nxt = torch.randn(2, 120)
    with torch.no_grad():
        state = model.init_state(2)
        _, state = model.step(torch.randn(2, 57), state)
        first, _ = model.step(nxt, state)
        # a longer stream in the same chunks: the state never holds more values than early on
        # (attention caches keep slack and are compacted when it runs out, so sizes cycle)
        sizes, running = [], state
        for _ in range(40):
            _, running = model.step(torch.randn(2, 120), running)
            sizes.append(_state_numel(running))
        # the state passed in still means what it meant: stepping it again repeats the first answer
        # (attention caches may share a buffer between states, so compare behaviour, not storage)
        again, _ = model.step(nxt, state)
    torch.testing.assert_close(again, first, atol=0, rtol=0)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in params.items())
    assert max(sizes[20:]) <= max(sizes[:20])


@pytest.mark.parametrize("name", TINY)
def test_checkpoint_rebuilds_the_model(name, tmp_path):
    model = _model(name)
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_model(tmp_path / "m.pt").eval()
    x = torch.randn(1, 200)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded.latency == model.latency


def test_latency_is_the_front_end_window():
    assert _model("dprnn-causal-tiny").latency == 7  # 8-sample encoder window
    assert _model("tfgridnet-causal-tiny").latency == 15  # 16-sample STFT window
    assert _model("dprnn-causal").latency_ms == pytest.approx(0.375)
    assert _model("tfgridnet-causal").latency_ms == pytest.approx(7.875)


@pytest.mark.parametrize("name", FAMILIES)
def test_paper_size_lands_on_table1_parameters(name):
    preset = get_preset(name)
    assert "tfacm-table1" in preset.tags
    params = count_parameters(build(name)) / 1e6
    assert abs(params / preset.paper["params_m"] - 1) <= 0.15, (name, params)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_paper_size_lands_on_table1_macs(name):
    macs = complexity(build(name)).gmacs_per_second
    assert abs(macs / get_preset(name).paper["macs_g"] - 1) <= 0.15, (name, macs)


def test_dual_path_covers_every_frame_twice_after_the_first_hop():
    # with all-zero LSTM weights each path is x + LN(bias): constant per frame, so the
    # overlap-add shows how many segments cover a frame (1 in the first hop, 2 afterwards)
    torch.manual_seed(0)
    core = CausalDualPath(channels=4, hidden=3, segment=6, num_blocks=1)
    with torch.no_grad():
        for p in core.parameters():
            p.zero_()
        for path in (*core.intra, *core.inter):
            path.norm.bias.fill_(1.0)
        y = core(torch.zeros(1, 10, 4))
    torch.testing.assert_close(y[0, :, 0], torch.tensor([2.0] * 3 + [4.0] * 7))


def test_skim_memory_reaches_only_later_segments():
    torch.manual_seed(0)
    core = SkiMCore(channels=4, hidden=5, segment=4, num_layers=2).eval()
    x = torch.randn(1, 16, 4)
    changed = x.clone()
    changed[:, 3] += 1.0  # last frame of segment 0
    with torch.no_grad():
        diff = (core(changed) - core(x)).abs().sum(-1)[0]
    assert diff[:3].max() == 0.0
    # the next segment changes from its first frame: through the memory, not through the SegLSTM state
    assert diff[4] > 0
    # without memory layers the SegLSTM restarts at each segment, so segment 1 would not change
    single = SkiMCore(channels=4, hidden=5, segment=4, num_layers=1).eval()
    with torch.no_grad():
        assert (single(changed) - single(x))[0, 4:].abs().max() == 0.0


def test_config_errors():
    with pytest.raises(ValueError, match="even"):
        CausalDualPath(channels=4, hidden=3, segment=5, num_blocks=1)
    with pytest.raises(ValueError, match="heads"):
        ReSepFormerConfig(intra=TransformerConfig(heads=4), memory=TransformerConfig(heads=8))
    assert DPRNNCausalConfig().num_blocks == 4
