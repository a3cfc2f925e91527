"""TFACM: Table I sizes, ablation switches, the cache-memory alignment (eq. 2), shapes and options.

Causality and stream = offline for every TFACM preset are in test_streaming_contract.py.
"""

from __future__ import annotations

import pytest
import torch

from speechsep.models.base import StreamingNotSupported
from speechsep.models.tfacm import TFACM, TFACMConfig
from speechsep.models.tfacm_modules import segment_pieces
from speechsep.registry import build, get_preset, list_presets

TINY = get_preset("tfacm-tiny").config


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(**overrides) -> TFACM:
    torch.manual_seed(0)
    return build("tfacm-tiny", **overrides).eval()


def test_segment_pieces():
    assert segment_pieces(0, 140, 70) == [70, 70]
    assert segment_pieces(65, 150, 70) == [5, 70, 70, 5]
    assert segment_pieces(3, 2, 70) == [2]
    assert segment_pieces(68, 2, 70) == [2]
    assert segment_pieces(10, 0, 70) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfacm-large", "tfacm-small"])
def test_table1_presets_land_on_the_paper(name):
    from speechsep.complexity import complexity

    preset = get_preset(name)
    assert "tfacm-table1" in preset.tags
    c = complexity(build(name))
    assert c.params_m == pytest.approx(preset.paper["params_m"], rel=0.10)
    assert c.gmacs_per_second == pytest.approx(preset.paper["macs_g"], rel=0.15)


def test_table1_tag_lists_both_rows():
    assert {p.name for p in list_presets("tfacm-table1") if p.family == "tfacm"} == {"tfacm-large", "tfacm-small"}


def test_config_sizes_follow_milliseconds():
    m = build("tfacm-tiny", sample_rate=16000)
    assert m.codec.window == 128 and m.codec.hop == 16 and m.codec.num_bins == 65
    assert m.latency == 127 and m.latency_ms == pytest.approx(7.9375)
    assert m.separator.segment == 40  # 40 ms of 1 ms hops, at any rate
    assert build("tfacm-large").separator.segment == 70
    y = m(torch.randn(1, 1600))
    assert y.shape == (1, 2, 1600)


def _param_names(model) -> set[str]:
    return {name for name, _ in model.named_parameters()}


def test_car_switch_removes_exactly_the_gated_convolution():
    full, ablated = _param_names(_tiny()), _param_names(_tiny(car=False))
    removed = full - ablated
    assert ablated < full
    assert removed and all(".car.gate_" in name for name in removed)
    # attention stays: Table II removes only the gated convolution after it
    assert any(".car.query." in name for name in ablated)
    for i in range(TINY.num_blocks):
        assert {f"separator.blocks.{i}.car.gate_out.weight", f"separator.blocks.{i}.car.gate_left.pw_in.weight"} <= removed


def test_cache_memory_switch_removes_exactly_the_memory_lstms():
    full, ablated = _param_names(_tiny()), _param_names(_tiny(cache_memory=False))
    removed = full - ablated
    assert removed == {n for n in full if n.startswith("separator.memory.")}
    assert any("h_net" in n for n in removed) and any("c_net" in n for n in removed)
    model = _tiny(cache_memory=False)
    assert not model.is_causal
    with pytest.raises(StreamingNotSupported):
        model.init_state(1)


def _first_block_output_change(model, change_at: int, frames: int = 30) -> torch.Tensor:
    """Per frame, the largest change of the separator output when input frame ``change_at`` changes."""
    sep = model.separator
    x = torch.randn(1, 2, model.codec.num_bins, frames)
    x2 = x.clone()
    x2[..., change_at] += 3.0
    with torch.no_grad():
        # the offline path: the unaligned ablation has no streaming step
        y, _ = sep.forward_block(x, sep.init_state(1))
        y2, _ = sep.forward_block(x2, sep.init_state(1))
    return (y - y2).abs().amax(dim=(0, 1, 2, 3))


def test_cache_memory_is_shifted_one_segment():
    # 10 ms segments = 10 frames. Aligned (eq. 2): a change in frame 13 (segment 1) reaches nothing
    # before frame 13. Unaligned identity (Table II): block 2's segment 1 starts from block 1's
    # segment 1 final state, so frames 10..12 change too: the future leaks.
    kw = {"segment_ms": 10.0, "attention_window_ms": 3.0, "num_blocks": 2}
    aligned = _first_block_output_change(_tiny(**kw), 13)
    assert float(aligned[:13].max()) == 0.0 and float(aligned[13]) > 0
    leaky = _first_block_output_change(_tiny(cache_memory=False, **kw), 13)
    assert float(leaky[:10].max()) == 0.0 and float(leaky[10:13].min()) > 0


def test_cache_memory_carries_history_across_segments():
    # with a 1-frame attention window and 1-frame kernels, frame 25 (segment 2) can hear frame 3
    # (segment 0) only through the cache memory and T-Local's carried state
    kw = {"segment_ms": 10.0, "attention_window_ms": 1.0, "gate_kernel": 1, "tlocal_kernel": 1,
          "input_kernel": 1, "output_kernel": 1, "num_blocks": 3}
    with_cm = _first_block_output_change(_tiny(**kw), 3)
    assert float(with_cm[25]) > 0
    without_cm = _first_block_output_change(_tiny(cache_memory=False, **kw), 3)
    assert float(without_cm[10:].max()) == 0.0  # identity memory, segment-local LSTMs: no path


