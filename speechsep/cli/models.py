"""``speechsep models``: the trained models bundled with the package and their headline numbers.

Each bundled model lives in ``speechsep/pretrained/<name>/`` with ``model.pt`` and ``card.json``.
The card's layout belongs to whoever trains and bundles the model, so this listing does not assume
one: it looks for the usual headline keys at any depth of the card (``results.test.si_sdri``,
``params_m``, ...), takes ``mean`` when a value is a summary, and shows what it finds. The bundles,
their cards and the default come from :mod:`speechsep.inference.pretrained`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "models"
HELP = "list the bundled trained models with the headline numbers of their model cards"

#: shown in this order when a card has them (the last component of a dotted key must match)
HEADLINE_KEYS = ("dataset", "sample_rate", "causal", "latency_ms", "params_m", "macs_g", "total_steps",
                 "si_sdri", "si_snri", "sdri", "si_sdr", "pesq", "stoi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the full cards as JSON")
    parser.add_argument("--markdown", action="store_true",
                        help="print one Markdown table of the cards (the README's bundled-models table)")


def _flatten(card: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in card.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "mean" in value and not isinstance(value["mean"], dict):
            flat[name] = value["mean"]
        elif isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def headline(card: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(key, value)`` for every headline key the card has, at any depth, in HEADLINE_KEYS order."""
    flat = _flatten(card)
    found = []
    for wanted in HEADLINE_KEYS:
        found.extend((k, v) for k, v in flat.items() if k.rsplit(".", 1)[-1] == wanted)
    return found


#: how ``speechsep models`` shows each headline key (a value of None, e.g. no latency, is left out)
LABELS = {
    "dataset": "data {}", "sample_rate": "{} Hz", "latency_ms": "latency {:.2f} ms", "params_m": "{:.2f} M params",
    "macs_g": "{:.2f} GMAC/s", "total_steps": "{} training steps", "si_sdri": "SI-SNRi {:.2f} dB",
    "si_snri": "SI-SNRi {:.2f} dB", "sdri": "SDRi {:.2f} dB", "si_sdr": "SI-SDR {:.2f} dB", "pesq": "PESQ {:.2f}",
    "stoi": "STOI {:.2f}",
}
#: containers in a card key that say nothing to a reader (``test.summary.si_sdri`` reads "test SI-SNRi")
_SILENT_PARTS = {"summary", "results", "training"}


def label(key: str, value: Any) -> str | None:
    """A headline number as a reader wants it: ``test.summary.si_sdri=2.57`` -> ``test SI-SNRi 2.57 dB``."""
    *scope, name = key.split(".")
    if value is None:
        return None
    if name == "causal":
        text = "causal" if value else "not causal"
    else:
        try:
            text = LABELS.get(name, name + " {}").format(value)
        except (TypeError, ValueError):  # a card with a value of an unexpected type
            text = f"{name} {value}"
    where = " ".join("test" if part == "tests" else part for part in scope if part not in _SILENT_PARTS)
    return f"{where} {text}" if where else text


#: (column header, dotted card key) of ``--markdown``; test metrics are the means over the test split
MARKDOWN_COLUMNS = (
    ("model", "name"), ("preset", "preset"), ("causal", "causal"), ("latency (ms)", "latency_ms"),
    ("params (M)", "params_m"), ("GMAC/s", "macs_g"), ("steps", "training.total_steps"),
    ("CPU hours", "training.train_step_hours_by_device.cpu"), ("GPU hours", "training.train_step_hours_by_device.cuda"), ("test SI-SNRi (dB)", "test.summary.si_sdri.mean"),
    ("clean SI-SNRi (dB)", "tests.clean.summary.si_sdri.mean"), ("noisy SI-SNRi (dB)", "tests.noisy.summary.si_sdri.mean"),
    ("mixed SI-SNRi (dB)", "tests.mixed.summary.si_sdri.mean"),
    ("SDRi (dB)", "test.summary.sdri.mean"), ("PESQ", "test.summary.pesq.mean"), ("STOI", "test.summary.stoi.mean"),
    ("test mixtures", "test.utterances"), ("example SI-SNRi (dB)", "example.si_snri"),
)


def _dig(card: dict[str, Any], dotted: str) -> Any:
    value: Any = card
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def markdown_table(cards: dict[str, dict[str, Any]]) -> str:
    """The cards as one Markdown table (``-`` where a card lacks a value)."""
    lines = ["| " + " | ".join(h for h, _ in MARKDOWN_COLUMNS) + " |", "|" + "---|" * len(MARKDOWN_COLUMNS)]
    for name, card in cards.items():
        cells = []
        for _header, key in MARKDOWN_COLUMNS:
            value = name if key == "name" else _dig(card, key)
            cells.append("-" if value is None else ("yes" if value is True else "no" if value is False else _fmt(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    from speechsep.inference.pretrained import bundled_models, default_name, read_card

    cards = {name: read_card(path) for name, path in bundled_models().items()}
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    if args.markdown:
        print(markdown_table(cards))
        return 0
    if not cards:
        print("no trained models are bundled (speechsep/pretrained/ holds none): "
              "pass a checkpoint file or a training run folder to --model")
        return 0
    default = default_name()
    for name, card in cards.items():
        print(f"{name}  (default)" if name == default else name)
        if "error" in card:
            print(f"  {card['error']}")
            continue
        numbers = [text for k, v in headline(card) if (text := label(k, v))]
        print("  " + (", ".join(numbers) or "(the card has no headline numbers)"))
    return 0
