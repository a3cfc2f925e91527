"""Export a causal model's streaming step to ONNX, and run it with onnxruntime.

(A whole-utterance forward, for models that cannot stream, is exported by :mod:`.offline`.)

The exported graph is one call of ``model.step`` on a fixed chunk of ``chunk_samples`` samples::

    inputs:  chunk (B, chunk_samples) float32, then every state tensor       (state_<path>)
    outputs: out (B, C, chunk_samples) float32, then every next state tensor (next_state_<path>)

What is traced is the model's one streaming step, ``model.step``, from
``model.init_state(batch_size, chunk_samples=chunk_samples)`` (the model may check the fixed chunk
there). A trace freezes python values at their first ones, so this works for a model whose state is
tensors of fixed size and whose step keeps no python-int counters (TFACM); any other state is
refused when flattened, naming the leaf.

The state container (NamedTuple, dataclass, tuple, dict, nested) is flattened with
``torch.utils._pytree``; the names come from each tensor's path in it (``state.lstm[0]`` becomes
``state_lstm_0``). The file's metadata (key ``speechsep``) records what a runtime needs besides the
graph: the model's rate, sources, latency, chunk size, batch size and the initial state (shapes, and
values when they are not all zero), so :class:`OnnxStreamer` needs nothing but the ``.onnx`` file.

The TorchScript-based exporter is used: the newer torch.export one needs the onnxscript package,
which is not a dependency of this project.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.utils._pytree as pytree
from torch import nn

from speechsep.config import to_dict
from speechsep.models.base import SeparationModel, StreamingNotSupported
from speechsep.utils import atomic_path

__all__ = ["export_onnx", "default_chunk_samples", "stream_parity", "open_session", "OnnxStreamer", "OnnxState",
           "METADATA_KEY"]

METADATA_KEY = "speechsep"
DEFAULT_OPSET = 17
#: the issue asks for 16 ms chunks by default (rounded up to a whole number of the model's hop)
DEFAULT_CHUNK_MS = 16.0


def default_chunk_samples(model: SeparationModel, chunk_ms: float = DEFAULT_CHUNK_MS) -> int:
    """``chunk_ms`` at the model's rate, rounded up to a whole number of hops (128 at 8 kHz, hop 8)."""
    hop = model.hop
    samples = chunk_ms * model.sample_rate / 1000.0
    return max(1, math.ceil(samples / hop - 1e-9)) * hop


