import json

import pytest

import speechsep.inference.pretrained as lib
from speechsep.cli import main


@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path)
    return tmp_path


def _bundle(root, name, card):
    folder = root / name
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"weights")
    if card is not None:
        (folder / "card.json").write_text(card if isinstance(card, str) else json.dumps(card))


def test_models_with_none_bundled_says_so(pretrained, capsys):
    assert main(["models"]) == 0
    assert "no trained models are bundled" in capsys.readouterr().out


def test_models_lists_headline_numbers(pretrained, capsys):
    _bundle(pretrained, "a-tfacm-small", {
        "family": "tfacm", "params_m": 0.12, "sample_rate": 8000,
        "results": {"test": {"si_sdri": {"mean": 9.87, "median": 9.5}, "sdri": 10.25}},
        "notes": "ignored text",
    })
    _bundle(pretrained, "b-broken", "{not json")
    _bundle(pretrained, "c-no-card", None)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "a-tfacm-small  (default)"
    # labels a reader understands, not the card's keys
    assert lines[1] == "  8000 Hz, 0.12 M params, test SI-SNRi 9.87 dB, test SDRi 10.25 dB"
    assert lines[2] == "b-broken" and "card.json: unreadable" in lines[3]
    assert lines[4] == "c-no-card" and "no card.json" in lines[5]
    assert main(["models", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert cards["a-tfacm-small"]["results"]["test"]["sdri"] == 10.25 and "error" in cards["c-no-card"]


def test_models_marks_the_default_that_separate_uses(pretrained, capsys):
    _bundle(pretrained, "a", {"causal": True, "latency_ms": 15.875, "training": {"total_steps": 100}})
    _bundle(pretrained, "b", {"causal": False, "latency_ms": None})
    (pretrained / "DEFAULT").write_text("b\n")
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "a", "  causal, latency 15.88 ms, 100 training steps", "b  (default)", "  not causal"]


def test_models_markdown_table_takes_test_means_and_marks_missing_values(pretrained, capsys):
    _bundle(pretrained, "m", {
        "preset": "tfacm-lite", "causal": True, "latency_ms": 15.875, "params_m": 0.135,
        "training": {"total_steps": 1200, "total_train_step_hours": 0.75,
                     "train_step_hours_by_device": {"cpu": 0.5, "cuda": 0.25}},
        "test": {"utterances": 500, "summary": {"si_sdri": {"mean": 4.321, "median": 4.0}, "stoi": {"mean": 0.7}}},
        "example": {"si_snri": 5.5},
    })
    assert main(["models", "--markdown"]) == 0
    header, rule, row = capsys.readouterr().out.strip().splitlines()
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")], strict=True))
    assert rule.count("---") == len(cells)
    assert cells["model"] == "m" and cells["causal"] == "yes" and cells["steps"] == "1200"
    assert cells["CPU hours"] == "0.50" and cells["GPU hours"] == "0.25"
    assert cells["test SI-SNRi (dB)"] == "4.32" and cells["STOI"] == "0.70" and cells["example SI-SNRi (dB)"] == "5.50"
    assert cells["PESQ"] == "-" and cells["GMAC/s"] == "-"
