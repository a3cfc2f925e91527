"""``speechsep bench``: every model against its anchors in one run; writes results JSON, BENCHMARKS.md, a plot."""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import shlex
    import sys
    from pathlib import Path

    from speechsep.bench.plot import plot_rtf_vs_macs
    from speechsep.bench.report import read_fragments, render_markdown
    from speechsep.bench.schema import validate
    from speechsep.utils import atomic_path

    policy = args.omp_wait_policy.upper()
    if not args.render_only and policy != "INHERIT" and os.environ.get("OMP_WAIT_POLICY", "").upper() != policy:
        # libgomp reads the policy once, when torch loads: set it and start over
        os.environ["OMP_WAIT_POLICY"] = policy
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "speechsep", *sys.argv[1:]])
    if args.render_only:
        results = validate(json.loads(Path(args.render_only).read_text()))
    else:
        from speechsep.bench.plan import make_plan
        from speechsep.bench.runner import run_bench

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
