"""Export a model's offline (whole-utterance) forward to ONNX, and run it with onnxruntime.

The graph is ``forward`` on a whole mixture, for models that cannot stream (``is_causal`` False:
the BLSTM ``tf-mask-blstm``, the iterative separators) and, on request, for causal ones::

    input:  mixture (B, T) float32      output: sources (B, C, T) float32      (B and T dynamic)

TorchScript's ONNX exporter has neither ``torch.stft``/complex tensors nor ``unfold`` of a dynamic
length, so the model is traced under :func:`speechsep.blocks.encoders.export_friendly`, which turns
the STFT/iSTFT into real convolutions (the training and inference numerics are untouched). A trace
records one input length; anything in ``forward`` that computes with that length in python (a
segmentation into chunks, a loop over frames) would be frozen into the graph. The segmenting models
(DPRNN, iterative, SkiM, RE-SepFormer, TFACM's T-Local) count their segments in integer ops the trace
keeps symbolic and cut them with ``reshape``/``cat`` (:mod:`speechsep.blocks.segmentation`); windowed
attention runs block-parallel while traced (``WindowedCausalAttention.forward_blocked``), and TFACM and
TF-GridNet take one pass over all frames instead of their eager block loops. Memory then grows with
the input length. Either way the export is checked: the graph runs in onnxruntime on two more lengths
and must match PyTorch, else :class:`OfflineExportNotSupported` says what could not be exported and
nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from speechsep.blocks.encoders import export_friendly
from speechsep.config import to_dict
from speechsep.export.onnx import METADATA_KEY, open_session
from speechsep.models.base import SeparationModel
from speechsep.utils import atomic_path

__all__ = ["export_offline_onnx", "OnnxSeparator", "offline_parity", "OfflineExportNotSupported", "CHECK_SECONDS"]

DEFAULT_OPSET = 17
#: the lengths (seconds) on which an offline graph is checked against PyTorch; the trace uses neither
CHECK_SECONDS = (1.0, 2.37)
_TRACE_SECONDS = 0.77
#: largest |onnx - torch| accepted, relative to the PyTorch output's RMS
TOLERANCE = 1e-4
#: above this ratio the mismatch is a wrong graph (a length frozen by the trace), not rounding
_FROZEN = 1e-2


class OfflineExportNotSupported(ValueError):
    """The model's offline forward has no faithful ONNX graph (the message says what is unsupported)."""


class _OfflineGraph(nn.Module):
    """``mixture (B, T) -> sources (B, C, T)``: what is traced."""

    def __init__(self, model: SeparationModel):
        super().__init__()
        self.model = model

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        return self.model(mixture)


def _noise(batch: int, samples: int, seed: int) -> torch.Tensor:
    return 0.1 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


#: exporter messages -> what they mean for a separation model
_KNOWN = (
    ("operator Unfold", "unfold over a length known only at run time (framing or segmentation into chunks) "
                        "is not supported by TorchScript's ONNX exporter"),
    ("ReIm", "a complex-spectrum operation that the export-friendly STFT does not provide"),
    ("complex", "complex tensors are not supported by TorchScript's ONNX exporter"),
    ("fft", "FFTs are not supported by TorchScript's ONNX exporter"),
    ("as_strided", "as_strided views are not supported by TorchScript's ONNX exporter"),
)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = f"{type(error).__name__}: {lines[0] if lines else ''}".split(". Please")[0]
    for needle, meaning in _KNOWN:
        if needle.lower() in first.lower():
            return f"{meaning}; {first[:160]}"
    return first[:240]


@contextlib.contextmanager
def _quiet_exporter_failure() -> Iterator[None]:
    """Hold back what the exporter writes to file descriptors 1 and 2; replay it only if the export succeeds.

    On failure torch (2.x, ``setup_onnx_logging``) prints the whole TorchScript graph, thousands of
    lines before the one-line error that says what is unsupported.
    """
    with contextlib.ExitStack() as stack:
        held = []
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            stream.flush()
            saved, spool = os.dup(fd), stack.enter_context(tempfile.TemporaryFile())
            os.dup2(spool.fileno(), fd)
            held.append((fd, stream, saved, spool))
        ok = False
        try:
            yield
            ok = True
        finally:
            for fd, stream, saved, spool in held:
                stream.flush()
                os.dup2(saved, fd)
                os.close(saved)
                if ok:
                    spool.seek(0)
                    text = spool.read()
                    if text:
                        stream.write(text.decode(errors="replace"))


