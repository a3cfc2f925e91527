"""``speechsep export``: a causal model's streaming step, or a model's whole-utterance forward, as ONNX."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = ("export to ONNX: a causal model's streaming step (state in and out), or with --offline (automatic for "
        "non-causal models) its whole-utterance forward with a dynamic length")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="checkpoint, run folder, bundled model or preset name")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    parser.add_argument("-o", "--out", required=True, metavar="FILE.onnx", help="output file")
    parser.add_argument("--offline", action="store_true",
                        help="export forward(mixture (1, T)) -> (1, C, T) for whole files, T dynamic (the default "
                             "for a non-causal model); checked against PyTorch at 1 s and 2.37 s before writing")
    parser.add_argument("--chunk-samples", type=int, default=None,
                        help="samples per step (default: 16 ms at the model's rate, a whole number of hops)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size of the graph (default 1)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="offline: largest accepted |onnx - torch| relative to the output RMS (default 1e-4)")
    parser.add_argument("--check", action="store_true",
                        help="run noise through onnxruntime and PyTorch and report the largest error "
                             "(streaming: 2 s; offline: 1 s and 2.37 s)")


def run(args: argparse.Namespace) -> int:
    from speechsep.inference.pretrained import resolve

    model = resolve(args.model, device="cpu", presets=True)
    if args.offline or not model.is_causal:
        if not args.offline:
            print(f"note: {args.model} is not causal (no streaming step): exporting its offline whole-utterance "
                  "forward, mixture (1, T) -> sources (1, C, T) with T dynamic")
        return _run_offline(model, args)
    return _run_streaming(model, args)


def _run_offline(model, args: argparse.Namespace) -> int:
    from speechsep.export.offline import OnnxSeparator, export_offline_onnx, offline_parity

    path = export_offline_onnx(model, args.out, opset=args.opset, model_name=args.model,
                               tolerance=args.tolerance)
    separator = OnnxSeparator(path)
    print(f"wrote {path}: offline forward, input 'mixture' (batch, time) -> output 'sources' "
          f"(batch, {separator.num_sources}, time) at {separator.sample_rate} Hz")
    if args.check:
        for seconds, err, rms in offline_parity(model, separator):
            print(f"parity on {seconds:g} s: max |onnx - torch| = {err:.3g} (output RMS {rms:.3g}, ratio {err / rms:.2g})")
    return 0


def _run_streaming(model, args: argparse.Namespace) -> int:
    from speechsep.export.onnx import OnnxStreamer, export_onnx, stream_parity

    path = export_onnx(model, args.out, chunk_samples=args.chunk_samples, batch_size=args.batch_size,
                       opset=args.opset, model_name=args.model)
    streamer = OnnxStreamer(path)
    print(f"wrote {path}: chunk {streamer.chunk_samples} samples ({1000 * streamer.chunk_samples / streamer.sample_rate:g} ms), "
          f"{len(streamer.meta['state'])} state tensors, latency {streamer.latency_ms:.2f} ms")
    if args.check:
        err, rms = stream_parity(model, streamer, seconds=2.0)
        print(f"parity over 2 s: max |onnx - torch| = {err:.3g} (output RMS {rms:.3g}, ratio {err / rms:.2g})")
        if err > 1e-4 * rms:
            print("parity check FAILED: error above 1e-4 of the output RMS")
            return 1
    return 0
