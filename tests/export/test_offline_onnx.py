"""ONNX export of the offline (whole-utterance) forward: parity at two lengths, the export-friendly
STFT, every segmented model family with a dynamic length, the CLI's automatic choice for a non-causal
model, one-line errors for what cannot be exported."""

from __future__ import annotations

import warnings

import onnx
import pytest
import torch

from speechsep.blocks.dprnn import GlobalLayerNorm, group_norm
from speechsep.blocks.encoders import (
    ISTFT,
    STFT,
    ConvDecoder,
    ConvEncoder,
    export_friendly,
    is_export_friendly,
)
from speechsep.checkpoint import save_checkpoint
from speechsep.export.offline import (
    CHECK_SECONDS,
    OfflineExportNotSupported,
    OnnxSeparator,
    export_offline_onnx,
    offline_parity,
)
from speechsep.export.onnx import OnnxStreamer
from speechsep.models.base import SeparationModel
from speechsep.registry import build


def _tiny_tf_mask(causal: bool) -> SeparationModel:
    torch.manual_seed(0)
    return build("tf-mask-tiny", causal=causal).eval()


@pytest.mark.parametrize("causal", [False, True])
def test_tf_mask_offline_graph_matches_pytorch_at_two_lengths(tmp_path, causal):
    model = _tiny_tf_mask(causal)
    path = export_offline_onnx(model, tmp_path / "m.onnx", model_name="tf-mask-tiny")
    separator = OnnxSeparator(path, threads=1)
    assert separator.meta["mode"] == "offline" and separator.meta["config"]["causal"] is causal
    results = offline_parity(model, separator)
    assert [r[0] for r in results] == list(CHECK_SECONDS) == [1.0, 2.37]
    for _, err, rms in results:
        assert rms > 1e-3 and err <= 1e-4 * rms
    # the time axis (and the batch) are dynamic: 2 x 0.3 s, a length the trace never saw
    x = 0.1 * torch.randn(2, 2403)
    with torch.no_grad():
        ref = model(x)
    got = separator.separate(x)
    assert got.shape == ref.shape == (2, 2, 2403) and torch.allclose(got, ref, atol=1e-4 * float(ref.abs().max()))
    graph = onnx.load(str(path)).graph
    assert not any(n.op_type in ("DFT", "STFT") for n in graph.node)
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "time"]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("window", "hop", "n_fft"), [(256, 64, None), (63, 7, 100)])
def test_export_friendly_stft_and_istft_equal_the_fft_path(causal, window, hop, n_fft):
    stft, istft = STFT(window, hop, n_fft, causal=causal), ISTFT(window, hop, n_fft, causal=causal)
    x = torch.randn(2, 1001, generator=torch.Generator().manual_seed(3))
    spec = stft(x)
    assert not is_export_friendly()
    with export_friendly():
        assert is_export_friendly()
        pair = stft(x)
        y = istft(pair, 1001)
    assert not is_export_friendly()  # the context manager restores the flag
    assert pair.shape == spec.shape
    scale = float(spec.abs().max())
    assert torch.allclose(pair.real, spec.real, atol=2e-6 * scale) and torch.allclose(pair.imag, spec.imag, atol=2e-6 * scale)
    assert torch.allclose(y, istft(spec, 1001), atol=1e-5)
    assert torch.allclose(y, x, atol=1e-4)  # and both invert the analysis


def test_export_friendly_conv_codec_equals_the_framing_path():
    enc, dec = ConvEncoder(12, 21, 10, bias=True), ConvDecoder(12, 21, 10, bias=True)
    x = torch.randn(2, 777)
    with torch.no_grad():
        feats = enc(x)
        ref = dec(feats.unsqueeze(1), 777)
        with export_friendly():
            got_feats = enc(x)
            got = dec(got_feats.unsqueeze(1), 777)
    assert torch.allclose(got_feats, feats, atol=1e-6) and torch.allclose(got, ref, atol=1e-5)


