"""The one place that answers "which model, on which device".

Everything that turns a model named by a user (a bundled name, a checkpoint file, a training run
folder, nothing at all) into a loaded model on a device goes through :func:`resolve`, and every
``--device`` / ``device=`` value through :func:`resolve_device`. This module also owns the bundled
models in ``speechsep/pretrained/<name>/{model.pt,card.json,card.md}``: listing them
(:func:`bundled_models`), their defaults (:func:`default_name`, :func:`default_causal_name`) and their
model cards (:func:`read_card`, :func:`write_card`).

Nothing here writes into the installed package except :func:`set_default_name` and
:func:`write_card`, which only the release command ``speechsep bundle`` calls.

(It lives in :mod:`speechsep.inference` rather than at ``speechsep/pretrained.py`` because
``speechsep/pretrained/`` is the data folder of the bundled models: a module of the same name would
shadow it as an import name.)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from speechsep.checkpoint import CheckpointError, load_model
from speechsep.models.base import SeparationModel
from speechsep.utils import atomic_path

__all__ = [
    "PRETRAINED_DIR",
    "DEFAULT_CAUSAL_MODEL",
    "CARD_JSON",
    "CARD_MD",
    "bundled_models",
    "default_name",
    "default_causal_name",
    "set_default_name",
    "read_card",
    "write_card",
    "render_card",
    "resolve_device",
    "resolve",
]

log = logging.getLogger(__name__)

#: bundled trained models live in the package: speechsep/pretrained/<name>/{model.pt,card.md,card.json}
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"

#: the bundled model live separation uses when none is named (trained by recipes/bundled/tfacm-lite.yaml)
DEFAULT_CAUSAL_MODEL = "tfacm-lite"

#: a bundle's model card: the measured facts (JSON) and their Markdown rendering
CARD_JSON = "card.json"
CARD_MD = "card.md"

#: the file naming the default bundled model (written by ``speechsep bundle --default``)
_DEFAULT_MARKER = "DEFAULT"
#: the file naming the default bundled *causal* model (``speechsep bundle --default-causal``)
_DEFAULT_CAUSAL_MARKER = "DEFAULT_CAUSAL"


# -- the bundled models ------------------------------------------------------------------------------


def bundled_models() -> dict[str, Path]:
    """Name -> checkpoint path of every model shipped inside the package, sorted by name."""
    if not PRETRAINED_DIR.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(PRETRAINED_DIR.glob("*/model.pt"))}


def _known(bundled: dict[str, Path] | None = None) -> str:
    bundled = bundled_models() if bundled is None else bundled
    return ", ".join(bundled) or "none"


def default_name() -> str:
    """The default bundled model (``separate``, ``eval``, ``demo``, ``speechsep.separate`` without a
    model): the one named in ``pretrained/DEFAULT`` when it is bundled, else the first by name.
    Raises ValueError when nothing is bundled."""
    bundled = bundled_models()
    marker = PRETRAINED_DIR / _DEFAULT_MARKER
    if marker.is_file() and (marked := marker.read_text().strip()) in bundled:
        return marked
    if not bundled:
        raise ValueError(
            "no model given and none is bundled in speechsep/pretrained/: pass --model with a checkpoint "
            "file or a training run folder"
        )
    return next(iter(bundled))


def default_causal_name() -> str:
    """The bundled model live separation uses (``serve``, ``stream``, :func:`resolve` with ``causal=True``):
    the one named in ``pretrained/DEFAULT_CAUSAL`` when it is bundled and causal, else
    :data:`DEFAULT_CAUSAL_MODEL` when shipped (causal by construction), else the default bundled model
    (:func:`default_name`) if it can stream, else the first bundled model that can. Raises
    :class:`CheckpointError` naming the missing file."""
    bundled = bundled_models()
    marker = PRETRAINED_DIR / _DEFAULT_CAUSAL_MARKER
    if marker.is_file() and (marked := marker.read_text().strip()) in bundled and load_model(bundled[marked]).is_causal:
        return marked
    if DEFAULT_CAUSAL_MODEL in bundled:
        return DEFAULT_CAUSAL_MODEL
    first = default_name() if bundled else None
    for name in sorted(bundled, key=lambda n: n != first):  # the default first, then by name
        if load_model(bundled[name]).is_causal:
            return name
    expected = PRETRAINED_DIR / DEFAULT_CAUSAL_MODEL / "model.pt"
    shipped = f"bundled: {', '.join(bundled)}; none of them causal" if bundled else "nothing is bundled"
    raise CheckpointError(
        f"no bundled causal model: {expected} is missing ({shipped}). Pass --model with a causal checkpoint or "
        f"training run folder, or a preset name such as {DEFAULT_CAUSAL_MODEL} (random weights: timing only)"
    )


def set_default_name(name: str, *, causal: bool = False) -> None:
    """Make ``name`` the :func:`default_name`, or with ``causal`` the :func:`default_causal_name` (writes
    ``pretrained/DEFAULT`` or ``pretrained/DEFAULT_CAUSAL``: the release command ``speechsep bundle
    --default`` / ``--default-causal`` only)."""
    bundled = bundled_models()
    if name not in bundled:
        raise ValueError(f"{name}: not a bundled model (bundled: {_known()})")
    if causal and not load_model(bundled[name]).is_causal:
        raise ValueError(f"{name}: not causal, so it cannot be the default for live separation")
    (PRETRAINED_DIR / (_DEFAULT_CAUSAL_MARKER if causal else _DEFAULT_MARKER)).write_text(name + "\n")


# -- model cards -------------------------------------------------------------------------------------


def _card_folder(model: str | os.PathLike) -> Path:
    """The folder a card lives in: a bundled name's folder, a bundle folder, or the folder of a file in it."""
    if isinstance(model, str) and model in bundled_models():
        return PRETRAINED_DIR / model
    path = Path(model)
    return path if path.is_dir() else path.parent


