"""Child script run by the anchor venv's python: build one anchor model, measure it, print one JSON line.

It never imports speechsep (the anchor venv does not have it): :func:`child_source` pastes
:mod:`speechsep.bench.timing` in front of this file's source and the parent runs the result with
``python -c SOURCE JOB_JSON``. Only the anchors' model modules are imported: their package
``__init__`` files pull in training, hub and audio-file code (lightning, huggingface_hub, librosa,
soundfile) that building and running a model never calls, so the parent packages are registered as
empty namespaces and those few third-party names get empty stand-in modules.

Jobs (``JOB_JSON["anchor"]``):
    asteroid-dprnn    asteroid ``DPRNNTasNet(**kwargs)``
    espnet-skim       ESPnet ``ConvEncoder`` + ``SkiMSeparator`` + ``ConvDecoder`` (as ESPnet's enh model
                      composes them), kwargs ``encoder`` and ``separator``
    espnet-tfgridnet  ESPnet ``TFGridNet(None, **kwargs)`` (waveform in, waveform out)
Measures (``JOB_JSON["measures"]``, run in order): ``complexity`` (params, ptflops MACs per second), ``forward``
(median seconds per length), ``train_step`` (forward + loss + backward + Adam), ``memory`` (peak RSS
after one forward on ``seconds`` of audio: run one job per length so every number has its own process).
"""

from __future__ import annotations

import json
import sys
import sysconfig
import types
from pathlib import Path

if "run_times" not in globals():  # imported inside the package (tests); the child has timing.py pasted in
    from speechsep.bench.timing import median_seconds, run_times  # noqa: F401

_SITE = Path(sysconfig.get_paths()["purelib"])
#: imported by the anchors' package code but never called when building or running a model
_STAND_INS = ("soundfile", "librosa")


def _namespace(name: str, folder: Path) -> None:
    pkg = types.ModuleType(name)
    pkg.__path__ = [str(folder)]
    sys.modules.setdefault(name, pkg)


def _prepare_imports() -> None:
    for name in _STAND_INS:
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    # asteroid's pretrained-model download module (requests, huggingface_hub): a stand-in that refuses
    hub = types.ModuleType("asteroid.utils.hub_utils")
    hub.SR_HASHTABLE = {}

    def cached_download(*_args, **_kwargs):
        raise RuntimeError("the benchmark never downloads pretrained asteroid models")

    hub.cached_download = cached_download
    sys.modules["asteroid.utils.hub_utils"] = hub
    # asteroid's and asteroid.models' __init__ import every model (and the hub); masknn and utils are fine
    for name in ("asteroid", "asteroid.models", "espnet2", "espnet2.enh", "espnet2.enh.separator", "espnet2.enh.layers",
                 "espnet2.enh.encoder", "espnet2.enh.decoder", "espnet2.layers", "espnet2.torch_utils",
                 "espnet", "espnet.nets", "espnet.nets.pytorch_backend"):
        _namespace(name, _SITE.joinpath(*name.split(".")))


