"""TFACM's streaming step in ONNX: parity with PyTorch over a whole stream, the CLI round trip."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from speechsep.export.onnx import OnnxStreamer, export_onnx, stream_parity
from speechsep.inference.streaming import stream_through_model
from speechsep.registry import build

pytestmark = pytest.mark.slow  # each export traces the whole step (about 10 s on a loaded 2-core machine)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = build("tfacm-tiny", segment_ms=20.0).eval()  # 16-frame chunks against 20-frame segments
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", model_name="tfacm-tiny")
    return model, OnnxStreamer(path, threads=1)


def test_onnx_stream_matches_pytorch_over_a_whole_stream(exported):
    model, streamer = exported
    assert (streamer.chunk_samples, streamer.latency, streamer.num_sources) == (128, model.latency, 2)
    names = [i.name for i in streamer.session.get_inputs()]
    assert names[0] == "chunk" and any("keys" in n for n in names) and any("frames" in n for n in names)
    err, rms = stream_parity(model, streamer, seconds=0.5)  # 32 chunks: segment boundaries at every phase
    assert rms > 1e-4 and err <= 1e-4 * rms


def test_stream_cli_runs_the_onnx_step(exported, tmp_path, capsys):
    from speechsep.cli import main

    model, streamer = exported
    x = 0.3 * np.random.default_rng(1).standard_normal(3000).astype("float32")  # not a multiple of the chunk
    sf.write(tmp_path / "mix.wav", x, 8000, subtype="FLOAT")
    assert main(["stream", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "out"), "--onnx", str(streamer.path),
                 "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "(onnxruntime)" in text and "p95" in text and "real-time factor" in text
    ref, _ = stream_through_model(model, torch.from_numpy(x)[None], 128)
    for s in range(2):
        got, sr = sf.read(tmp_path / "out" / f"mix_s{s + 1}.wav")
        assert sr == 8000 and got.shape == (3000,)
        # written as 16-bit PCM: quantisation, not the model, limits the match
        assert np.abs(got - ref[0, s].numpy()).max() <= 2.0 / 32768
    with pytest.raises(ValueError, match="multiple of 128"):
        stream_through_model(streamer, torch.zeros(1, 256), 100)


def test_export_cli_checks_parity(tmp_path, capsys):
    from speechsep.cli import main

    assert main(["export", "tfacm-tiny", "--format", "onnx", "-o", str(tmp_path / "m.onnx"), "--check"]) == 0
    text = capsys.readouterr().out
    assert "parity over 2 s" in text and "FAILED" not in text
    assert OnnxStreamer(tmp_path / "m.onnx").meta["model"] == "tfacm-tiny"