def _register_dataclasses(obj: Any) -> None:
    """pytree flattens NamedTuples, tuples, lists and dicts natively; dataclasses must be registered."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if type(obj) not in pytree.SUPPORTED_NODES:
            pytree.register_dataclass(type(obj))
        children = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    elif isinstance(obj, (tuple, list)):
        children = list(obj)
    elif isinstance(obj, dict):
        children = list(obj.values())
    else:
        return
    for child in children:
        _register_dataclasses(child)


def _flatten_state(state: Any) -> tuple[list[torch.Tensor], list[str], pytree.TreeSpec]:
    """Leaves, their readable names and the tree spec; every leaf must be a tensor."""
    _register_dataclasses(state)
    with_paths, spec = pytree.tree_flatten_with_path(state)
    leaves, names = [], []
    for path, leaf in with_paths:
        label = "state" + pytree.keystr(path)
        if not isinstance(leaf, torch.Tensor):
            raise ValueError(
                f"streaming state leaf {label} is a {type(leaf).__name__}, not a tensor: ONNX inputs must be "
                "tensors (keep counters in the state as 0-d tensors and every size fixed, as TFACM's step does)"
            )
        leaves.append(leaf)
        names.append(re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", label)).strip("_"))
    return leaves, names, spec


class _StepGraph(nn.Module):
    """``(chunk, *flat_state) -> (out, *flat_next_state)``: what is traced into the ONNX graph."""

    def __init__(self, model: SeparationModel, spec: pytree.TreeSpec):
        super().__init__()
        self.model = model
        self.spec = spec

    def forward(self, chunk: torch.Tensor, *flat_state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, next_state = self.model.step(chunk, pytree.tree_unflatten(list(flat_state), self.spec))
        leaves, spec = pytree.tree_flatten(next_state)
        if spec != self.spec:
            raise ValueError(f"{type(self.model).__name__}.step returned a state of another structure: {spec} != {self.spec}")
        return (out, *leaves)


def _describe_initial(tensor: torch.Tensor, name: str) -> dict[str, Any]:
    array = tensor.detach().cpu().numpy()
    entry: dict[str, Any] = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
    if np.any(array):
        entry["data"] = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")
    return entry


def export_onnx(
    model: SeparationModel,
    path: str | os.PathLike,
    *,
    chunk_samples: int | None = None,
    batch_size: int = 1,
    opset: int = DEFAULT_OPSET,
    model_name: str = "",
) -> Path:
    """Write ``model.step`` on ``chunk_samples``-sample chunks as an ONNX file (atomically).

    Raises :class:`StreamingNotSupported` for a non-causal model and ``ValueError`` for a state that
    holds anything but tensors.
    """
    import onnx

    if not model.is_causal:
        raise StreamingNotSupported(
            f"{model_name or type(model).__name__} is not causal, so it has no streaming step to export; "
            "export its whole-utterance forward instead (speechsep.export.offline.export_offline_onnx, "
            "`speechsep export MODEL --offline`)"
        )
    chunk_samples = chunk_samples or default_chunk_samples(model)
    if chunk_samples < 1 or batch_size < 1:
        raise ValueError(f"chunk_samples and batch_size must be >= 1, got {chunk_samples} and {batch_size}")
    model = model.eval()
    state = model.init_state(batch_size, chunk_samples=chunk_samples)
    leaves, names, spec = _flatten_state(state)
    graph = _StepGraph(model, spec)
    chunk = torch.zeros(batch_size, chunk_samples)
    input_names = ["chunk", *names]
    output_names = ["out", *(f"next_{n}" for n in names)]
    meta = {
        "format": 1,
        "model": model_name or model.family,
        "family": model.family,
        "config": to_dict(model.config),
        "sample_rate": model.sample_rate,
        "num_sources": model.num_sources,
        "latency": model.latency,
        "chunk_samples": chunk_samples,
        "batch_size": batch_size,
        "state": [_describe_initial(t, n) for t, n in zip(leaves, names, strict=True)],
        "torch": torch.__version__,
    }
    path = Path(path)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter announces its own deprecation, and warns about LSTM batch sizes
        # that do not apply here (h0/c0 are graph inputs)
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (chunk, *leaves), str(tmp), dynamo=False, opset_version=opset,
                          input_names=input_names, output_names=output_names, do_constant_folding=True)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return path


class OnnxState(NamedTuple):
    """The streamer's state: the flattened model state, in the graph's input order."""

    #: one array per state input of the graph
    tensors: tuple[np.ndarray, ...]


def open_session(path: Path, *, threads: int | None = None, providers: list[str] | None = None):
    """``(onnxruntime session, speechsep metadata)`` of a file written by ``speechsep export``;
    ``threads``: intra-op threads (None: onnxruntime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path}: no '{METADATA_KEY}' metadata: not written by speechsep export")
    return session, json.loads(raw)