def read_card(model: str | os.PathLike) -> dict[str, Any]:
    """The model card of a bundled model: ``model`` is its name, its folder, or its ``model.pt``.

    A missing or broken card is reported, not raised: the result is then ``{"error": TEXT}`` with TEXT
    naming the file (``speechsep models`` lists every bundle, card or not)."""
    card = _card_folder(model) / CARD_JSON
    if not card.is_file():
        return {"error": f"no {CARD_JSON} in {card.parent}"}
    try:
        value = json.loads(card.read_text())
    except (OSError, ValueError) as err:
        return {"error": f"{card}: unreadable ({type(err).__name__}: {err})"}
    return value if isinstance(value, dict) else {"error": f"{card}: not a JSON object"}


def write_card(folder: str | os.PathLike, card: dict[str, Any]) -> Path:
    """Write ``card`` as ``folder/card.json`` and its rendering ``folder/card.md``, each atomically
    (:func:`speechsep.inference.bundling.bundle_run` writes the card before ``model.pt``, so
    :func:`bundled_models` never lists half a bundle). Returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / CARD_JSON) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2, default=float) + "\n")
    with atomic_path(folder / CARD_MD) as tmp:
        Path(tmp).write_text(render_card(card))
    return folder


def _db(value: float | None) -> str:
    return "none (no validation ran)" if value is None else f"{value:.2f} dB"


def _runs_text(sessions: list[dict[str, Any]]) -> str:
    """``1 run, resumed 7 times from its own last.pt``: a card's ``sessions`` are runs (each warm-started
    from the bundle before it), and each may have been resumed many times, across machine sessions
    and within them; the card's notes and the README count the machine sessions."""
    resumes = [s.get("resumes") for s in sessions]
    runs = f"{len(sessions)} run" + ("s" if len(sessions) != 1 else "")
    if any(r is None for r in resumes):  # cards written before ``resumes`` existed
        return runs
    total = sum(resumes)
    own = "its own" if len(sessions) == 1 else "their own"
    return f"{runs}, resumed {total} time{'s' if total != 1 else ''} from {own} last.pt"


def _compute_text(training: dict[str, Any]) -> str:
    """``3.10 hours of training steps: 2.90 on cpu, 0.20 on cuda`` (cards before the split: one device)."""
    text = f"{training['total_train_step_hours']:.2f} hours of training steps"
    by_device = training.get("train_step_hours_by_device")
    if not by_device:
        return f"{text} on {training['device']}"
    return f"{text}: " + ", ".join(f"{hours:.2f} on {kind}" for kind, hours in by_device.items())


def render_card(card: dict[str, Any]) -> str:
    """The ``card.md`` of a card written by ``speechsep bundle``."""
    lines = [f"# {card['name']}", "", card["description"], "",
             "| | |", "|---|---|"]
    for key in ("preset", "family", "causal", "latency_ms", "sample_rate", "params_m", "macs_g"):
        lines.append(f"| {key} | {card[key]} |")
    training = card["training"]
    lines += ["", "## Training", "", f"- data: `{training['data']}`",
              f"- steps: {training['total_steps']} in {_runs_text(training['sessions'])}",
              f"- compute: {_compute_text(training)}",
              f"- best validation SI-SDR (the last run): {_db(training['best_valid_si_sdr'])}",
              f"- command: `{training['command']}`", "",
              "Validation SI-SDR (dB) by step, each run's steps counted from its own start:", "",
              "| run | steps | device | hours | resumed | curve (step: SI-SDR) |", "|---|---|---|---|---|---|"]
    for i, session in enumerate(training["sessions"], 1):
        curve = ", ".join(f"{step}: {value:.2f}" for step, value in session.get("valid_curve", []))
        resumed = session.get("resumes", "?")  # sessions from cards written before ``resumes`` existed
        lines.append(f"| {i} | {session['steps']} | {session.get('device', 'cpu')} | {session['train_step_hours']:.2f} "
                     f"| {resumed} | {curve} |")
    changes = [(i, c) for i, session in enumerate(training["sessions"], 1) for c in session.get("config_changes", [])]
    if changes:
        lines += ["", "Resumed with a different recipe (the command above is the run's first):", ""]
        lines += [f"- run {i}, from step {c['step']}: "
                  + ", ".join(f"`{k}: {v}`" for k, v in c.items() if k != "step") for i, c in changes]
    lines += ["", "## Test results (measured with `speechsep eval`)"]
    # Cards written before per-condition tests (``tests``) hold the one ``test``.
    for condition, test in (card.get("tests") or {"": card["test"]}).items():
        lines += ["", *([f"### {condition}", ""] if condition else []),
                  f"Data: `{test['data']}` ({test['utterances']} utterances). Command: `{test['command']}`", "",
                  "| metric | mean | median | 95 % CI |", "|---|---|---|---|"]
        for metric, s in test["summary"].items():
            lines.append(f"| {metric} | {s['mean']:.2f} | {s['median']:.2f} | {s['ci95_low']:.2f} .. "
                         f"{s['ci95_high']:.2f} |")
    lines += ["", f"Bundled example ({card['example']['source']}): SI-SNRi {card['example']['si_snri']:.2f} dB", ""]
    if card.get("notes"):
        lines += ["## Notes", "", card["notes"], ""]
    return "\n".join(lines)


