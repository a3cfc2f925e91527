"""Training step time of our models against asteroid's DPRNNTasNet at the same configuration, one process.

Not part of the package (asteroid is an anchor, never a dependency). Run it from a throwaway venv
that has torch and asteroid (installed with --no-deps) and the repository on PYTHONPATH:

    PYTHONPATH=. /tmp/anchors-venv/bin/python -m bench train-step-vs-asteroid --rounds 5 --threads 1

(``--batch 4 --seconds 4`` is the issue's configuration; on CPU it needs 8-14 GB of activations for
the larger models, more than a shared 24 GB machine had free, so ``--batch 1`` was used there.)

One step = forward, utterance-level PIT negative SNR (ours, identical for every model), backward,
gradient-norm clip at 5 and an Adam update, on a batch of 4 random 4 s mixtures at 8 kHz. The
models take turns step by step (round-robin), so a load change on a shared machine hits all of them
alike; the first step of each (allocator and kernel warm-up) is left out and medians are reported.

Pairs compared:
* ``iter-time-simo1-siso2-it1`` (iterative paper, time domain, paper size: 128 filters of 2 ms with
  1 ms hop, bottleneck 64, BLSTM 128, segments of 100, 3 DPRNN blocks of which 2 run per source)
  against ``DPRNNTasNet`` with the same encoder, bottleneck, LSTM, segments and 3 repeats;
  and with 5 repeats (as many block passes as ours, whose 2 SISO blocks run once per source);
* ``dprnn-causal`` (TFACM Table I baseline) against ``DPRNNTasNet`` with its encoder (64 x 4 / 2),
  bottleneck 64, LSTMs of 168, segments of 100, 4 repeats, one-way inter-segment LSTM (asteroid's
  intra-segment LSTM is always bidirectional, so it has 2.0 M weights to our 1.36 M);
* ``tfacm-small``, for which asteroid has no counterpart, timed alongside.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from speechsep.losses import PAIRWISE_LOSSES, PITLoss
from speechsep.registry import build


def _asteroid(**kwargs):
    from asteroid.models import DPRNNTasNet

    return DPRNNTasNet(n_src=2, sample_rate=8000, rnn_type="LSTM", norm_type="gLN", dropout=0.0, **kwargs)


def models() -> dict[str, torch.nn.Module]:
    return {
        "ours iter-time-simo1-siso2-it1": build("iter-time-simo1-siso2-it1", sample_rate=8000),
        "asteroid DPRNNTasNet (iter-time config)": _asteroid(
            n_filters=128, kernel_size=16, stride=8, bn_chan=64, hid_size=128, chunk_size=100, hop_size=50,
            n_repeats=3, bidirectional=True, mask_act="relu",
        ),
        # Our SISO blocks run once per source stream (the paper's design): 1 + 2 x 2 = 5 block passes
        # on a 2-speaker batch; this anchor does the same number of passes.
        "asteroid DPRNNTasNet (iter-time config, 5 repeats)": _asteroid(
            n_filters=128, kernel_size=16, stride=8, bn_chan=64, hid_size=128, chunk_size=100, hop_size=50,
            n_repeats=5, bidirectional=True, mask_act="relu",
        ),
        "ours dprnn-causal": build("dprnn-causal", sample_rate=8000),
        "asteroid DPRNNTasNet (dprnn-causal config)": _asteroid(
            n_filters=64, kernel_size=4, stride=2, bn_chan=64, hid_size=168, chunk_size=100, hop_size=50,
            n_repeats=4, bidirectional=False, mask_act="relu",
        ),
        "ours tfacm-small": build("tfacm-small", sample_rate=8000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--only", nargs="*", default=None, metavar="WORD",
                        help="time only the models whose label contains one of these words")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    length = round(args.seconds * 8000)
    sources = torch.randn(args.batch, 2, length)
    mixture = sources.sum(1)
    criterion = PITLoss(PAIRWISE_LOSSES["neg_snr"])
    nets = {name: net for name, net in models().items() if not args.only or any(w in name for w in args.only)}
    optimisers = {name: torch.optim.Adam(net.parameters(), lr=1e-3) for name, net in nets.items()}
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(args.rounds + 1):
        for name, net in nets.items():
            net.train()
            t0 = time.perf_counter()
            est = net(mixture)
            est = est[..., :length] if est.shape[-1] >= length else torch.nn.functional.pad(est, (0, length - est.shape[-1]))
            loss = criterion(est, sources)[0].mean()
            optimisers[name].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimisers[name].step()
            times[name].append(time.perf_counter() - t0)
    report = {
        name: {
            "parameters": sum(p.numel() for p in nets[name].parameters()),
            "step_seconds_median": statistics.median(t[1:]),
            "step_seconds_all": [round(x, 3) for x in t[1:]],
        }
        for name, t in times.items()
    }
    report["conditions"] = {"threads": args.threads, "batch": args.batch, "seconds": args.seconds, "rounds": args.rounds,
                            "torch": torch.__version__,
                            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
