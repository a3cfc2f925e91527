"""Test-time post-processing of a trained separator, scored against its plain output on the same
mixtures: can the bundled models gain without more training?

    python -m bench post-process MODEL --data SPEC [--limit 100] [--ensemble OTHER [OTHER ...]]

Variants, each applied to the model's output ``s`` (C, T) for the mixture ``x``:

- ``consistency``: mixture consistency, ``s_i + (x - sum_j s_j) / C`` (Wisdom et al., ICASSP 2019,
  Sec. 2), so the estimates add up to the mixture;
- ``wiener1`` / ``wiener2``: re-mask the mixture's STFT with ``|S_i|^p / sum_j |S_j|^p`` (p = 1, 2),
  a single-channel Wiener filter built from the estimates;
- ``shift4``: the mean of the outputs for the mixture delayed by 0, 16, 32 and 48 samples (a quarter of
  the tf-mask models' 8 ms hop apart at 8 kHz, so their STFT frames fall elsewhere each time), each
  permuted to the plain output's order;
- ``shift4+wiener2``: both;
- ``reapply``: each estimate separated again, keeping the output most like it (iterative separation
  at test time, with a model not trained for it; Sec. 2 of the iterative paper trains for it);
- ``ensemble`` (with ``--ensemble``): the mean of the plain output and the outputs of other trained
  separators (checkpoints of other runs), each permuted to the plain output's order and scaled to its
  norm per source (SI-SDR training leaves every model's output gain free).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

import torch

from bench.learn.paired import paired

#: the STFT the Wiener variants re-mask with, in samples: 32 ms sqrt-Hann, 8 ms hop at 8 kHz (the tf-mask
#: framing); at other rates the same sample counts, shorter or longer in time
WINDOW, HOP = 256, 64
_SQRT_HANN = torch.hann_window(WINDOW).sqrt()
SHIFTS = (0, 16, 32, 48)


def mixture_consistency(est: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """(C, T) estimates shifted equally so they sum to the (T,) mixture."""
    return est + (mixture - est.sum(0)) / est.shape[0]


def _stft(x: torch.Tensor) -> torch.Tensor:
    return torch.stft(x, WINDOW, HOP, window=_SQRT_HANN, return_complex=True)


def wiener_remask(est: torch.Tensor, mixture: torch.Tensor, power: float) -> torch.Tensor:
    """The mixture's STFT masked by each estimate's share of ``|S|^power``; (C, T) like ``est``."""
    spec = _stft(est).abs().pow(power)
    masks = spec / spec.sum(0, keepdim=True).clamp_min(1e-8)
    return torch.istft(masks * _stft(mixture), WINDOW, HOP, window=_SQRT_HANN, length=mixture.shape[-1])


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-8))


def align_to(reference: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    """Two estimates (2, T) in the order that best matches ``reference`` (2, T), by correlation."""
    kept = _cosine(reference[0], est[0]) + _cosine(reference[1], est[1])
    swapped = _cosine(reference[0], est[1]) + _cosine(reference[1], est[0])
    return est if kept >= swapped else est.flip(0)


def _separate(model: Any, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x[None])[0]


def shift_average(model: Any, mixture: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
    """The mean output over delays :data:`SHIFTS` of the mixture, each aligned to ``plain``."""
    length = mixture.shape[-1]
    outputs = [plain]
    for shift in SHIFTS[1:]:
        delayed = torch.cat([mixture.new_zeros(shift), mixture])
        outputs.append(align_to(plain, _separate(model, delayed)[:, shift:shift + length]))
    return torch.stack(outputs).mean(0)


def reapply(model: Any, plain: torch.Tensor) -> torch.Tensor:
    """Each estimate separated again; of the two outputs, the one most like that estimate."""
    kept = []
    for estimate in plain:
        again = _separate(model, estimate)
        kept.append(max(again, key=lambda out, e=estimate: _cosine(out, e)))
    return torch.stack(kept)


def ensemble(others: Sequence[Any], mixture: torch.Tensor, plain: torch.Tensor) -> torch.Tensor:
    """The mean of ``plain`` and each other model's output for ``mixture``, aligned to ``plain`` and
    scaled to its norm source by source."""
    outputs = [plain]
    for other in others:
        est = align_to(plain, _separate(other, mixture))
        scale = plain.norm(dim=-1, keepdim=True) / est.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        outputs.append(est * scale)
    return torch.stack(outputs).mean(0)


def variants(model: Any, mixture: torch.Tensor, others: Sequence[Any] = ()) -> dict[str, torch.Tensor]:
    """Every variant's (C, T) output for one (T,) mixture, the plain output as ``plain``; ``ensemble``
    only when ``others`` (more separators of the same sources) are given."""
    plain = _separate(model, mixture)
    shifted = shift_average(model, mixture, plain)
    outputs = {
        "plain": plain,
        "consistency": mixture_consistency(plain, mixture),
        "wiener1": wiener_remask(plain, mixture, 1.0),
        "wiener2": wiener_remask(plain, mixture, 2.0),
        "shift4": shifted,
        "shift4+wiener2": wiener_remask(shifted, mixture, 2.0),
        "reapply": reapply(model, plain),
    }
    if others:
        outputs["ensemble"] = ensemble(others, mixture, plain)
    return outputs


def compare(model: Any, dataset: Sequence[tuple[Any, Any]], limit: int,
            others: Sequence[Any] = ()) -> list[dict[str, float | str]]:
    """Per variant: the mean SI-SNRi over the first ``limit`` mixtures and the paired difference from
    the plain output (bootstrap 95 % interval); ``others`` adds the ``ensemble`` variant."""
    from speechsep.metrics import si_sdr_improvement

    for separator in (model, *others):
        if separator.num_sources != 2:
            raise ValueError(f"post-process compares two-source separators; a model separates {separator.num_sources}")
        if separator.sample_rate != model.sample_rate:
            raise ValueError(f"an ensemble's models must share a sample rate; got {separator.sample_rate} Hz "
                             f"against {model.sample_rate} Hz")
        separator.eval()
    scores: dict[str, dict[str, float]] = {}
    for index in range(min(limit, len(dataset))):
        mixture, sources = (torch.as_tensor(a, dtype=torch.float32) for a in dataset[index])
        for name, est in variants(model, mixture, others).items():
            value = si_sdr_improvement(est[None], sources[None], mixture[None]).mean().item()
            scores.setdefault(name, {})[str(index)] = value
    if not scores:
        raise ValueError("nothing to score: the dataset is empty or --limit is 0")
    plain = scores["plain"]
    rows: list[dict[str, float | str]] = [{"variant": "plain", "mean": statistics.fmean(plain.values())}]
    for name, values in scores.items():
        if name != "plain":
            r = paired(values, plain)  # needs 2 or more mixtures, and says so
            rows.append({"variant": name, "mean": r["new"], "diff": r["diff"], "low": r["low"], "high": r["high"]})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="checkpoint, run folder or bundled name")
    p.add_argument("--data", required=True, help="dataset spec, e.g. demo:ROOT:valid:clean")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--ensemble", nargs="+", default=[], metavar="OTHER",
                   help="more separators (checkpoints, run folders, bundled names) to average with MODEL")
    a = p.parse_args()
    from speechsep.data import open_dataset
    from speechsep.inference.pretrained import resolve

    model = resolve(a.model, device="cpu")
    others = [resolve(other, device="cpu") for other in a.ensemble]
    try:
        rows = compare(model, open_dataset(a.data, sample_rate=model.sample_rate), a.limit, others)
    except ValueError as err:
        p.exit(2, f"python -m bench post-process: {err}\n")
    print("| variant | SI-SNRi (dB) | paired vs plain (dB, 95 % interval) |\n|---|---|---|")
    for r in rows:
        diff = "-" if "diff" not in r else f"{r['diff']:+.2f} ({r['low']:+.2f} .. {r['high']:+.2f})"
        print(f"| {r['variant']} | {r['mean']:.2f} | {diff} |")


if __name__ == "__main__":
    main()
