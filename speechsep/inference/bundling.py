"""Ship a trained run inside the package: weights-only checkpoint, measured model card, example score.

``speechsep bundle RUN --name NAME --data SPEC`` writes ``speechsep/pretrained/NAME/`` with

- ``model.pt``: the run's ``best.pt`` (``last.pt`` after a finished decay, or the ``--checkpoint``
  named) without optimiser, scheduler or RNG state (a third of the size);
- ``card.json`` / ``card.md``: what the model is (preset, parameters, MACs, causal, latency), how it
  was trained (the run's config, steps, epochs, compute hours summed from the run log, the exact
  command), and test metrics measured here with :func:`speechsep.inference.evaluate.evaluate` on
  ``SPEC`` (SI-SDR(i), SDR(i), PESQ and STOI when installed: mean, median and 95 % interval), plus
  the SI-SNRi on the bundled example that ``make demo`` separates.

The card is written before ``model.pt`` and every file atomically, so
:func:`speechsep.inference.pretrained.bundled_models` (which looks for ``model.pt``) never lists half a
bundle. The card is written and read by :mod:`speechsep.inference.pretrained` (``write_card``, ``read_card``).

A card ships to other machines, so it names no folder of the machine that wrote it (see
:func:`portable`): a dataset spec's root becomes the environment variable the shipped recipes read
for that kind (``demo:/data/demo8k:test`` -> ``demo:${SPEECHSEP_DEMO_ROOT}:test``), a bundled model
is named by its place in the package (``speechsep/pretrained/NAME/model.pt``), and any other absolute
path by its last components (a checkpoint as ``RUN/last.pt``, a run or data folder by its name), as
the card's commands name them relative to where they run. This applies to the data, commands and
``init_from`` fields, the embedded ``config_yaml`` and ``bundled_with``; the free-text notes are the
author's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from speechsep.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from speechsep.complexity import complexity
from speechsep.inference import pretrained
from speechsep.utils import expand_path

__all__ = ["EXAMPLES_DIR", "Example", "bundled_example", "score_example", "run_history", "bundle_run",
           "ROOT_VARIABLES", "portable"]

log = logging.getLogger(__name__)

#: the bundled real example (mixture.wav, s1.wav, s2.wav, example.json): scripts/make_example.py
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


@dataclasses.dataclass(frozen=True)
class Example:
    mixture: Path
    references: tuple[Path, ...]
    description: str


def bundled_example(root: Path = EXAMPLES_DIR) -> Example:
    """The bundled two-speaker example; a clear error naming the missing file otherwise."""
    mixture = root / "mixture.wav"
    refs = tuple(sorted(root.glob("s[0-9]*.wav")))
    missing = [p for p in (mixture, root / "example.json") if not p.is_file()]
    if missing or not refs:
        raise FileNotFoundError(f"bundled example incomplete: missing {', '.join(map(str, missing)) or 's1.wav ...'}")
    meta = json.loads((root / "example.json").read_text())
    return Example(mixture, refs, str(meta.get("source", root.name)))


def score_example(model, example: Example | None = None) -> float:
    """Mean SI-SNRi (dB, after PIT) of ``model`` on the bundled example, separated in memory."""
    from speechsep.audio import read_audio
    from speechsep.inference.separate import separate_waveform
    from speechsep.metrics import si_sdr_improvement

    example = example or bundled_example()
    mix, sr = read_audio(example.mixture)
    refs = torch.stack([torch.from_numpy(read_audio(r, sample_rate=sr)[0]) for r in example.references])
    est = torch.from_numpy(separate_waveform(model, mix, sr))
    return float(si_sdr_improvement(est[None], refs[None], torch.from_numpy(mix)[None]).mean())


def run_history(run_dir: Path) -> dict[str, Any]:
    """Steps, epochs, best validation SI-SDR and compute hours from a run's ``log.jsonl``.

    Compute time is the sum over logged windows of (steps in the window x mean step time): the time
    spent in training steps, validation excluded. ``resumes`` counts the times the run was continued
    from its own ``last.pt`` (one run folder may span several machine sessions).
    """
    log_file = run_dir / "log.jsonl"
    if not log_file.is_file():
        raise FileNotFoundError(f"{run_dir}: no log.jsonl (not a training run folder?)")
    lines = log_file.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    seconds, last = 0.0, 0
    for r in train:
        if r["step"] > last:  # a resumed run may log a step again
            seconds += (r["step"] - last) * float(r.get("step_seconds", 0.0))
            last = r["step"]
    # which run this is: the trainer's start event names it; a run logged before that is named by a
    # hash of its first two records (a log only appends, and its first loss values differ run to run)
    run_id = next((r["run_id"] for r in records if r.get("event") == "start" and r.get("run_id")), None)
    if run_id is None:
        head = "\n".join(lines[:2])
        run_id = "log-" + hashlib.sha1(head.encode()).hexdigest()[:12]
    # the device each start or resume logged ("cpu", "cuda:0"): a model may be trained partly on a GPU
    devices = list(dict.fromkeys(r["device"] for r in records if r.get("kind") == "event" and r.get("device")))
    return {
        "run_id": run_id,
        "steps": last,
        "device": ", ".join(devices) or "unknown",
        "epochs": max((r["epoch"] for r in valid), default=0),
        "best_valid_si_sdr": max((r["si_sdr"] for r in valid), default=None),
        "train_step_hours": seconds / 3600,
        "resumes": sum(1 for r in records if r.get("kind") == "event" and r.get("event") == "resume"),
        # resumes that continued with a different recipe: [{"step": N, "precision": "bf16"}, ...]
        "config_changes": [{"step": r["step"], **r["config_changes"]} for r in records
                           if r.get("kind") == "event" and r.get("config_changes")],
        "valid_curve": [(r["step"], round(r["si_sdr"], 3)) for r in valid],
    }


#: what the card keeps of each training session
SESSION_KEYS = ("run_id", "steps", "device", "train_step_hours", "resumes", "config_changes", "best_valid_si_sdr", "valid_curve")


def _sessions(history: dict[str, Any], init_from: str | None) -> list[dict[str, Any]]:
    """This run's training history after those of the bundle it was warm-started from (if any).

    A bundled model keeps training across sessions by warm starts (``init_from`` = its ``model.pt``);
    the card then accounts for every session, so its step and hour totals stay true. A run that is
    bundled again (it went on training after its first bundling) replaces its own earlier entry,
    found by its ``run_id``, instead of being counted twice.
    """
    earlier: list[dict[str, Any]] = []
    if init_from:
        source = expand_path(init_from).parent
        if (source / pretrained.CARD_JSON).is_file():
            card = pretrained.read_card(source)
            if "error" in card:
                raise CheckpointError(f"init_from {init_from}: {card['error']}")
            prior = card["training"]
            earlier = prior.get("sessions") or [{k: prior[k] for k in SESSION_KEYS if k in prior}]
        elif (source / "log.jsonl").is_file():
            # warm-started from another run's checkpoint (e.g. a run that stopped and was continued
            # with another schedule): that run's steps and hours are part of this model's training
            earlier = _sessions(run_history(source), _run_init_from(source))
        else:
            # weights copied out of their run (or from elsewhere): the card cannot count what made them
            log.warning("init_from %s: no model card or run log beside it, so the card counts only this run's "
                        "training, not the training behind those weights", init_from)
    this = {k: history[k] for k in SESSION_KEYS}
    earlier = [s for s in earlier if s.get("run_id") != this["run_id"]]
    return [*earlier, {**this, "init_from": portable(init_from)}]


def recipe_overrides(recipe: str | None, train_config: dict[str, Any]) -> list[str]:
    """The ``KEY=VALUE`` overrides that turn ``recipe`` into the run's ``train_config``.

    A card's training command is then the command that trained the run (an anneal's LR and schedule,
    a race's stop rule), not only the recipe's name. Values are compared after :func:`portable`, so a
    dataset root given on this machine matches the recipe's ``${VARIABLE}``. ``init_from`` is left to
    the caller (a warm start is written as the bundled weights). An unknown recipe, or one that no
    longer loads, gives no overrides: the card keeps the run's whole ``config_yaml`` either way.
    """
    from speechsep.config import ConfigError, dotted_keys, to_dict
    from speechsep.train.config import load_train_config
    from speechsep.train.recipes import resolve_recipe

    if not recipe or not train_config:
        return []
    try:
        base = to_dict(load_train_config(resolve_recipe(recipe)))
    except (OSError, ConfigError, ValueError) as err:
        log.info("recipe %s: %s; the card's command names the recipe alone", recipe, err)
        return []
    missing = object()
    ours, theirs = dotted_keys(portable(train_config)), dotted_keys(portable(base))
    return [f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in ours.items()
            if key != "init_from" and theirs.get(key, missing) != value]


def _hours_by_device(sessions: list[dict[str, Any]]) -> dict[str, float]:
    """Training-step hours per kind of device (``{"cpu": 3.1, "cuda": 0.2}``): a CPU hour and a GPU
    hour are different budgets. Sessions from cards written before runs logged their device ran on
    this project's CPU machines, the only ones used until then."""
    hours: dict[str, float] = {}
    for session in sessions:
        kinds = {d.strip().split(":")[0] for d in session.get("device", "cpu").split(",")}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        hours[kind] = hours.get(kind, 0.0) + session["train_step_hours"]
    return hours


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The config a run folder was started with (its ``config.yaml``); empty where there is none."""
    config = run_dir / "config.yaml"
    return (yaml.safe_load(config.read_text()) or {}) if config.is_file() else {}


def _run_init_from(run_dir: Path) -> str | None:
    """The ``init_from`` a run folder was started with, if any."""
    return _run_config(run_dir).get("init_from")


#: the environment variable written in place of each dataset kind's root: the ones the shipped
#: recipes read (``speechsep/train/recipes.py``), so a card's specs work wherever they are set
ROOT_VARIABLES = {"demo": "SPEECHSEP_DEMO_ROOT", "corpus": "SPEECHSEP_ITERSIM_ROOT", "wham": "WHAM_ROOT",
                  "whamr": "WHAMR_ROOT", "librimix": "LIBRIMIX_ROOT"}
_SPEC_KINDS = (*ROOT_VARIABLES, "folder")


def default_checkpoint(run_dir: Path, history: dict[str, Any] | None = None) -> str:
    """The checkpoint ``speechsep bundle`` ships when none is named: ``last.pt`` for a run that finished
    a per-step decay (``schedule.kind: warmup_cosine`` with ``total_steps`` reached), else ``best.pt``
    (``last.pt`` where there is none).

    Why: after a decay to a small LR the final weights are the ones the schedule was designed to
    deliver, while the trainer's ``best.pt`` is picked on a small validation set and lands on a
    mid-decay step by chance (BENCHMARKS, session 15: both bundles first shipped such a ``best.pt``,
    which the paired comparison on 200 mixtures had not scored). An epoch schedule (plateau halving)
    has no such end, and its best-on-validation stays the default.

    ``history``: the run's :func:`run_history` where the caller has it already (``bundle_run`` does),
    so its ``log.jsonl`` is read once."""
    schedule = _run_config(run_dir).get("schedule") or {}
    total = schedule.get("total_steps")
    if schedule.get("kind") == "warmup_cosine" and total and (run_dir / "last.pt").is_file():
        if history is None and (run_dir / "log.jsonl").is_file():
            history = run_history(run_dir)
        if history is not None and history["steps"] >= int(total):
            return "last.pt"
    return "best.pt" if (run_dir / "best.pt").is_file() else "last.pt"


def _is_spec(text: str) -> bool:
    """``KIND:ROOT...`` of a known kind (``demo: trained for ...`` in prose is not one)."""
    kind, _, rest = text.partition(":")
    return kind.lower() in _SPEC_KINDS and bool(rest) and not rest[0].isspace()


def _is_machine_path(text: str) -> bool:
    """Absolute (``/...``, ``~...``, ``C:\\...``) and not written with a variable."""
    return "$" not in text and (text.startswith(("/", "~", "\\")) or (len(text) > 2 and text[1:3] in (":/", ":\\")))


def _portable_spec(spec: str) -> str:
    kind, _, rest = spec.partition(":")
    root, sep, tail = rest.partition(":")
    if kind.lower() == "folder":  # folder:MIXDIR:S1DIR,S2DIR: each folder by its name
        dirs, sep2, options = tail.partition(":")
        dirs = ",".join(portable(d, keep=1) for d in dirs.split(","))
        return f"{kind}:{portable(root, keep=1)}{sep}{dirs}{sep2}{options}"
    if "$" in root:
        return spec
    return f"{kind}:${{{ROOT_VARIABLES[kind.lower()]}}}{sep}{tail}"


def portable(value: Any, *, keep: int = 2) -> Any:
    """``value`` with this machine's folders taken out (see the module doc), for a card.

    A dataset spec gets its kind's root variable; a path to a bundled ``model.pt`` becomes
    ``speechsep/pretrained/NAME/model.pt``; another absolute path keeps its last ``keep`` components;
    dicts and lists are rewritten item by item; anything else is returned as it is.
    """
    if isinstance(value, dict):
        return {k: portable(v, keep=keep) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, keep=keep) for v in value]
    if not isinstance(value, str):
        return value
    if _is_spec(value):
        return _portable_spec(value)
    if not _is_machine_path(value):
        return value
    path = Path(value.replace("\\", "/"))
    if path.name == "model.pt" and path.parent.parent.name == "pretrained":
        return f"speechsep/pretrained/{path.parent.name}/model.pt"
    return "/".join(part for part in path.parts[-keep:] if part not in ("/", "~")) or path.name


def _portable_yaml(text: str) -> str:
    """A run's ``config.yaml`` with :func:`portable` applied to its values (unchanged text if nothing moved)."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    clean = portable(config)
    return text if clean == config else yaml.safe_dump(clean, sort_keys=False)  # as the trainer writes it


