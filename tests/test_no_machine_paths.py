"""What ships (the package, README, Makefile, docs) names no folder of one machine and no internal
work item: a reader elsewhere can follow every path and reference it gives."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: text files that ship, by suffix (weights, audio and images are left out)
TEXT_SUFFIXES = {".py", ".md", ".json", ".yaml", ".yml", ".toml", ".txt", ".html", ".js", ".css", ".cfg", ".ini"}

#: (what it is, pattern): each is a path or a reference that means nothing outside the project's machines
FORBIDDEN = (
    ("a build machine's folder", re.compile(r"/work/|/root/")),
    ("a shared drive's folder", re.compile(r"shared/")),
    ("a numbered work item", re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)),
    ("notes kept outside the repository (cite docs/design.md)",
     re.compile(r"\b(?:NOTES|DATA)\.md\b|\bpapers/\w+\.txt\b")),
)


def _shipped_files() -> list[Path]:
    files = [p for p in (ROOT / "speechsep").rglob("*")
             if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]
    files += [ROOT / "README.md", ROOT / "Makefile", *(ROOT / "docs").rglob("*.md")]
    return sorted(p for p in files if p.is_file())


def _violations(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, what, the matched text)`` for every forbidden path or reference in ``path``."""
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for what, pattern in FORBIDDEN:
            if match := pattern.search(line):
                found.append((number, what, match.group(0)))
    return found


def test_the_scan_covers_what_ships_and_catches_each_kind(tmp_path):
    files = _shipped_files()
    assert ROOT / "speechsep" / "inference" / "bundling.py" in files and ROOT / "README.md" in files
    assert sum(p.name == "card.json" for p in files) >= 1  # the shipped model cards are scanned too
    planted = tmp_path / "x.py"
    planted.write_text('"""Decided in /work/shared/NOTES.md (issue 5)."""\nok = 1  # see docs/design.md\n')
    assert [(n, what.split(" (")[0], text) for n, what, text in _violations(planted)] == [
        (1, "a build machine's folder", "/work/"), (1, "a shared drive's folder", "shared/"),
        (1, "a numbered work item", "issue 5"), (1, "notes kept outside the repository", "NOTES.md")]


def test_no_shipped_file_names_a_machine_path_or_a_work_item():
    found = [f"{path.relative_to(ROOT)}:{number}: {what}: {text!r}"
             for path in _shipped_files() for number, what, text in _violations(path)]
    assert not found, "\n".join(found)


def _anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives the headings: lower case, punctuation dropped, spaces to ``-``."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_cited_design_note_exists():
    anchors = _anchors((ROOT / "docs" / "design.md").read_text())
    cited = {(path.relative_to(ROOT), anchor) for path in _shipped_files()
             for anchor in re.findall(r"docs/design\.md#([\w-]+)", path.read_text(errors="replace"))}
    assert len(cited) >= 5  # the models, blocks and data readers cite their notes there
    missing = sorted(f"{path}: #{anchor}" for path, anchor in cited if anchor not in anchors)
    assert not missing, "\n".join(missing)
