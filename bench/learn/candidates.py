"""The candidates file of ``speechsep bench learn``: which recipes, with which overrides, race.

::

    candidates:
      - name: tfacm-lite-sisdr           # its folder under --out: letters, digits, '.', '_', '-'
        recipe: bundled/tfacm-lite        # a shipped recipe name or a YAML path, as `speechsep train` takes it
        overrides: [loss.name=neg_si_sdr] # `speechsep train --set KEY=VALUE` syntax
        note: SI-SDR loss instead of SNR  # optional, shown in results.json

A relative recipe path that is not found from the working directory is looked up beside the
candidates file. Every candidate trains from scratch with the bench's seed, until the budget: ``init_from``,
``seed``, ``schedule.stop_patience`` and ``max_epochs`` (no early stop, no epoch cap) are set before
the candidate's own overrides, which may still change them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from speechsep.config import parse_override

__all__ = ["Candidate", "CandidateError", "read_candidates", "candidate_config", "default_valid_specs",
           "CONDITIONS"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KEYS = ("name", "recipe", "overrides", "note")
#: the condition options of a dataset spec; the default validation sets are the recipe's valid spec
#: under the first two
CONDITIONS = ("clean", "noisy", "mixed")
#: the stop patience and epoch cap of every candidate unless its overrides set them: the budget ends a run
NEVER_STOP = 1_000_000


class CandidateError(ValueError):
    """A candidate that cannot run; the message names the file and the candidate."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    recipe: str
    overrides: tuple[str, ...] = ()
    note: str = ""
    #: the folder of the candidates file, where relative recipe paths are also looked up
    base_dir: Path = Path(".")


def read_candidates(path: str | Path) -> list[Candidate]:
    """Parse and check the file's structure (not yet the configs: see :func:`candidate_config`)."""
    path = Path(path)
    if not path.is_file():
        raise CandidateError(f"{path}: no such candidates file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise CandidateError(f"{path}: not valid YAML ({err})") from err
    entries = data.get("candidates") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CandidateError(f"{path}: expected a mapping with a non-empty list under 'candidates'")
    out: list[Candidate] = []
    for i, entry in enumerate(entries):
        where = f"{path}: candidate #{i + 1}"
        if not isinstance(entry, dict):
            raise CandidateError(f"{where}: expected a mapping with {', '.join(_KEYS)}")
        name = entry.get("name")
        if isinstance(name, str) and name:
            where = f"{path}: candidate {name!r}"
        unknown = sorted(set(entry) - set(_KEYS))
        if unknown:
            raise CandidateError(f"{where}: unknown key(s) {unknown}; a candidate has {list(_KEYS)}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise CandidateError(f"{where}: 'name' must be letters, digits, '.', '_' or '-' (it names a folder); "
                                 f"got {name!r}")
        if any(c.name == name for c in out):
            raise CandidateError(f"{where}: the name is used twice")
        recipe = entry.get("recipe")
        if not isinstance(recipe, str) or not recipe:
            raise CandidateError(f"{where}: missing 'recipe' (a shipped recipe such as bundled/tfacm-lite, or a YAML path)")
        overrides = entry.get("overrides") or []
        if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
            raise CandidateError(f"{where}: 'overrides' must be a list of KEY=VALUE strings; got {overrides!r}")
        out.append(Candidate(name, recipe, tuple(overrides), str(entry.get("note") or ""), path.parent))
    return out


def _recipe_path(candidate: Candidate) -> Path:
    from speechsep.train.recipes import resolve_recipe

    try:
        return resolve_recipe(candidate.recipe)
    except FileNotFoundError as err:
        beside = candidate.base_dir / candidate.recipe
        if not Path(candidate.recipe).is_absolute() and beside.is_file():
            return beside
        raise CandidateError(f"candidate {candidate.name!r}: recipe {err}") from err


def candidate_config(candidate: Candidate, *, seed: int):
    """The candidate's :class:`~speechsep.train.config.TrainConfig`; any problem raises
    :class:`CandidateError` naming the candidate (unknown key, bad value, missing recipe or preset)."""
    from speechsep.registry import build
    from speechsep.train.config import load_train_config

    path = _recipe_path(candidate)
    # A race is run for a budget, not to a plateau: a recipe's early-stop rule (TFACM's, 15 epochs
    # without a better score) ended three candidates of the 2026-12-04 screen after 16-23 of their
    # 30 minutes while their training scores still rose, and a recipe's max_epochs caps fast models.
    overrides: dict[str, Any] = {"seed": seed, "init_from": None, "schedule.stop_patience": NEVER_STOP,
                                 "max_epochs": NEVER_STOP}
    try:
        overrides.update(parse_override(text) for text in candidate.overrides)
        config = load_train_config(path, overrides)
    except (ValueError, TypeError) as err:
        raise CandidateError(f"candidate {candidate.name!r} ({path}): {err}") from err
    try:  # an unknown preset or a typo in model.overrides fails here, not when its turn comes
        build(config.model.name, **config.model.overrides)
    except (KeyError, ValueError, TypeError) as err:
        raise CandidateError(f"candidate {candidate.name!r}: model {config.model.name}: "
                             f"{err.args[0] if isinstance(err, KeyError) and err.args else err}") from err
    return config


def default_valid_specs(spec: str) -> dict[str, str]:
    """``{"clean": ..., "noisy": ...}``: the recipe's valid spec with its condition option set to
    each (replaced when the spec has one, appended otherwise). A ``folder:`` spec has no options,
    so it is the one set ``valid``."""
    parts = spec.split(":")
    if len(parts) < 3 or parts[0].lower() == "folder":
        return {"valid": spec}
    head, options = parts[:3], parts[3:]
    at = next((i for i, token in enumerate(options) if token in CONDITIONS), None)

    def under(condition: str) -> str:
        opts = list(options)
        if at is None:
            opts.append(condition)
        else:
            opts[at] = condition
        return ":".join(head + opts)

    return {"clean": under("clean"), "noisy": under("noisy")}


#: learn-candidate's exit status for a name the file does not hold (a preset, for train_pair.sh); any other
#: failure (an unreadable or malformed file) exits 1, so the script can stop on it instead of falling through.
NOT_A_CANDIDATE = 3


def main() -> None:
    """``python -m bench learn-candidate NAME [--candidates FILE]``: the candidate's recipe on the first
    line, then one ``KEY=VALUE`` override a line, so a shell script (``bench/gpu/train_pair.sh``) can
    train the candidate that won a race by its name, with the overrides that made it."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench learn-candidate", description=main.__doc__)
    parser.add_argument("name", help="a candidate's name")
    parser.add_argument("--candidates", default=str(Path(__file__).with_name("candidates.yaml")),
                        help="the candidates file (default: bench/learn/candidates.yaml)")
    args = parser.parse_args()
    try:
        found = [c for c in read_candidates(args.candidates) if c.name == args.name]
    except CandidateError as err:
        sys.exit(f"python -m bench learn-candidate: {err}")
    if not found:
        print(f"python -m bench learn-candidate: {args.candidates}: no candidate named {args.name!r}", file=sys.stderr)
        sys.exit(NOT_A_CANDIDATE)
    print("\n".join((found[0].recipe, *found[0].overrides)))
