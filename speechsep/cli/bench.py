"""``speechsep bench``: every model against its anchors in one run; writes results JSON, BENCHMARKS.md, a plot.

``speechsep bench learn``: which models and recipes learn the most separation per CPU hour, measured
by training each for the same budget (:mod:`bench.learn`).

The installed library keeps what it reports itself (:mod:`speechsep.bench`: timing, peak memory,
machine floor, the results schema, its markdown and plot), so ``--render-only`` works anywhere. The
suite and the learning benchmark compare against other toolkits and train candidates: they live in
the repository's workshop folder ``bench/``, which is not installed, and run from a checkout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

NAME = "bench"
HELP = ("measure params/MACs, offline and streaming speed, memory and training step of the registered models "
        "beside their anchors; write JSON, BENCHMARKS.md and a plot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="fewer models, lengths and repeats (under 10 minutes); the full run takes under an hour")
    parser.add_argument("--json", metavar="OUT.json", help="write the results here (e.g. bench/results.json)")
    parser.add_argument("--markdown", metavar="BENCHMARKS.md", help="render the results (and bench/fragments/*.md) here")
    parser.add_argument("--plot", metavar="PNG", help="RTF vs MACs plot (default: bench/rtf_vs_macs.png when "
                                                      "--json or --markdown is given)")
    parser.add_argument("--models", nargs="+", metavar="PRESET",
                        help="registry presets to measure (default: TFACM Table I, tfacm-lite, iterative Table 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--no-anchors", action="store_true", help="skip the asteroid/ESPnet anchors")
    parser.add_argument("--no-pit", action="store_true", help="skip the PIT comparison")
    parser.add_argument("--fragments", default="bench/fragments", metavar="DIR",
                        help="markdown sections appended to BENCHMARKS.md in name order (default %(default)s)")
    parser.add_argument("--omp-wait-policy", choices=("passive", "active", "inherit"), default="passive",
                        help="OpenMP threads sleep (passive, default) or spin (active) while waiting; on a shared, "
                             "oversubscribed machine spinning makes 2-thread runs several times slower. The "
                             "command re-executes itself with OMP_WAIT_POLICY set, so the anchors get it too")
    parser.add_argument("--render-only", metavar="RESULTS.json",
                        help="measure nothing: render --markdown/--plot from an existing results file")
    sub = parser.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    _add_learn_arguments(sub.add_parser("learn", help=LEARN_HELP, description=LEARN_HELP, epilog=LEARN_EPILOG))


def workshop(module: str) -> ModuleType:
    """Import ``module`` of the workshop package ``bench`` from the checkout this library runs from.

    An editable install (``pip install -e .``) or ``python -m speechsep`` in the repository has the
    checkout's root beside the ``speechsep`` package; a wheel has no workshop, and says what to do.
    """
    root = Path(__file__).resolve().parents[2]  # .../speechsep/cli/bench.py -> the checkout's root
    # first on the path, so a bench.py in the working directory cannot stand in for it
    if (root / "bench" / "__init__.py").is_file() and sys.path[:1] != [str(root)]:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name not in ("bench", module):
            raise
        raise FileNotFoundError(
            "this subcommand runs the workshop in the repository's bench/ folder, which is not installed: "
            "run it from a source checkout (git clone the repository, then pip install -e . inside it); "
            "--render-only RESULTS.json works without it") from None


LEARN_HELP = ("train each candidate (recipe + overrides) from scratch for the same budget of training minutes, "
              "score SI-SNRi on clean and noisy validation sets as it goes, and rank them: results.json, "
              "results.md, curves.png; rerun the same command to resume")
LEARN_EPILOG = (
    "Training minutes are the wall time of the optimiser steps on --threads torch threads (data loading included; "
    "set-up, the trainer's per-epoch validation and the scoring excluded): on a dedicated machine with that many "
    "cores, the CPU budget. Long runs: nohup speechsep bench learn ... > learn.log 2>&1 & ; SIGTERM saves the "
    "state (with --jobs, the parent forwards it to every running candidate), and the same command continues."
)


def _add_learn_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidates", metavar="FILE.yaml",
                        help="the candidates: name, recipe, overrides (example: bench/learn/candidates.yaml)")
    parser.add_argument("--out", metavar="DIR", help="one folder per candidate, and results.json/.md, curves.png")
    parser.add_argument("--budget-minutes", type=float, default=30.0,
                        help="training minutes per candidate (default %(default)s)")
    parser.add_argument("--eval-every-minutes", type=float, default=5.0,
                        help="score every this many training minutes (default %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every candidate (default %(default)s)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=[], help="run only these candidates")
    parser.add_argument("--valid", action="append", default=[], metavar="NAME=SPEC",
                        help="a validation set (repeatable), e.g. --valid clean=demo:ROOT:valid:reverb:clean; "
                             "default: each recipe's valid spec with :clean and :noisy")
    parser.add_argument("--valid-examples", type=int, default=100,
                        help="score the first N mixtures of each validation set (default %(default)s)")
    parser.add_argument("--train-examples", type=int, default=None,
                        help="training examples scored for the train-valid gap (default: --valid-examples)")
    parser.add_argument("--valid-seconds", type=float, default=None,
                        help="score a fixed crop of this many seconds of each example (default: whole utterances)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="train up to N candidates at once, each in its own process on --threads threads (e.g. "
                             "--jobs 2 --threads 1 on 2 cores); their output goes to OUT/NAME/bench.log and here. "
                             "Concurrent candidates share cores and memory bandwidth, so step times depend on N "
                             "(default %(default)s)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one of --jobs' processes
    parser.add_argument("--render", metavar="DIR", help="train nothing: rewrite DIR's results.md and curves.png "
                                                        "(and results.json) from the curves of every candidate in DIR")


def _run_learn(args: argparse.Namespace) -> int:
    import shlex

    learn = workshop("bench.learn.run")
    read_candidates = workshop("bench.learn.candidates").read_candidates
    render = workshop("bench.learn.report").render
    LearnOptions, exit_with_parent, run_learn = learn.LearnOptions, learn.exit_with_parent, learn.run_learn

    if args.render:
        results = render(args.render)
        print(f"wrote {args.render}/results.md and curves.png; winner: {results['winner'] or 'none yet'}")
        return 0
    if not args.candidates or not args.out:
        raise ValueError("learn needs --candidates FILE.yaml and --out DIR (or --render DIR)")
    valid = {}
    for text in args.valid:
        name, sep, spec = text.partition("=")
        if not sep or not name or not spec or name in valid:
            raise ValueError(f"--valid {text!r}: expected NAME=SPEC with a new NAME, e.g. clean=demo:ROOT:valid:clean")
        valid[name] = spec
    options = LearnOptions(
        budget_minutes=args.budget_minutes, eval_every_minutes=args.eval_every_minutes, threads=args.threads,
        seed=args.seed, valid=valid or None, valid_examples=args.valid_examples, train_examples=args.train_examples,
        valid_seconds=args.valid_seconds, device=args.device, jobs=args.jobs,
    )
    if args.child:
        exit_with_parent()
        results = run_learn(read_candidates(args.candidates), args.out, options, only=args.only, child=True,
                            log=lambda line: print(line, flush=True))
        return 1 if results["failed"] else 0
    argv = sys.argv[sys.argv.index("bench") + 1:] if "bench" in sys.argv else []
    command = "speechsep bench " + " ".join(shlex.quote(a) for a in argv) if "learn" in argv else ""
    results = run_learn(read_candidates(args.candidates), args.out, options, only=args.only, command=command,
                        log=lambda line: print(line, flush=True), candidates_file=args.candidates)
    print(f"wrote {args.out}/results.json, results.md, curves.png; winner: {results['winner'] or 'none yet'}")
    if results["failed"]:
        print(f"failed: {', '.join(results['failed'])} (see {args.out}/results.md)")
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import shlex

    from speechsep.bench.plot import plot_rtf_vs_macs
    from speechsep.bench.report import read_fragments, render_markdown
    from speechsep.bench.schema import validate_results
    from speechsep.utils import atomic_path

    learn = getattr(args, "bench_command", None) == "learn"
    policy = args.omp_wait_policy.upper()
    if not (args.render_only or (learn and args.render)) and policy != "INHERIT" and os.environ.get("OMP_WAIT_POLICY", "").upper() != policy:
        # libgomp reads the policy once, when torch loads: set it and start over
        os.environ["OMP_WAIT_POLICY"] = policy
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "speechsep", *sys.argv[1:]])
    if learn:
        return _run_learn(args)
    if args.render_only:
        results = validate_results(json.loads(Path(args.render_only).read_text()))
    else:
        make_plan = workshop("bench.plan").make_plan
        run_bench = workshop("bench.runner").run_bench

        plan = make_plan(quick=args.quick, models=args.models, threads=args.threads, anchors=not args.no_anchors,
                         pit=not args.no_pit)
        print(f"benchmark plan: {len(plan.models)} models, {plan.runs()} measurements before budget skips"
              f"{' (quick)' if plan.quick else ''}", flush=True)
        command = "speechsep bench " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else ""
        results = run_bench(plan, command=command, log=lambda line: print(line, flush=True))
        if args.json:
            with atomic_path(args.json) as tmp:
                tmp.write_text(json.dumps(results, indent=1) + "\n")
            print(f"wrote {args.json}")
    plot = args.plot or ("bench/rtf_vs_macs.png" if (args.json or args.markdown) else None)
    if plot:
        plot_rtf_vs_macs(results, plot)
        print(f"wrote {plot}")
    if args.markdown:
        text = render_markdown(results, read_fragments(args.fragments))
        if plot:
            rel = os.path.relpath(Path(plot).resolve(), Path(args.markdown).resolve().parent)
            text = text.replace("\n## Parameters and MACs", f"\n![RTF vs MACs]({Path(rel).as_posix()})\n\n"
                                "## Parameters and MACs", 1)
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(text)
        print(f"wrote {args.markdown}")
    return 0
