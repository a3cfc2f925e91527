"""Markdown tables of a built demo corpus: per source and per split, from its ``build_report.json``.

    python scripts/corpus_report.py /work/corpus/demo8k > table.md

Per source: package and version, files seen, utterances kept, files skipped (the three most common
reasons), speakers, actor groups, minutes, native sample rates, measured bandwidth at the corpus
rate. Per split: voices, actor groups, hours, languages, sources. Used for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from speechsep.data.voices import skip_reason_key


def skip_reasons(skipped: list[dict]) -> Counter:
    """Reasons counted with the file paths inside them removed (reports written before the build
    counted them this way hold per-file reasons)."""
    return Counter(skip_reason_key(s["reason"]) for s in skipped)


def source_table(speech: dict) -> list[str]:
    lines = ["| source | package (version) | files seen | kept | skipped (top reasons) | speakers | actor groups "
             "| minutes | sample rates (Hz: files) | bandwidth (Hz) | languages |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in speech["sources"].items():
        packages = ", ".join(f"{p} ({v})" for p, v in s["packages"].items())
        reasons = "; ".join(f"{n} {r}" for r, n in skip_reasons(s["skipped"]).most_common(3))
        rates = ", ".join(f"{r}: {n}" for r, n in s["sample_rates"].items())
        lines.append(f"| {name} | {packages} | {s['files_seen']} | {s['decoded']} | {len(s['skipped'])}"
                     f"{' (' + reasons + ')' if reasons else ''} | {s['speakers']} | {s['actor_groups']} "
                     f"| {s['minutes']:.1f} | {rates} | {s['bandwidth_hz']} | {', '.join(s['languages'])} |")
    for name, why in speech.get("failed_sources", {}).items():
        lines.append(f"| {name} | left out: {why} | | | | | | | | | |")
    return lines


def split_table(speech: dict) -> list[str]:
    lines = ["| split | voices (labelled speakers) | actor groups | hours | utterances | languages | sources |",
             "|---|---|---|---|---|---|---|"]
    for split, s in speech["splits"].items():
        lines.append(f"| {split} | {s['voices']} | {s['actor_groups']} | {s['hours']:.2f} | {s['utterances']} "
                     f"| {len(s['languages'])}: {', '.join(s['languages'])} | {', '.join(s['sources'])} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a corpus built by `speechsep data demo`")
    args = parser.parse_args(argv)
    report_path = args.root / "build_report.json"
    if not report_path.is_file():
        raise SystemExit(f"{report_path}: no build report (is {args.root} a built corpus?)")
    speech = json.loads(report_path.read_text())["speech"]
    if "sources" not in speech:
        raise SystemExit(f"{report_path}: built before multi-source corpora (no per-source report); rebuild it")
    print("\n".join(source_table(speech) + [""] + split_table(speech)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
