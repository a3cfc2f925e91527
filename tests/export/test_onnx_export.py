"""ONNX export of the streaming step: parity with PyTorch over a whole stream, metadata, CLI."""

import dataclasses
from typing import NamedTuple

import numpy as np
import pytest
import torch

from speechsep.export.onnx import OnnxStreamer, default_chunk_samples, export_onnx, stream_parity
from speechsep.models.base import StreamingNotSupported


def test_default_chunk_is_16ms_in_whole_hops(testkit):
    model = testkit.toy_model()
    assert default_chunk_samples(model) == 128  # 16 ms at 8 kHz
    model.config.hop = 48  # a model that steps in 48-sample hops: 128 rounds up to 144
    assert default_chunk_samples(model) == 144


@pytest.mark.parametrize("batch", [1, 2])
def test_onnxruntime_stream_matches_pytorch(testkit, tmp_path, batch):
    model = testkit.toy_model()
    path = export_onnx(model, tmp_path / "toy.onnx", chunk_samples=64, batch_size=batch)
    streamer = OnnxStreamer(path, threads=1)
    assert (streamer.chunk_samples, streamer.latency, streamer.num_sources) == (64, model.latency, 2)
    names = [i.name for i in streamer.session.get_inputs()]
    assert names == ["chunk", "state_conv_cache", "state_lstm_0", "state_lstm_1", "state_delay"]
    err, rms = stream_parity(model, streamer, seconds=0.25)
    assert rms > 1e-3 and err <= 1e-4 * rms


def test_step_takes_several_chunks_and_checks_shapes(testkit, tmp_path):
    model = testkit.toy_model()
    streamer = OnnxStreamer(export_onnx(model, tmp_path / "toy.onnx", chunk_samples=32))
    x = torch.randn(1, 32 * 5)
    out, _ = streamer.step(x, streamer.init_state(1))  # 5 chunks in one call
    with torch.no_grad():
        ref, _ = model.step(x, model.init_state(1))
    assert out.shape == (1, 2, 160) and torch.allclose(out, ref, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 32"):
        streamer.step(torch.zeros(1, 33), streamer.init_state(1))
    with pytest.raises(ValueError, match="batch size 1"):
        streamer.init_state(2)


@dataclasses.dataclass
class _DataclassState:
    count: torch.Tensor
    inner: tuple[torch.Tensor, ...]


class _Nested(NamedTuple):
    outer: _DataclassState
    bias: dict


def test_nested_dataclass_state_with_nonzero_initial_values(testkit, tmp_path):
    """A running-sum model whose state nests a dataclass in a NamedTuple and starts non-zero."""

    class RunningSum(testkit.GainSeparator):
        def init_state(self, batch_size=1, *, device=None, dtype=None, chunk_samples=None):
            return _Nested(_DataclassState(torch.zeros(()), (torch.full((batch_size, 1), 0.5),)),
                           {"b": torch.ones(batch_size, 1)})

        def step(self, chunk, state):
            total = state.outer.inner[0] + torch.cumsum(chunk, -1)  # (B, n)
            out = torch.stack([total, state.bias["b"] * chunk], dim=1)  # (B, 2, n)
            return out, _Nested(_DataclassState(state.outer.count + chunk.shape[-1], (total[:, -1:],)), state.bias)

    model = RunningSum(testkit.ModelConfig())
    streamer = OnnxStreamer(export_onnx(model, tmp_path / "sum.onnx", chunk_samples=16))
    init = streamer.init_state(1)
    assert np.allclose(init.tensors[1], 0.5)  # non-zero initial values travel in the metadata
    err, rms = stream_parity(model, streamer, seconds=0.1)
    assert err <= 1e-4 * rms


def test_non_tensor_state_and_non_causal_models_are_refused(testkit, tmp_path, monkeypatch):
    model = testkit.toy_model()
    monkeypatch.setattr(type(model), "init_state", lambda self, b=1, **_: (torch.zeros(b, 1), 3))
    with pytest.raises(ValueError, match="not a tensor"):
        export_onnx(model, tmp_path / "x.onnx")
    monkeypatch.setattr(type(model), "is_causal", property(lambda self: False))
    with pytest.raises(StreamingNotSupported):
        export_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()  # nothing half-written


def test_onnx_streamer_is_a_streamer_of_its_fixed_chunk(testkit, tmp_path):
    from speechsep.models.base import Streamer

    streamer = OnnxStreamer(export_onnx(testkit.toy_model(), tmp_path / "toy.onnx", chunk_samples=32), threads=1)
    assert isinstance(streamer, Streamer)
    assert (streamer.step_samples, streamer.threads) == (32, 1)
