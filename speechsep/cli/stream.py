"""``speechsep stream``: run a file through a causal model chunk by chunk, as a live input, and time it."""

from __future__ import annotations

import argparse

NAME = "stream"
HELP = "stream a file through a causal model's step() in fixed chunks; report per-chunk time, RTF, latency"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="audio file (resampled to the model's rate)")
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                        help="folder for IN_s1.wav, IN_s2.wav, ... (at the model's rate, lined up with IN)")
    parser.add_argument("--model", required=True, metavar="NAME|PATH",
                        help="checkpoint file, run folder, bundled model, or a registry preset (random weights: "
                             "timing only)")
    parser.add_argument("--chunk-ms", type=float, default=16.0, help="chunk length in ms (default %(default)s)")
    parser.add_argument("--channel", default="0",
                        help="channel of multichannel input, or 'mixdown' (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")


def run(args: argparse.Namespace) -> int:
    import torch

    from speechsep.inference.streaming import load_streaming_model, stream_file

    if args.threads:
        torch.set_num_threads(args.threads)
    channel = args.channel if args.channel == "mixdown" else int(args.channel)
    model = load_streaming_model(args.model, args.device)
    result = stream_file(model, args.input, args.out, chunk_ms=args.chunk_ms, channel=channel)
    print(f"{result.input} -> {', '.join(str(p) for p in result.sources)}")
    print(result.stats.summary())
    return 0