def test_cli_exports_a_non_causal_model_offline_by_default(tmp_path, capsys):
    from speechsep.cli import main

    checkpoint = save_checkpoint(tmp_path / "blstm.pt", _tiny_tf_mask(False), include_rng=False)
    out = tmp_path / "blstm.onnx"
    assert main(["export", str(checkpoint), "-o", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert "is not causal" in text and "offline" in text
    assert "parity on 1 s" in text and "parity on 2.37 s" in text
    assert OnnxSeparator(out).num_sources == 2
    with pytest.raises(ValueError, match="offline"):
        OnnxStreamer(out)  # a streaming runtime refuses an offline graph
    # a causal model exports offline only when asked
    assert main(["export", "tf-mask-tiny", "--offline", "-o", str(tmp_path / "lstm.onnx")]) == 0
    assert "not causal" not in capsys.readouterr().out
    assert OnnxSeparator(tmp_path / "lstm.onnx").meta["config"]["causal"] is True


#: models whose forward cuts frames into segments (DPRNN, SkiM, RE-SepFormer, TFACM's T-Local) or attends in
#: blocks: their segment counts and block loops now follow the length at run time (speechsep.blocks.segmentation,
#: WindowedCausalAttention.forward_blocked). Small configs: the trace is 0.77 s, the checks longer and shorter.
SEGMENTED = {
    "dprnn-causal-tiny": {},
    "skim-tiny": {},
    "resepformer-tiny": {},  # 125 segments a second: the memory attention runs over several 64-segment blocks
    "iter-freq-simo1-siso2-it2-detach-tiny": {},  # the bundled iterative-freq's preset: STFT, two iterations
    "iter-time-simo1-siso2-it1-tiny": {},  # learnable codec
    "tfacm-tiny": {"hop_ms": 4.0},  # 250 frames a second: T-Local segments of 10 frames, attention over 50
    "tfgridnet-causal-tiny": {"stft": {"window": 16, "hop": 8}},
}


@pytest.mark.parametrize("name", SEGMENTED)
def test_segmented_models_export_offline_with_a_dynamic_length(tmp_path, name):
    torch.manual_seed(0)
    model = build(name, **SEGMENTED[name]).eval()
    path = export_offline_onnx(model, tmp_path / "m.onnx", model_name=name, check=False)
    separator = OnnxSeparator(path, threads=1)
    results = offline_parity(model, separator)
    assert [r[0] for r in results] == [1.0, 2.37]  # neither is the traced length
    for _, err, rms in results:
        assert rms > 1e-3 and err <= 1e-4 * rms
    # a third length (0.3 s: fewer segments than the trace had) and a batch of two
    x = 0.1 * torch.randn(2, 2403, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(x)
    got = separator.separate(x)
    assert got.shape == ref.shape == (2, 2, 2403)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4 * float(ref.pow(2).mean().sqrt()))


def test_cli_exports_the_bundled_iterative_model(tmp_path, capsys):
    from speechsep.cli import main

    out = tmp_path / "iterative.onnx"
    assert main(["export", "iterative-freq", "-o", str(out), "--check"]) == 0
    text = capsys.readouterr().out
    assert "is not causal" in text and "parity on 1 s" in text and "parity on 2.37 s" in text
    assert OnnxSeparator(out).meta["model"] == "iterative-freq"


def test_unsupported_model_fails_with_one_line_and_writes_nothing(tmp_path, capsys):
    from speechsep.cli import main

    # TFACM's unaligned cache-memory ablation: the last, partial segment's state has no one-pass graph
    model = build("tfacm-tiny", cache_memory=False).eval()
    with pytest.raises(OfflineExportNotSupported, match=r"^tfacm-tiny: .*cache_memory=False.*no one-pass graph"):
        export_offline_onnx(model, tmp_path / "d.onnx", model_name="tfacm-tiny")
    assert not (tmp_path / "d.onnx").exists()
    assert main(["export", "tfacm-large-no-cm", "--offline", "-o", str(tmp_path / "d.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("speechsep export: error: tfacm-large-no-cm: its offline forward cannot be exported")
    assert "cache_memory=False" in err and "\n" not in err and not (tmp_path / "d.onnx").exists()


class _Norms(torch.nn.Module):
    """The utterance-level norms of the DPRNN models: the iterative SIMO's per-input GroupNorm and gLN."""

    def __init__(self):
        super().__init__()
        self.gn, self.gln = torch.nn.GroupNorm(2, 4, eps=1e-8), GlobalLayerNorm(4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return group_norm(self.gn, x), self.gln(x.transpose(1, 2)).transpose(1, 2)


def test_norm_statistics_keep_their_digits_in_onnxruntime(tmp_path):
    """Over 100,000 frames with a mean of 3: exported as they are, var_mean (E[x^2] - E[x]^2) and GroupNorm
    (onnxruntime's one-pass float32 InstanceNormalization) were off by 4e-5 and 6e-5; the traced path takes
    the statistics in float64."""
    import onnxruntime as ort

    norms = _Norms().eval()
    path = tmp_path / "norms.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(norms, (torch.randn(1, 4, 1000),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {2: "frames"}})
    x = 0.1 * torch.randn(1, 4, 100_000, generator=torch.Generator().manual_seed(0)) + 3.0
    with torch.no_grad():
        exact = [t.float() for t in _Norms().double()(x.double())]  # weight 1, bias 0 as in `norms`
    outs = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    for got, ref in zip(outs, exact, strict=True):
        assert float((torch.from_numpy(got) - ref).abs().max()) <= 2e-6


class _LengthFrozen(SeparationModel):
    """A forward that computes with the input length in python: the trace freezes it."""

    family = "length-frozen"  # tests only

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        length = int(mixture.shape[-1])
        return mixture.mean() * torch.ones(mixture.shape[0], 2, length)


def test_a_graph_frozen_to_the_trace_length_is_refused(tmp_path, testkit):
    model = _LengthFrozen(testkit.ModelConfig())
    with pytest.raises(OfflineExportNotSupported, match="length-independent"):
        export_offline_onnx(model, tmp_path / "f.onnx")
    assert not (tmp_path / "f.onnx").exists()


def test_rounding_above_the_tolerance_is_told_apart_from_a_wrong_graph(tmp_path):
    model = _tiny_tf_mask(False)
    with pytest.raises(OfflineExportNotSupported, match="float rounding rather than a wrong graph"):
        export_offline_onnx(model, tmp_path / "m.onnx", tolerance=1e-12)
    assert not (tmp_path / "m.onnx").exists()
