"""``speechsep separate``: separate audio files of any rate, channel count and length."""

from __future__ import annotations

import argparse

NAME = "separate"
HELP = "separate audio files into one wav per speaker (and a spectrogram PNG)"


def channel_policy(value: str) -> int | str:
    """``--channel``: an integer index or ``mixdown``."""
    if value == "mixdown":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--channel takes an integer or 'mixdown', not {value!r}") from None


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    """Long-input and device options shared with ``speechsep eval``."""
    from speechsep.inference.segmenting import DEFAULT_OVERLAP_SECONDS, DEFAULT_SEGMENT_SECONDS

    parser.add_argument("--segment-seconds", type=float, default=DEFAULT_SEGMENT_SECONDS,
                        help="separate longer inputs in overlapping segments of this length; 0: never "
                             "(default %(default)s)")
    parser.add_argument("--overlap-seconds", type=float, default=DEFAULT_OVERLAP_SECONDS,
                        help="overlap between segments, used to keep each speaker in one output "
                             "(default %(default)s)")
    parser.add_argument("--batch-segments", type=int, default=1, help="segments per model call (default 1)")
    parser.add_argument("--device", default="auto", help="auto (the GPU when there is one, else the CPU), cpu, cuda, cuda:N (default %(default)s)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: autocast to bf16 (faster for the iterative models on CPUs with bf16 "
                             "instructions or on GPUs; BENCHMARKS.md); default %(default)s")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN", help="audio files (wav, flac, ogg, mp3)")
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                        help="folder for NAME_s1.wav, NAME_s2.wav, ... and NAME_spectrogram.png")
    parser.add_argument("--model", metavar="NAME|PATH",
                        help="bundled model name, checkpoint file or training run folder "
                             "(default: the default bundled model, see `speechsep models`)")
    parser.add_argument("--channel", type=channel_policy, default=0,
                        help="which channel of multichannel input to separate, or 'mixdown' to average "
                             "them (default 0)")
    parser.add_argument("--ref", nargs="+", default=[], metavar="S.wav",
                        help="clean sources, C per input in input order: prints SI-SNRi after PIT")
    parser.add_argument("--no-plot", action="store_true", help="do not write the spectrogram PNG")
    parser.add_argument("--skip-bad", action="store_true",
                        help="leave out inputs that cannot be read (each named with its problem), separate the "
                             "others, and exit with status 1 at the end; default: stop before writing anything")
    add_segment_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from speechsep.cli._progress import progress_bar
    from speechsep.inference.pretrained import resolve
    from speechsep.inference.separate import check_out_dir, separate_files

    check_out_dir(args.out)  # before loading the model, let alone separating
    model = resolve(args.model, device=args.device)
    skipped: list = []
    results = separate_files(
        args.inputs,
        args.out,
        model,
        channel=args.channel,
        refs=args.ref,
        segment_seconds=args.segment_seconds or None,
        overlap_seconds=args.overlap_seconds,
        batch_segments=args.batch_segments,
        plot=not args.no_plot,
        precision=args.precision,
        skipped=skipped if args.skip_bad else None,
        progress=lambda path: progress_bar(path.name, "segment"),
    )
    for r in results:
        print(f"{r.input}: {r.seconds:.2f} s at {r.sample_rate} Hz -> {', '.join(str(p) for p in r.sources)}")
        for note in r.notes:
            print(f"  note: {note}")
        if r.spectrogram:
            print(f"  spectrogram: {r.spectrogram}")
        if r.si_snri is not None:
            per_source = " ".join(f"s{c + 1}={v:.2f}" for c, v in enumerate(r.si_snri))
            print(f"  SI-SNRi (dB, after PIT): mean={sum(r.si_snri) / len(r.si_snri):.2f} {per_source}")
    if skipped:
        print(f"skipped {len(skipped)} of {len(args.inputs)} input(s):", file=sys.stderr)
        for s in skipped:
            print(f"  {s.problem}", file=sys.stderr)
        return 1
    return 0