@pytest.mark.parametrize("cache_memory", [True, False])
def test_offline_blocks_do_not_change_the_output(cache_memory):
    model = _tiny(cache_memory=cache_memory)
    x = torch.randn(2, 2400)
    with torch.no_grad():
        y = model(x)
        model.offline_block_frames = 37  # odd split: chunks start mid-segment, exercise every piece type
        y_split = model(x)
    torch.testing.assert_close(y_split, y, rtol=0, atol=1e-5 * float(y.pow(2).mean().sqrt()))


def test_mask_output_streams_and_scales_with_the_mixture():
    model = _tiny(output="mask")
    x = torch.randn(1, 1200)
    with torch.no_grad():
        y = model(x)
        state = model.init_state(1)
        outs = []
        for piece in x.split(40, dim=-1):
            out, state = model.step(piece, state)
            outs.append(out)
    ys = torch.cat(outs, -1)
    lat = model.latency
    torch.testing.assert_close(ys[..., lat:], y[..., :-lat], rtol=0, atol=1e-5 * float(y.abs().max()))
    with pytest.raises(ValueError, match="mapping"):
        TFACM(TFACMConfig(output="spectrum"))


def test_shapes_and_errors():
    model = _tiny()
    assert model(torch.randn(3, 1, 500)).shape == (3, 2, 500)
    assert build("tfacm-tiny", num_sources=3)(torch.randn(1, 300)).shape == (1, 3, 300)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        model(torch.randn(2, 3, 4))
    state = model.init_state(1)
    out, state2 = model.step(torch.zeros(1, 0), state)
    assert out.shape == (1, 2, 0)


def test_step_does_not_mutate_module_and_gradients_flow():
    model = _tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = model.init_state(1)
    model.step(torch.randn(1, 200), state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(2, 800)
    model(x).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) > 0 for g in grads) > 0.9 * len(grads)


def _leaves(state) -> list[torch.Tensor]:
    import dataclasses

    if isinstance(state, torch.Tensor):
        return [state]
    if dataclasses.is_dataclass(state):
        state = [getattr(state, f.name) for f in dataclasses.fields(state)]
    return [t for item in (state or []) for t in _leaves(item)] if isinstance(state, (list, tuple)) else []


@pytest.mark.parametrize(("hops", "overrides"), [(1, {"segment_ms": 10.0}), (7, {"segment_ms": 10.0}),
                                                 (10, {"segment_ms": 10.0}), (16, {"car": False}),
                                                 (2, {"output": "mask", "segment_ms": 10.0})],
                         ids=["1-hop", "prime-hops-unaligned", "whole-segment", "no-car-16ms", "mask"])
def test_step_on_export_chunks_keeps_state_sizes_and_gives_the_offline_output(hops, overrides):
    """``step`` on the fixed chunks an ONNX export takes (tensor positions, fixed-size state: what ONNX
    runs) gives the offline output, delayed (float64: the comparison sees arithmetic, not rounding)."""
    model = _tiny(**overrides).double()
    chunk = hops * model.codec.hop
    x = torch.randn(2, chunk * max(6, 32 // hops), dtype=torch.float64)  # 32 frames or more: several boundaries
    with torch.no_grad():
        y = model(x)
        state = model.init_state(2, chunk_samples=chunk)
        got, sizes = [], set()
        for piece in x.split(chunk, dim=-1):
            out, state = model.step(piece, state)
            got.append(out)
            sizes.add(tuple(tuple(t.shape) for t in _leaves(state)))
    lat = model.latency
    ref_t, got_t = y[..., : y.shape[-1] - lat], torch.cat(got, -1)[..., lat:]
    assert torch.cat(got, -1).shape == y.shape == (2, 2, x.shape[-1])
    assert float((got_t - ref_t).abs().max()) <= 1e-5 * float(ref_t.pow(2).mean().sqrt())
    assert len(sizes) == 1  # every state tensor keeps its shape: the graph can carry it
    assert int(state.separator.frames) == x.shape[-1] // model.codec.hop


def test_init_state_refuses_export_chunks_it_cannot_trace():
    model = _tiny(segment_ms=10.0)
    hop = model.codec.hop
    with pytest.raises(ValueError, match="multiple of the 8-sample hop"):
        model.init_state(1, chunk_samples=hop + 1)
    with pytest.raises(ValueError, match="at most one T-Local segment"):
        model.init_state(1, chunk_samples=11 * hop)
    with pytest.raises(StreamingNotSupported):
        _tiny(cache_memory=False).init_state(1, chunk_samples=hop)


def test_traceable_state_dict_is_unchanged():
    # the export path adds derived buffers only: checkpoints (the bundled tfacm-lite) load as before
    model = build("tfacm-lite")
    assert not any(name.startswith("_dft") for name in model.state_dict())


@pytest.mark.parametrize("frames", [1, 39, 40, 81, 203])
@pytest.mark.parametrize("overrides", [{}, {"num_blocks": 1}, {"car": False, "output": "mask"}])
def test_one_pass_separator_equals_the_blocked_forward_from_the_initial_state(frames, overrides):
    """TFACMSeparator.forward (what the offline ONNX export traces): every T-Local segment of a block in one
    LSTM call, the cache memory over all segments, then shifted (segments of 40 frames here)."""
    model = _tiny(**overrides)
    spec = torch.randn(2, 2, model.codec.num_bins, frames)
    with torch.no_grad():
        ref, _ = model.separator.forward_block(spec, model.separator.init_state(2))
        got = model.separator(spec)
    assert got.shape == ref.shape == (2, 2, 2, model.codec.num_bins, frames)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_one_pass_separator_refuses_the_unaligned_ablation():
    model = _tiny(cache_memory=False)
    with pytest.raises(NotImplementedError, match=r"cache_memory=False.*last, partial T-Local segment"):
        model.separator(torch.randn(1, 2, model.codec.num_bins, 50))
