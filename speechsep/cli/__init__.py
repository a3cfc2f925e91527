"""The ``speechsep`` program. Thin: it parses arguments and calls the layers below.

Each subcommand is one module in this folder exposing ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``; this file discovers them, so adding a command is adding a file.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

__all__ = ["main", "build_parser"]


def _commands():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechsep",
        description="Speech separation: iterative separation and TFACM real-time causal models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in _commands():
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


#: What the program sets when the environment does not (measured in BENCHMARKS.md): a sleeping
#: OpenMP wait policy, so that torch's threads do not spin against other processes on the cores (with
#: OpenMP's default, `separate` took 2.3x the time on a 2-core machine another job was using), and
#: transparent huge pages for big tensors. Both are read when torch loads, so they are set before
#: any torch import; `import speechsep` itself does not load torch.
ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "THP_MEM_ALLOC_ENABLE": "1"}


def thread_environment(argv: list[str], environ: dict[str, str]) -> dict[str, str]:
    """The variables :func:`main` adds to ``environ`` for the command line ``argv`` (none that are set).

    ``stream`` is left as it is: its default of one thread does not wait on others, and a
    ``--threads N`` split wants OpenMP's spinning threads (speechsep.threads).
    """
    command = next((a for a in argv if not a.startswith("-")), None)
    if command == "stream":
        return {}
    return {k: v for k, v in ENV_DEFAULTS.items() if k not in environ}


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors our layers raise with messages that name the thing and the problem."""
    types: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, FileExistsError)
    base = sys.modules.get("speechsep.models.base")  # loaded by then if it could have raised
    return types + ((base.StreamingNotSupported,) if base else ())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "torch" not in sys.modules:  # too late once torch has loaded (in-process callers, tests)
        os.environ.update(thread_environment(argv, dict(os.environ)))
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.verbose or not isinstance(err, _user_error_types()):
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"speechsep {args.command}: error: {msg}", file=sys.stderr)
        return 2
