"""``speechsep stream``: run a file through a causal model chunk by chunk, as a live input, and time it."""

from __future__ import annotations

import argparse

NAME = "stream"
HELP = "stream a file through a causal model's step() in fixed chunks; report per-chunk time, RTF, latency"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="audio file (resampled to the model's rate)")
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                        help="folder for IN_s1.wav, IN_s2.wav, ... (at IN's rate and length, lined up with it)")
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="checkpoint file, run folder, bundled model, or a registry preset (random weights: "
                             "timing only); default: the bundled causal model (tfacm-lite); not needed with --onnx")
    parser.add_argument("--chunk-ms", type=float, default=16.0, help="chunk length in ms (default %(default)s)")
    parser.add_argument("--channel", default="0",
                        help="channel of multichannel input, or 'mixdown' (default %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: a step is hundreds of small operators, and extra threads "
                             "cost more than they save, or far more on a busy machine). PyTorch backend: each step "
                             "runs on one thread and only its LSTMs and attention on THREADS (speechsep.threads); "
                             "THREADS > 1 helps tfacm-small and larger on a quiet machine")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N (torch backend)")
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default=None,
                        help="run model.step in PyTorch (default) or an exported ONNX step in onnxruntime "
                             "(default with --onnx)")
    parser.add_argument("--onnx", metavar="FILE.onnx", default=None,
                        help="a file from `speechsep export`; without it, --backend onnxruntime exports --model "
                             "to a temporary file with chunks of --chunk-ms")


def run(args: argparse.Namespace) -> int:
    import sys
    import tempfile
    from pathlib import Path

    import torch

    from speechsep.cli._progress import progress_bar
    from speechsep.inference.pretrained import resolve
    from speechsep.inference.separate import check_out_dir
    from speechsep.inference.streaming import stream_file
    from speechsep.threads import passive_wait_warning

    backend = args.backend or ("onnxruntime" if args.onnx else "torch")
    if args.onnx and backend != "onnxruntime":
        raise SystemExit("--onnx runs in onnxruntime: drop --backend torch")
    check_out_dir(args.out)
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads must be at least 1; got {args.threads}")
    if args.threads and backend == "onnxruntime":
        torch.set_num_threads(args.threads)
    channel = args.channel if args.channel == "mixdown" else int(args.channel)
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "onnxruntime":
            from speechsep.blocks.framing import ms_to_samples
            from speechsep.export.onnx import OnnxStreamer, export_onnx

            path = args.onnx
            if path is None:
                model = resolve(args.model, causal=True, device="cpu", presets=True)
                path = export_onnx(model, f"{tmp}/step.onnx", model_name=args.model,
                                   chunk_samples=ms_to_samples(args.chunk_ms, model.sample_rate))
            model = OnnxStreamer(path, threads=args.threads)
        else:
            model = resolve(args.model, causal=True, device=args.device, presets=True)
            if not model.is_causal:
                raise ValueError(f"{args.model or 'the model'} is not causal and cannot stream: "
                                 "use `speechsep separate` for it, or a causal model (tfacm-lite)")
            note = passive_wait_warning(args.threads or 0)
            if note:
                print(f"note: {note}", file=sys.stderr)
        result = stream_file(model, args.input, args.out, chunk_ms=args.chunk_ms, channel=channel,
                             threads=args.threads if backend == "torch" else None,
                             progress=progress_bar(Path(args.input).name, "chunk"))
    print(f"{result.input} -> {', '.join(str(p) for p in result.sources)} at {result.sample_rate} Hz ({backend})")
    for note in result.notes:
        print(f"note: {note}")
    print(result.stats.summary())
    return 0