def _portable_argv(argv: list[str], run_dir: Path) -> str:
    """The ``speechsep bundle`` command line as typed, with the run folder by its name and no machine path."""
    words = [Path(argv[0]).name]
    for word in argv[1:]:
        option, eq, value = word.partition("=") if word.startswith("--") else ("", "", word)
        if not option and _is_machine_path(word) and expand_path(word).resolve() == run_dir.resolve():
            value = run_dir.name
        words.append(f"{option}{eq}{portable(value, keep=1)}")
    return _shell_join(words)


def _shell_join(words: list[str]) -> str:
    """``shlex.join``, except that a word holding ``${VARIABLE}`` is double-quoted so the shell expands it."""
    return " ".join(f'"{w}"' if "${" in w and not any(c in w for c in '"`\\') else shlex.quote(w)
                    for w in words)


def bundle_run(
    run_dir: str | os.PathLike,
    name: str,
    data_spec: str,
    *,
    limit: int | None = None,
    notes: str = "",
    recipe: str | None = None,
    dest: Path | None = None,
    progress=None,
    checkpoint: str | None = None,
) -> Path:
    """Evaluate one checkpoint of ``run_dir`` on ``data_spec`` and write ``dest/name/`` (see module doc;
    ``dest`` defaults to the package's ``speechsep/pretrained/``: the release command ``speechsep bundle``).

    ``checkpoint``: a file name inside ``run_dir``; by default :func:`default_checkpoint` (``last.pt``
    after a finished per-step decay, else ``best.pt``). The trainer's best is picked on its own small
    validation set; a larger paired comparison can favour another checkpoint of the run, and the card
    then says which file it ships."""
    from speechsep.checkpoint import model_from_payload
    from speechsep.data import open_dataset
    from speechsep.data.spec import condition_specs
    from speechsep.inference.evaluate import evaluate

    run_dir = Path(run_dir)
    history = run_history(run_dir)
    if checkpoint is not None:
        if Path(checkpoint).name != checkpoint:
            raise CheckpointError(f"--checkpoint {checkpoint!r}: give a file name inside the run folder {run_dir}")
        source = run_dir / checkpoint
        if not source.is_file():
            raise CheckpointError(f"{source}: no such checkpoint in the run folder to bundle")
    else:
        source = run_dir / default_checkpoint(run_dir, history)
        if not source.is_file():
            raise CheckpointError(f"{run_dir}: no best.pt or last.pt to bundle")
    payload = read_checkpoint(source)
    model = model_from_payload(payload, source)  # in eval mode; the file is read once
    # The bundle stores float16 weights (half the package size): round them now, so every score on
    # the card is measured on exactly the weights that ship.
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    config_text = _portable_yaml((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").is_file() else ""
    train_config = payload.get("extra", {}).get("train_config") or {}
    # Every condition of a corpus that has them (clean, noisy, mixed): the card reports each; the
    # first is the headline (``test``), as the table of ``speechsep models`` reads it.
    tests = {}
    for condition, spec in condition_specs(data_spec):
        result = evaluate(model, open_dataset(spec, sample_rate=model.sample_rate), limit=limit, progress=progress)
        tests[condition or "all"] = {
            "data": portable(spec),
            "utterances": result.utterances,
            "command": _shell_join(["speechsep", "eval", name, "--data", portable(spec), "--out", "results.csv"]),
            "summary": result.summary,
            "throughput": result.throughput(),
        }
    cost = complexity(model, seconds=1.0)
    sessions = _sessions(history, train_config.get("init_from"))
    overrides = "".join(f" --set {_shell_join([text])}" for text in recipe_overrides(recipe, train_config))
    recipe = recipe or "<recipe>"
    warm = f" --set init_from=speechsep/pretrained/{name}/model.pt" if len(sessions) > 1 else ""
    # continuing goes on with the recipe as this run ended (e.g. a resume that switched to bf16)
    latest: dict[str, Any] = {}
    for change in history["config_changes"]:
        latest.update({k: v for k, v in change.items() if k != "step"})
    carry_on = "".join(f" --set {k}={v}" for k, v in latest.items() if isinstance(v, (str, int, float, bool)))
    preset = getattr(model.config, "preset", None) or train_config.get("model", {}).get("name") or model.family
    card = {
        "name": name,
        "description": f"{preset} trained on the demo corpus (real voice-acted speech, city noise, simulated rooms)",
        "preset": preset,
        "family": model.family,
        "causal": bool(model.is_causal),
        "latency_ms": round(model.latency_ms, 3) if model.is_causal else None,
        "sample_rate": model.sample_rate,
        "params_m": round(cost.params / 1e6, 4),
        "macs_g": round(cost.macs_per_second / 1e9, 3),
        "training": {
            "data": portable(train_config.get("data", {}).get("train", "see config")),
            "command": f"speechsep train {recipe} --out {run_dir.name}{warm}{overrides}",
            "continue_command": f"speechsep train {recipe} --out NEW_RUN --set init_from=speechsep/pretrained/{name}/model.pt"
                                f"{carry_on}",
            "config_yaml": config_text,
            "checkpoint_step": int(payload.get("step", 0)),
            "checkpoint_file": source.name,
            **history,
            "sessions": sessions,
            "total_steps": sum(x["steps"] for x in sessions),
            "total_train_step_hours": sum(x["train_step_hours"] for x in sessions),
            "train_step_hours_by_device": _hours_by_device(sessions),
        },
        "test": next(iter(tests.values())),
        "tests": tests,
        "example": {"source": bundled_example().description, "si_snri": score_example(model)},
        "bundled_with": _portable_argv(sys.argv, run_dir),
        "notes": notes,
    }
    out = pretrained.write_card((pretrained.PRETRAINED_DIR if dest is None else Path(dest)) / name, card)
    save_checkpoint(out / "model.pt", model, step=int(payload.get("step", 0)), epoch=int(payload.get("epoch", 0)),
                    include_rng=False, extra={"bundled": name, "preset": preset}, half_weights=True)
    return out
