import json

import pytest

import speechsep.inference.loading as loading
from speechsep.cli import main


@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "PRETRAINED_DIR", tmp_path)
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
    assert lines[1].split() == ["sample_rate=8000", "params_m=0.12", "results.test.si_sdri=9.87",
                                "results.test.sdri=10.25"]
    assert lines[2] == "b-broken" and "card.json: unreadable" in lines[3]
    assert lines[4] == "c-no-card" and "no card.json" in lines[5]
    assert main(["models", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert cards["a-tfacm-small"]["results"]["test"]["sdri"] == 10.25 and "error" in cards["c-no-card"]
