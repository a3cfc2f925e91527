import json

import numpy as np
import pytest
import yaml
from train_fixtures import ToneMixtures  # noqa: F401  (registers the test-tiny-mask model)

from speechsep.audio import write_audio
from speechsep.checkpoint import read_checkpoint
from speechsep.cli import main


def _folder_corpus(root, count):
    data = ToneMixtures(count, length=2400)
    for sub in ("mix", "s1", "s2"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        mix, src = data[i]
        write_audio(root / "mix" / f"{i}.wav", mix.numpy(), 8000, subtype="FLOAT")
        for c in range(2):
            write_audio(root / f"s{c + 1}" / f"{i}.wav", src[c].numpy(), 8000, subtype="FLOAT")
    return f"folder:{root / 'mix'}:{root / 's1'},{root / 's2'}"


@pytest.mark.slow
def test_cli_trains_from_a_yaml_with_dataset_specs_and_resumes(tmp_path, capsys):
    spec = _folder_corpus(tmp_path / "data", 8)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name": "test-tiny-mask", "overrides": {"channels": 8}},
        "data": {"train": spec, "valid": spec, "segment_seconds": 0.2, "batch_size": 4, "target": "dry"},
        "max_epochs": 1, "log_every": 1,
    }))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--device", "cpu", "--no-progress"]) == 0
    assert "max_epochs after 1 epochs, 2 steps" in capsys.readouterr().out
    assert read_checkpoint(run / "last.pt")["step"] == 2
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records].count("valid") == 1
    train_records = [r for r in records if r["kind"] == "train"]
    assert all(0.0 <= r["data_wait_fraction"] <= 1.0 and np.isfinite(r["loss"]) for r in train_records)
    assert (run / "config.yaml").exists() and (run / "curves.png").exists()
    # Same command with one more epoch: resumes from last.pt and runs only the new epoch.
    assert main(["train", str(recipe), "--out", str(run), "--device", "cpu", "--no-progress",
                 "--set", "max_epochs=2"]) == 0
    assert read_checkpoint(run / "last.pt")["step"] == 4


def test_cli_reports_a_bad_recipe(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("optim: {lr: 1e-3, momentum: 0.9}\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "r")]) == 2
    assert "momentum" in capsys.readouterr().err