def export_offline_onnx(
    model: SeparationModel,
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    model_name: str = "",
    check: bool = True,
    tolerance: float = TOLERANCE,
) -> Path:
    """Write ``model.forward`` on whole mixtures (dynamic batch and length) as an ONNX file, atomically.

    With ``check`` (default) the graph must match PyTorch on :data:`CHECK_SECONDS`-long noise within
    ``tolerance`` times the output RMS. Raises :class:`OfflineExportNotSupported` (nothing written)
    when tracing, the ONNX conversion or that check fails.
    """
    import onnx

    name = model_name or type(model).__name__
    model = model.eval()
    graph = _OfflineGraph(model)
    example = _noise(1, max(1, round(_TRACE_SECONDS * model.sample_rate)), seed=1)
    meta = {
        "format": 1,
        "mode": "offline",
        "model": model_name or model.family,
        "family": model.family,
        "config": to_dict(model.config),
        "sample_rate": model.sample_rate,
        "num_sources": model.num_sources,
        "latency": 0,
        "torch": torch.__version__,
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            with torch.no_grad(), export_friendly(), warnings.catch_warnings(), _quiet_exporter_failure():
                # the TorchScript exporter announces its own deprecation and warns about traced sizes;
                # the check below is what decides whether the graph generalises
                warnings.simplefilter("ignore")
                torch.onnx.export(graph, (example,), str(tmp), dynamo=False, opset_version=opset,
                                  input_names=["mixture"], output_names=["sources"],
                                  dynamic_axes={"mixture": {0: "batch", 1: "time"}, "sources": {0: "batch", 2: "time"}},
                                  do_constant_folding=True)
        except Exception as error:  # noqa: BLE001 - any tracer/exporter failure becomes one clear line
            raise OfflineExportNotSupported(
                f"{name}: its offline forward cannot be exported to ONNX ({_first_line(error)})"
            ) from error
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        if check:
            try:
                results = offline_parity(model, OnnxSeparator(tmp, threads=1))
            except Exception as error:  # noqa: BLE001 - a graph that fails on another length
                raise OfflineExportNotSupported(
                    f"{name}: its offline forward does not trace into a length-independent ONNX graph "
                    f"(onnxruntime fails on a {CHECK_SECONDS[0]:g} s input: {_first_line(error)})"
                ) from error
            for seconds, err, rms in results:
                if err <= tolerance * rms:
                    continue
                if not err <= _FROZEN * rms:  # an error of the order of the signal: a wrong graph
                    raise OfflineExportNotSupported(
                        f"{name}: its offline forward does not trace into a length-independent ONNX graph "
                        f"(on {seconds:g} s: max |onnx - torch| = {err:.3g}, output RMS {rms:.3g}); something "
                        "in it computes with the input length in python (e.g. segmentation into chunks)"
                    )
                raise OfflineExportNotSupported(
                    f"{name}: onnxruntime differs from PyTorch by {err:.3g} on {seconds:g} s (output RMS {rms:.3g}, "
                    f"ratio {err / rms:.2g} > tolerance {tolerance:g}), small against the signal: float rounding rather "
                    "than a wrong graph; raise the tolerance to accept it"
                )
    return path


class OnnxSeparator:
    """Runs an offline graph with onnxruntime: ``separate(mixture (B, T)) -> (B, C, T)`` torch tensor."""

    is_causal = False

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, providers: list[str] | None = None):
        self.path = Path(path)
        self.session, self.meta = open_session(self.path, threads=threads, providers=providers)
        if self.meta.get("mode") != "offline":
            raise ValueError(f"{self.path} holds a streaming step, not an offline forward: use OnnxStreamer")
        self.sample_rate = int(self.meta["sample_rate"])
        self.num_sources = int(self.meta["num_sources"])

    def separate(self, mixture: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = mixture.detach().cpu().numpy() if isinstance(mixture, torch.Tensor) else np.asarray(mixture)
        if x.ndim != 2 or x.shape[1] < 1:
            raise ValueError(f"mixture must be shaped (batch, time) with time >= 1; got {tuple(x.shape)}")
        (out,) = self.session.run(["sources"], {"mixture": np.ascontiguousarray(x, dtype=np.float32)})
        return torch.from_numpy(out)

    __call__ = separate


def offline_parity(
    model: SeparationModel, separator: OnnxSeparator, *, seconds: tuple[float, ...] = CHECK_SECONDS, seed: int = 0
) -> list[tuple[float, float, float]]:
    """``[(seconds, max |onnx - torch|, RMS of the torch output)]`` on noise of each length."""
    results = []
    for i, length in enumerate(seconds):
        x = _noise(1, max(1, round(length * separator.sample_rate)), seed=seed + i)
        with torch.no_grad():
            ref = model(x)
        got = separator.separate(x)
        if got.shape != ref.shape:
            raise ValueError(f"onnx output {tuple(got.shape)} != torch output {tuple(ref.shape)} on {length:g} s")
        results.append((length, float((ref - got).abs().max()), float(ref.pow(2).mean().sqrt())))
    return results