class OnnxStreamer:
    """Runs an exported step with onnxruntime behind the model's streaming interface
    (:class:`speechsep.models.base.Streamer`).

    ``state = s.init_state(B)``; ``out, state = s.step(chunk (B, n), state)`` with ``out (B, C, n)``
    as a torch tensor, exactly like ``SeparationModel.step``, except that ``n`` must be a multiple of
    ``chunk_samples`` (the graph's fixed chunk, also its ``step_samples``; a stream driver reads in
    chunks of that size) and ``B`` must be the exported batch size.
    """

    is_causal = True

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, providers: list[str] | None = None):
        self.path = Path(path)
        #: intra-op threads (None: onnxruntime's default, one per physical core)
        self.threads = threads
        self.session, self.meta = open_session(self.path, threads=threads, providers=providers)
        if self.meta.get("mode") == "offline":
            raise ValueError(f"{self.path} holds an offline (whole-utterance) forward, not a step: use OnnxSeparator")
        self.sample_rate = int(self.meta["sample_rate"])
        self.num_sources = int(self.meta["num_sources"])
        self.latency = int(self.meta["latency"])
        self.chunk_samples = int(self.meta["chunk_samples"])
        self.batch_size = int(self.meta["batch_size"])
        self._state_names = [s["name"] for s in self.meta["state"]]
        self._output_names = ["out", *(f"next_{n}" for n in self._state_names)]

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency / self.sample_rate

    @property
    def step_samples(self) -> int:
        return self.chunk_samples

    def init_state(self, batch_size: int = 1) -> OnnxState:
        if batch_size != self.batch_size:
            raise ValueError(f"{self.path} was exported for batch size {self.batch_size}, not {batch_size}")
        arrays = []
        for entry in self.meta["state"]:
            dtype = np.dtype(entry["dtype"])
            if "data" in entry:
                array = np.frombuffer(base64.b64decode(entry["data"]), dtype=dtype).reshape(entry["shape"]).copy()
            else:
                array = np.zeros(entry["shape"], dtype=dtype)
            arrays.append(array)
        return OnnxState(tuple(arrays))

    def step(self, chunk: torch.Tensor | np.ndarray, state: OnnxState) -> tuple[torch.Tensor, OnnxState]:
        x = chunk.detach().cpu().numpy() if isinstance(chunk, torch.Tensor) else np.asarray(chunk)
        x = x.astype(np.float32, copy=False)
        k = self.chunk_samples
        if x.ndim != 2 or x.shape[0] != self.batch_size or x.shape[1] % k:
            raise ValueError(
                f"chunk must be ({self.batch_size}, a multiple of {k}) for {self.path.name}; got {tuple(x.shape)}"
            )
        tensors = state.tensors
        outs = []
        for start in range(0, x.shape[1], k):
            feeds = {"chunk": np.ascontiguousarray(x[:, start : start + k])}
            feeds.update(zip(self._state_names, tensors, strict=True))
            out, *tensors = self.session.run(self._output_names, feeds)
            outs.append(out)
        if not outs:
            return torch.zeros(self.batch_size, self.num_sources, 0), state
        return torch.from_numpy(np.concatenate(outs, axis=-1)), OnnxState(tuple(tensors))


def stream_parity(model: SeparationModel, streamer: OnnxStreamer, *, seconds: float = 2.0, seed: int = 0) -> tuple[float, float]:
    """Stream the same noise through ``model.step`` and the ONNX graph chunk by chunk.

    Returns ``(max |onnx - torch|, RMS of the torch output)`` over the whole stream, so error that
    accumulates in the carried state is caught, not only one step's.
    """
    k, b = streamer.chunk_samples, streamer.batch_size
    chunks = max(1, math.ceil(seconds * streamer.sample_rate / k))
    x = 0.1 * torch.randn(b, chunks * k, generator=torch.Generator().manual_seed(seed))
    torch_state, onnx_state = model.init_state(b), streamer.init_state(b)
    ref, got = [], []
    with torch.no_grad():
        for i in range(chunks):
            piece = x[:, i * k : (i + 1) * k]
            out, torch_state = model.step(piece, torch_state)
            ref.append(out)
            out, onnx_state = streamer.step(piece, onnx_state)
            got.append(out)
    ref_t, got_t = torch.cat(ref, -1), torch.cat(got, -1)
    return float((ref_t - got_t).abs().max()), float(ref_t.pow(2).mean().sqrt())