# -- devices -----------------------------------------------------------------------------------------


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _no_such_device(device: str, count: int) -> ValueError:
    have = (f"this machine has {count} CUDA GPU{'s' if count != 1 else ''} (cuda:0"
            f"{f' .. cuda:{count - 1}' if count > 1 else ''})") if count else "no CUDA GPU is available"
    return ValueError(f"device {device!r} is not available: {have}; use --device cpu or auto")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device a ``--device`` / ``device=`` value names, checked to exist here.

    - ``"auto"``: the current CUDA GPU (``cuda:0`` unless ``torch.cuda.set_device`` chose another) when
      CUDA is available, else the CPU; never an error. Other accelerators (MPS) are used only when named.
    - ``"cpu"``: the CPU.
    - ``"cuda"``: the current CUDA GPU, as a device with its index.
    - ``"cuda:N"``: GPU ``N``.
    - anything else torch reads as a device (``"mps"``, ...): as torch reads it.

    A CUDA or MPS device that is not available here, or a string that is not a device, raises
    ValueError naming the device and what is available.
    """
    text = str(device)
    if text == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {text!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        count = _cuda_count()
        index = resolved.index if resolved.index is not None else (torch.cuda.current_device() if count else 0)
        if index >= count:
            raise _no_such_device(text, count)
        return torch.device("cuda", index)
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {text!r} is not available: this machine has no MPS device; use --device cpu or auto")
    return resolved


# -- models ------------------------------------------------------------------------------------------


def _unknown(spec: str, bundled: dict[str, Path], presets: bool) -> CheckpointError:
    if presets:
        return CheckpointError(
            f"{spec}: not a checkpoint file, a run folder with best.pt, a bundled model "
            f"(bundled: {_known(bundled)}) or a registry preset"
        )
    return CheckpointError(
        f"{spec}: neither a checkpoint file, a run folder with best.pt, nor a bundled model "
        f"(bundled: {_known(bundled)})"
    )


def resolve(
    spec: str | os.PathLike | None = None,
    *,
    causal: bool = False,
    device: str | torch.device = "auto",
    presets: bool = False,
) -> SeparationModel:
    """The model ``spec`` names, loaded in eval mode on ``device`` (:func:`resolve_device`).

    ``spec``, in order:

    - ``None``: the default bundled model, :func:`default_name`; with ``causal=True`` the bundled model
      live separation uses, :func:`default_causal_name` (``causal`` only picks the default: a causal
      spec is not checked here, callers decide what a non-causal one means for them);
    - an existing checkpoint file, or a training run folder (its ``best.pt``): trained weights;
    - a bundled model's name (:func:`bundled_models`): its weights;
    - with ``presets=True``, a registry preset name: that architecture with random weights, seeded by
      the caller's torch RNG (timing only: a warning says the audio will not be separated).

    Anything else raises :class:`CheckpointError` naming ``spec`` and the bundled models.
    """
    target = resolve_device(device)  # a bad device fails before a slow load
    if spec is None:
        spec = default_causal_name() if causal else default_name()
    name = str(spec)
    path = Path(spec)
    if path.is_dir() and (path / "best.pt").is_file():  # a training run folder
        path = path / "best.pt"
    bundled = bundled_models()
    if path.is_file():
        model = load_model(path)
    elif name in bundled:
        model = load_model(bundled[name])
    elif presets and _is_preset(name):
        from speechsep.registry import build

        log.warning("%s is an untrained registry preset: its weights are random (timing only, no separation)", name)
        model = build(name)
    else:
        raise _unknown(name, bundled, presets)
    if target.type != "cpu":  # checkpoints load onto the CPU; move only when asked elsewhere
        model = model.to(target)
    return model.eval()


def _is_preset(name: str) -> bool:
    from speechsep.registry import get_preset

    try:
        get_preset(name)
    except KeyError:
        return False
    return True
