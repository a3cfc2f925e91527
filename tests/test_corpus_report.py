"""scripts/corpus_report.py: the per-source and per-split tables of BENCHMARKS.md."""

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("corpus_report", Path(__file__).parents[1] / "scripts" / "corpus_report.py")
corpus_report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(corpus_report)


def _report(tmp_path, speech):
    (tmp_path / "build_report.json").write_text(json.dumps({"speech": speech}))
    return tmp_path


def test_tables_list_every_source_and_split(tmp_path, capsys):
    source = {"packages": {"drascula": "1.0+ds4-2"}, "files_seen": 783, "decoded": 755,
              "skipped": [{"file": "a", "reason": "sound effect"}] * 2
              + [{"file": "b", "reason": "byte-identical copy of /x/a.ogg"}],
              "speakers": 11, "actor_groups": 1, "minutes": 45.79, "sample_rates": {"11025": 755},
              "bandwidth_hz": 3844, "languages": ["en"]}
    split = {"voices": 11, "actor_groups": 1, "hours": 0.76, "utterances": 755, "languages": ["en"],
             "sources": ["drascula-en"]}
    root = _report(tmp_path, {"sources": {"drascula-en": source}, "failed_sources": {"fotaq": "apt-get failed"},
                              "splits": {"train": split}})
    assert corpus_report.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "| drascula-en | drascula (1.0+ds4-2) | 783 | 755 | 3 (2 sound effect; 1 byte-identical copy) | 11 | 1 | 45.8 | 11025: 755 | 3844 | en |" in out
    assert "| fotaq | left out: apt-get failed |" in out
    assert "| train | 11 | 1 | 0.76 | 755 | 1: en | drascula-en |" in out


def test_old_or_missing_reports_are_named(tmp_path):
    with pytest.raises(SystemExit, match="no build report"):
        corpus_report.main([str(tmp_path)])
    with pytest.raises(SystemExit, match="rebuild it"):
        corpus_report.main([str(_report(tmp_path, {"decoded": 5}))])
