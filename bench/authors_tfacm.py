"""Time our TFACM side by side with the authors' released model, in one process (the yardstick for its speed).

The authors' code (``JusperLee/TFACM``) is in no package, so it is never part of speechsep: the user
points ``--authors-repo`` at a checkout of it, with its own imports (``torch_complex``, ``typeguard``
2.x, ``librosa``) importable, e.g. installed with ``pip install --no-deps --target DIR`` and passed as
``--path DIR``. Nothing of theirs is copied here; their model is imported from that folder and built
from their own config file.

One adaptation is needed on torch 2: their ``Stft.inverse`` hands ``torch.functional.istft`` a real
``(..., 2)`` tensor, which torch 2 refuses. :func:`_complex_istft` views such a tensor as complex for
the duration of their forward only (``torch.istft`` and everything else stay untouched); the
arithmetic is the same.

Rounds alternate ours and theirs, so a change in machine load hits both alike; the speed-up is the
ratio of the medians measured in the same run (BENCHMARKS.md: "compare against anchors as ratios").
"""

from __future__ import annotations

import contextlib
import importlib
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from speechsep.bench.timing import run_times

__all__ = ["AuthorsModel", "load_authors_model", "side_by_side"]

#: their model file, relative to the checkout (docs/design.md#tfacm)
MODEL_MODULE = "look2hear.models.TFACM_causal"
DEFAULT_CONFIG = "configs/tfacm_causal_wham.yml"


@contextlib.contextmanager
def _complex_istft():
    import torch.functional as tf

    original = tf.istft

    def istft(spec, *args, **kwargs):
        if not torch.is_complex(spec) and spec.shape[-1] == 2:
            spec = torch.view_as_complex(spec.contiguous())
        return original(spec, *args, **kwargs)

    tf.istft = istft
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="stft with return_complex=False")
            yield
    finally:
        tf.istft = original


class AuthorsModel(nn.Module):
    """The authors' model behind our calling convention: ``forward(mixture (B, T)) -> (B, C, T)`` and a
    ``sample_rate`` attribute, so :func:`speechsep.complexity.complexity` counts it as it counts ours."""

    def __init__(self, inner: nn.Module, sample_rate: int, name: str):
        super().__init__()
        self.inner, self.sample_rate, self.name = inner, sample_rate, name

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        with _complex_istft():
            return self.inner(mixture)


def load_authors_model(repo: str | Path, config: str = DEFAULT_CONFIG, sample_rate: int = 8000,
                       extra_paths: tuple[str, ...] = ()) -> AuthorsModel:
    """Import the authors' model from a checkout at ``repo`` and build it from ``config`` (their YAML)."""
    import yaml

    repo = Path(repo)
    source = repo / (MODEL_MODULE.replace(".", "/") + ".py")
    if not source.is_file():
        raise FileNotFoundError(f"authors' repository {repo}: no {source.relative_to(repo)} (is it a checkout "
                                "of JusperLee/TFACM?)")
    config_path = repo / config
    if not config_path.is_file():
        raise FileNotFoundError(f"authors' repository {repo}: no config {config}")
    net = (yaml.safe_load(config_path.read_text()) or {}).get("audionet") or {}
    if "audionet_name" not in net or "audionet_config" not in net:
        raise ValueError(f"{config_path}: no audionet.audionet_name / audionet.audionet_config section")
    for path in (*extra_paths, str(repo)):
        if path not in sys.path:
            sys.path.insert(0, path)
    module = importlib.import_module(MODEL_MODULE)
    cls = getattr(module, net["audionet_name"], None)
    if cls is None:
        raise AttributeError(f"{source}: no class {net['audionet_name']} (named by {config})")
    inner = cls(**net["audionet_config"], sample_rate=sample_rate)
    return AuthorsModel(inner, sample_rate, f"authors' {net['audionet_name']} ({config_path.name})").eval()


def side_by_side(ours: nn.Module, theirs: nn.Module, seconds: float, repeats: int, seed: int = 0) -> dict:
    """One warm-up each, then ``repeats`` rounds of (ours, theirs) on the same random input."""
    if ours.sample_rate != theirs.sample_rate:
        raise ValueError(f"sample rates differ: ours {ours.sample_rate}, theirs {theirs.sample_rate}")
    x = 0.1 * torch.randn(1, int(seconds * ours.sample_rate), generator=torch.Generator().manual_seed(seed))
    ours_t, theirs_t = [], []
    with torch.inference_mode():
        for model in (ours, theirs):
            out = model(x)
            if out.shape[-1] != x.shape[-1]:
                raise RuntimeError(f"{type(model).__name__} returned {out.shape[-1]} samples for {x.shape[-1]}")
        for _ in range(repeats):
            ours_t += run_times(lambda: ours(x), warmup=0, repeats=1)
            theirs_t += run_times(lambda: theirs(x), warmup=0, repeats=1)
    ours_m, theirs_m = statistics.median(ours_t), statistics.median(theirs_t)
    return {"seconds": seconds, "repeats": repeats, "ours_rtf": ours_m / seconds, "theirs_rtf": theirs_m / seconds,
            "speedup": theirs_m / ours_m, "ours_s": ours_t, "theirs_s": theirs_t}
