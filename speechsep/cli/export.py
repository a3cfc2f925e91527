"""``speechsep export``: a causal model's streaming step as an ONNX graph with explicit state."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = "export a causal model's streaming step (state in and out) to ONNX (TFACM presets; others are refused)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="checkpoint, run folder, bundled model or preset name")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format (onnx)")
    parser.add_argument("-o", "--out", required=True, metavar="FILE.onnx", help="output file")
    parser.add_argument("--chunk-samples", type=int, default=None,
                        help="samples per step (default: 16 ms at the model's rate, a whole number of hops)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size of the graph (default 1)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--check", action="store_true",
                        help="stream 2 s of noise through onnxruntime and PyTorch and report the largest error")


def run(args: argparse.Namespace) -> int:
    from speechsep.export.onnx import OnnxStreamer, export_onnx, stream_parity
    from speechsep.inference.loading import resolve_model

    model = resolve_model(args.model)
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
