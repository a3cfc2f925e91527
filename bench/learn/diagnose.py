"""Why a separator plateaus: three measurements that tell slow learning from too few voices.

    SPEECHSEP_DEMO_ROOT=CORPUS .venv/bin/python bench/learn/diagnose.py CORPUS \\
        --checkpoint runs/NAME/last.pt --examples 150 --overfit-steps 300 --out diagnose.json

1. **Ceiling**: SI-SNRi of the oracle ideal ratio mask (|S_c| / sum_c |S_c| on the mixture's STFT,
   the mixture phase) on the clean validation mixtures at the checkpoint's own STFT framing. A
   mask-based model cannot beat it; far above the model's score, the task is not the limit.
2. **Voices**: the checkpoint's SI-SNRi on noise-free mixtures of the *training* speakers (dynamic
   mixing, the corpus's mix, no speed perturbation) against the fixed clean *validation* mixtures
   (unseen speakers), both cut to the same length. A large gap is a model that learnt its training
   voices rather than separation. Also on *same-cast* pairs of training speakers: two characters of
   one actor group (one game's cast) whose median pitches lie 4 semitones or more apart
   (``speechsep.data.pitch``). Drawn with the corpus's default pairing (two groups), every training
   mixture pairs two different recordings; a model far worse on same-cast pairs than on those
   separates recordings, not voices.
3. **Capacity**: a fresh model of the checkpoint's architecture trained on 8 fixed training
   mixtures only; if it cannot fit them, the pipeline (features, masks, loss) is broken, not the data.

Everything runs on one thread; prints one line per measurement and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from speechsep.data.spec import open_dataset
from speechsep.inference.pretrained import resolve
from speechsep.metrics import si_sdr_improvement
from speechsep.registry import build_from_config
from speechsep.train.engine import ModelWithLoss

SAMPLE_RATE = 8000


def _pairs(dataset, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [tuple(dataset[i][:2]) for i in range(min(count, len(dataset)))]


def _same_cast_pairs(root: str, count: int, seconds: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Noise-free training mixtures whose two speakers share an actor group (distinct by pitch)."""
    data = open_dataset(f"demo:{root}:train:clean", sample_rate=SAMPLE_RATE, segment_seconds=seconds, train=True,
                        seed=1, mixing={"speed_range": [1.0, 1.0], "distinct_pitch_semitones": 4.0,
                                        "speaker_weighting": "sqrt-seconds"})
    pairs = []
    for index in range(len(data)):
        plan, out = data.render(index)
        if data.groups[plan.speakers[0]] == data.groups[plan.speakers[1]]:
            pairs.append((torch.from_numpy(out.mixture), torch.from_numpy(out.reverb)))
            if len(pairs) == count:
                break
    return pairs


def _model_si_snri(model, pairs) -> float:
    scores = []
    with torch.no_grad():
        for mix, src in pairs:
            scores.append(float(si_sdr_improvement(model(mix[None]), src[None], mix[None]).mean()))
    return statistics.mean(scores)


def _oracle_irm_si_snri(model, pairs) -> float:
    """Ideal ratio mask at the model's hop (:attr:`SeparationModel.hop`) and its ``window_ms``
    (a tf-mask model's; 32 ms for a model without one)."""
    win = int(round(getattr(model.config, "window_ms", 32.0) * SAMPLE_RATE / 1000))
    hop = model.hop
    window = torch.hann_window(win).sqrt()
    scores = []
    for mix, src in pairs:
        spec_mix = torch.stft(mix, win, hop, window=window, return_complex=True)
        spec_src = torch.stft(src, win, hop, window=window, return_complex=True)
        mask = spec_src.abs() / (spec_src.abs().sum(0, keepdim=True) + 1e-8)
        est = torch.istft(mask * spec_mix, win, hop, window=window, length=mix.shape[-1])
        scores.append(float(si_sdr_improvement(est[None], src[None], mix[None]).mean()))
    return statistics.mean(scores)


def _overfit(family: str, config, pairs, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_from_config(family, config)
    objective = ModelWithLoss(model, "neg_si_sdr", pit=True)  # the trainer's loss: negative SI-SDR under PIT
    optim = torch.optim.Adam(model.parameters(), 1e-3)
    mix = torch.stack([m for m, _ in pairs])
    src = torch.stack([s for _, s in pairs])
    start, curve = time.perf_counter(), {}
    for step in range(1, steps + 1):
        loss = objective(mix, src)
        optim.zero_grad()
        loss.mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        if step in (50, 100, steps):
            with torch.no_grad():
                curve[str(step)] = round(float(si_sdr_improvement(model(mix), src, mix).mean()), 2)
    curve["seconds"] = round(time.perf_counter() - start, 1)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="demo corpus root")
    parser.add_argument("--checkpoint", required=True, help="a training checkpoint or bundled model name")
    parser.add_argument("--examples", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=4.0, help="length every mixture is cut to")
    parser.add_argument("--overfit-steps", type=int, default=300, help="0: skip the capacity probe")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model = resolve(args.checkpoint, device="cpu")
    valid = _pairs(open_dataset(f"demo:{args.root}:valid:clean", sample_rate=SAMPLE_RATE,
                                segment_seconds=args.seconds, train=True, seed=1), args.examples)
    train = _pairs(open_dataset(f"demo:{args.root}:train:clean", sample_rate=SAMPLE_RATE,
                                segment_seconds=args.seconds, train=True, seed=1,
                                mixing={"speed_range": [1.0, 1.0]}), args.examples)
    result = {"checkpoint": str(args.checkpoint), "examples": len(valid), "seconds": args.seconds}
    result["oracle_irm_valid_clean"] = round(_oracle_irm_si_snri(model, valid), 2)
    print(f"ceiling: oracle IRM on {len(valid)} clean validation mixtures {result['oracle_irm_valid_clean']} dB")
    result["model_train_speakers_clean"] = round(_model_si_snri(model, train), 2)
    result["model_valid_speakers_clean"] = round(_model_si_snri(model, valid), 2)
    result["model_train_speakers_same_cast_clean"] = round(
        _model_si_snri(model, _same_cast_pairs(args.root, args.examples, args.seconds)), 2)
    print(f"voices: model on training speakers {result['model_train_speakers_clean']} dB "
          f"(same-cast pairs {result['model_train_speakers_same_cast_clean']} dB), "
          f"on validation speakers {result['model_valid_speakers_clean']} dB")
    if args.overfit_steps:
        short = [(m[: 2 * SAMPLE_RATE], s[:, : 2 * SAMPLE_RATE]) for m, s in train[:8]]
        result["overfit_8_examples"] = _overfit(model.family, model.config, short, args.overfit_steps)
        print(f"capacity: a fresh model on 8 fixed 2 s training mixtures, SI-SNRi by step {result['overfit_8_examples']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