def build_anchor(anchor: str, kwargs: dict):
    """Return ``(model, sample_rate)``; ``model(wav (B, T)) -> (B, C, T)``."""
    import torch

    _prepare_imports()
    if anchor == "asteroid-dprnn":
        from asteroid.models.dprnn_tasnet import DPRNNTasNet

        class AsteroidDPRNN(torch.nn.Module):
            # named argument ``mixture`` so ptflops' input constructor reaches it as it reaches ours
            def __init__(self):
                super().__init__()
                self.net = DPRNNTasNet(**kwargs)

            def forward(self, mixture):
                return self.net(mixture)

        return AsteroidDPRNN(), kwargs["sample_rate"]
    if anchor == "espnet-skim":
        from espnet2.enh.decoder.conv_decoder import ConvDecoder
        from espnet2.enh.encoder.conv_encoder import ConvEncoder
        from espnet2.enh.separator.skim_separator import SkiMSeparator

        class ESPnetSkiM(torch.nn.Module):
            # ESPnetEnhancementModel.forward_enhance: encoder -> separator -> decoder per source
            def __init__(self):
                super().__init__()
                self.encoder = ConvEncoder(**kwargs["encoder"])
                self.separator = SkiMSeparator(kwargs["encoder"]["channel"], **kwargs["separator"])
                self.decoder = ConvDecoder(**kwargs["encoder"])

            def forward(self, mixture):
                lengths = torch.full((mixture.shape[0],), mixture.shape[-1], dtype=torch.long)
                feats, flens = self.encoder(mixture, lengths)
                masked, flens, _ = self.separator(feats, flens)
                outs = [self.decoder(m, lengths)[0] for m in masked]
                return torch.nn.functional.pad(torch.stack(outs, 1), (0, mixture.shape[-1] - outs[0].shape[-1]))

        return ESPnetSkiM(), kwargs["sample_rate"]
    if anchor == "espnet-tfgridnet":
        from espnet2.enh.separator.tfgridnet_separator import TFGridNet

        class ESPnetTFGridNet(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = TFGridNet(None, **{k: v for k, v in kwargs.items() if k != "sample_rate"})

            def forward(self, mixture):
                lengths = torch.full((mixture.shape[0],), mixture.shape[-1], dtype=torch.long)
                return torch.stack(self.net(mixture, lengths)[0], 1)

        return ESPnetTFGridNet(), kwargs["sample_rate"]
    raise ValueError(f"unknown anchor {anchor!r}")


def anchor_complexity(model, sample_rate: int) -> dict:
    import contextlib
    import io

    import torch
    from ptflops import get_model_complexity_info

    # the same counter and options as speechsep.complexity: 1 s of audio, functional ops counted
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        macs, _ = get_model_complexity_info(
            model, (sample_rate,), input_constructor=lambda _s: {"mixture": torch.randn(1, sample_rate)},
            as_strings=False, print_per_layer_stat=False, verbose=False, backend="pytorch",
            backend_specific_config={"count_functional": True})
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params": params, "macs_per_second": float(macs) if macs is not None else None}


def neg_snr_step(model, optimizer, mixture, sources) -> None:
    """One training step with a fixed-order negative SNR (the same arithmetic on both sides of a ratio)."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    est = model(mixture)
    err = (est - sources).pow(2).sum(-1)
    loss = -(10 * torch.log10(sources.pow(2).sum(-1) / (err + 1e-8) + 1e-8)).mean()
    loss.backward()
    optimizer.step()


def forward_seconds(model, sample_rate: int, lengths, warmup: int, repeats: int) -> dict[str, float]:
    """Median offline forward time on one random mixture per length (seconds of audio -> seconds)."""
    import torch

    model.eval()
    times = {}
    with torch.inference_mode():
        for seconds in lengths:
            wav = torch.randn(1, round(seconds * sample_rate))
            times[str(seconds)] = median_seconds(lambda w=wav: model(w), warmup, repeats)
    return times


def train_step_seconds(model, sample_rate: int, num_sources: int, batch: int, seconds: float,
                       warmup: int, repeats: int) -> float:
    """Median time of :func:`neg_snr_step` on one fixed random batch (no data loading)."""
    import torch

    model.train()
    gen = torch.Generator().manual_seed(0)
    sources = torch.randn(batch, num_sources, round(seconds * sample_rate), generator=gen)
    mixture = sources.sum(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return median_seconds(lambda: neg_snr_step(model, optimizer, mixture, sources), warmup, repeats)


def espnet_skim_stream(model, sample_rate: int, seconds: float) -> dict:
    """ESPnet's own SkiM streaming: one encoder frame (``stride`` samples) per call, as its
    ``forward_streaming`` methods and ``streaming_frame`` / ``streaming_merge`` simulation define it."""
    import statistics
    import time

    import torch

    model.eval()
    frames = model.encoder.streaming_frame(torch.randn(1, round(seconds * sample_rate)))
    states, times = None, []
    with torch.inference_mode():
        for frame in frames:
            start = time.perf_counter()
            feats = model.encoder.forward_streaming(frame)
            masked, states, _ = model.separator.forward_streaming(feats, states)
            [model.decoder.forward_streaming(m) for m in masked]
            times.append(time.perf_counter() - start)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return {"rtf": sum(times) / seconds, "p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * cuts[94],
            "max_ms": 1000 * max(times), "chunks": len(times),
            "chunk_ms": 1000 * model.encoder.stride / sample_rate, "seconds": seconds}


def run_job(job: dict) -> dict:
    """Run ``job["measures"]`` in order on one model; ``memory`` must be the only measure of its process."""
    import torch

    measures = list(job["measures"])
    if "memory" in measures and len(measures) > 1:
        raise ValueError("memory is measured alone: the peak RSS of a process covers everything it ran")
    torch.set_num_threads(job.get("threads", 2))
    torch.manual_seed(0)
    model, sr = build_anchor(job["anchor"], job["kwargs"])
    out: dict = {"anchor": job["anchor"], "torch": torch.__version__}
    for measure in measures:
        if measure == "complexity":
            model.eval()
            out.update(anchor_complexity(model, sr))
        elif measure == "forward":
            out["forward_seconds"] = forward_seconds(model, sr, job["lengths"], job["warmup"], job["repeats"])
        elif measure == "train_step":
            out["step_seconds"] = train_step_seconds(model, sr, job["num_sources"], job["batch"], job["seconds"],
                                                     job["train_warmup"], job["train_repeats"])
        elif measure == "streaming":
            if job["anchor"] != "espnet-skim":
                raise ValueError(f"{job['anchor']} has no streaming interface to measure")
            out["streaming"] = espnet_skim_stream(model, sr, job["stream_seconds"])
        elif measure == "memory":  # the parent appends the peak-RSS report (speechsep.bench.memory)
            model.eval()
            with torch.inference_mode():
                model(torch.randn(1, round(job["seconds"] * sr)))
        else:
            raise ValueError(f"unknown measure {measure!r}")
    return out


def child_source() -> str:
    """The script the anchor venv runs: timing helpers, then this file."""
    import inspect

    from speechsep.bench import timing

    own = inspect.getsource(sys.modules[__name__])
    head, sep, body = own.partition("from __future__ import annotations\n")
    return head + sep + "\n" + timing.embeddable_source() + body


if __name__ == "__main__":
    print(json.dumps(run_job(json.loads(sys.argv[1]))))
