"""``speechsep data``: build corpora and check datasets. Thin: the work is in speechsep.data."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "data"
HELP = "build the demo corpus or the iterative paper's recipe; check a dataset spec"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from speechsep.data.sources import SOURCES
    from speechsep.data.spec import GRAMMAR

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "dataset specs (for training, evaluation and `data check`):\n" + GRAMMAR.rstrip() + "\n"
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    demo = sub.add_parser("demo", help="build the default corpus from Debian packages of real speech (no manual step)")
    demo.add_argument("--root", required=True, help="output folder (a rerun resumes and skips what is complete)")
    demo.add_argument("--sample-rate", type=int, default=8000, choices=(8000, 16000))
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--train-hours", type=float, default=10.0,
                      help="hours of dynamically mixed training audio in one epoch (default 10)")
    demo.add_argument("--valid", type=int, default=200,
                      help="fixed validation mixtures per condition (clean, noisy, mixed; default 200)")
    demo.add_argument("--test", type=int, default=300, help="fixed test mixtures per condition (default 300)")
    demo.add_argument("--rooms", type=int, default=1000, help="rooms in the training room bank (default 1000)")
    demo.add_argument("--segment-seconds", type=float, default=4.0)
    demo.add_argument("--tiny", action="store_true", help="CI size: a few dozen mixtures, seconds to build")
    demo.add_argument("--sources", nargs="+", metavar="SOURCE",
                      help=f"speech sources to read (default: all: {', '.join(SOURCES)})")
    demo.add_argument("--package", action="append", metavar="PACKAGE=PATH",
                      help="use this .deb or unpacked folder for a Debian package instead of apt-get download "
                           "(repeatable; default: apt-get download, cached in ~/.cache/speechsep/debs)")
    demo.add_argument("--fotaq-deb", help="same as --package flight-of-the-amazon-queen=PATH")
    demo.add_argument("--min-train-speakers", type=int,
                      help="stop when fewer training voices remain (default 60; 2 with --tiny)")
    demo.add_argument("--noise-dir", help="folder of noise clips (default: lincity-ng-data via apt-get download)")
    demo.add_argument("--processes", type=int, default=2)

    it = sub.add_parser("iterative", help="the iterative paper's recipe from a LibriSpeech-style and a noise folder")
    it.add_argument("--speech", required=True, help="LibriSpeech-style folder (SPEAKER/CHAPTER/UTT.flac)")
    it.add_argument("--noise", required=True, help="folder of noise clips")
    it.add_argument("--root", required=True)
    it.add_argument("--counts", default="20000,5000,3000", help="train,valid,test mixtures")
    it.add_argument("--sample-rate", type=int, default=16000)
    it.add_argument("--seed", type=int, default=0)
    it.add_argument("--processes", type=int, default=2)

    check = sub.add_parser("check", help="open a dataset spec, report its size and every unreadable file")
    check.add_argument("spec")
    check.add_argument("--sample-rate", type=int, default=8000)
    check.add_argument("--throughput", type=int, metavar="N", default=0,
                       help="also time reading N items in one process: mixtures per second per loader worker "
                            "(for dynamic mixing, what one worker can feed a training step)")


def run(args: argparse.Namespace) -> int:
    start = time.time()
    if args.data_command == "demo":
        from speechsep.data.demo_corpus import DemoOptions, build_demo
        from speechsep.data.packages import PackageError, cache_dir
        from speechsep.data.voices import package_paths_from

        packages = package_paths_from(args.package)
        if args.fotaq_deb:
            packages["flight-of-the-amazon-queen"] = package_paths_from([f"x={args.fotaq_deb}"])["x"]
        opts = DemoOptions(sample_rate=args.sample_rate, seed=args.seed, train_hours=args.train_hours,
                           tiny=args.tiny, valid=args.valid, test=args.test, rooms=args.rooms,
                           segment_seconds=args.segment_seconds, sources=tuple(args.sources or ()) or None,
                           package_paths=packages, noise_dir=args.noise_dir,
                           min_train_speakers=args.min_train_speakers, processes=args.processes)
        try:
            build_demo(args.root, opts)
        except PackageError as err:
            print(f"speechsep data demo: {err}")
            return 2
        size = sum(f.stat().st_size for f in Path(args.root).rglob("*") if f.is_file())
        print(f"disk: {size / 1e6:.0f} MB in {args.root} (the package cache is in {cache_dir()})")
    elif args.data_command == "iterative":
        from speechsep.data.iterative_corpus import build_iterative

        try:
            counts = [int(c) for c in args.counts.split(",")]
        except ValueError:
            counts = []
        if len(counts) != 3:
            raise ValueError(f"--counts must be three integers train,valid,test; got {args.counts!r}")
        build_iterative(args.speech, args.noise, args.root, counts, sample_rate=args.sample_rate, seed=args.seed,
                        processes=args.processes)
    else:
        from speechsep.data.readers import scan_items
        from speechsep.data.spec import open_dataset, parse_spec, spec_items

        kind, root, split, _ = parse_spec(args.spec)
        dataset = open_dataset(args.spec, sample_rate=args.sample_rate)
        print(f"{args.spec}: {len(dataset)} mixtures")
        if not (kind in ("demo", "corpus") and split == "train" and not hasattr(dataset, "items")):
            problems = scan_items(spec_items(args.spec, sample_rate=args.sample_rate))
            for path, problem in problems:
                print(f"  {path}: {problem}")
            print(f"{len(problems)} problem(s)")
            if problems:
                return 1
        mix, sources = dataset[0]
        print(f"first item: mixture {tuple(mix.shape)}, sources {tuple(sources.shape)}")
        if args.throughput > 0:
            count = min(args.throughput, len(dataset))
            t0 = time.perf_counter()
            seconds = sum(dataset[i][0].shape[-1] for i in range(count)) / args.sample_rate
            took = time.perf_counter() - t0
            print(f"throughput: {count} mixtures ({seconds:.0f} s of audio) in {took:.2f} s = "
                  f"{count / took:.1f} mixtures/s per worker")
    print(f"({time.time() - start:.1f} s)")
    return 0
