"""The models shipped in speechsep/pretrained/, the bundled example, and the bundling tool.

The shipped weights are checked against their own model cards: each must still separate the bundled
real example to within 0.5 dB of the SI-SNRi measured when it was bundled, so a broken weight file,
a changed layer or a preprocessing change fails here.
"""

import json
import re
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from speechsep.checkpoint import CheckpointError, save_checkpoint
from speechsep.cli import main
from speechsep.inference import pretrained as lib
from speechsep.inference.bundling import (
    bundle_run,
    bundled_example,
    default_checkpoint,
    recipe_overrides,
    run_history,
    score_example,
)

#: what the package promises to ship (issue: a causal TFACM-family model and an iterative one)
EXPECTED = {"tf-mask-blstm": "tf-mask", "tfacm-lite": "tfacm", "iterative-freq": "iterative"}


def test_the_bundled_example_is_real_two_speaker_audio():
    example = bundled_example()
    mix, sr = sf.read(example.mixture)
    refs = [sf.read(r)[0] for r in example.references]
    assert sr == 8000 and len(refs) == 2 and 3.0 <= len(mix) / sr <= 10.0
    assert all(r.shape == mix.shape for r in refs)
    # the mixture is the two references plus noise: it correlates with each, and is not either one
    for r in refs:
        assert 0.1 < np.corrcoef(r, mix)[0, 1] < 0.99
    assert "test" in example.description


def test_the_promised_models_are_bundled_within_20_mb():
    bundled = lib.bundled_models()
    assert set(EXPECTED) <= set(bundled), f"missing bundled models: {set(EXPECTED) - set(bundled)}"
    total = sum(p.stat().st_size for p in lib.PRETRAINED_DIR.rglob("*") if p.is_file())
    assert total <= 20 * 2**20
    assert lib.default_name() in bundled


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bundled_model_still_scores_its_card_on_the_example(name):
    path = lib.bundled_models()[name]
    card = json.loads((path.parent / "card.json").read_text())
    model = lib.resolve(name, device="cpu")
    assert model.family == EXPECTED[name]
    assert card["test"]["utterances"] >= 100 and "si_sdri" in card["test"]["summary"]
    assert score_example(model) >= card["example"]["si_snri"] - 0.5


def test_bundled_causal_model_streams_like_it_separates_offline():
    model = lib.resolve("tfacm-lite", device="cpu")
    assert model.is_causal
    x = torch.from_numpy(sf.read(bundled_example().mixture, dtype="float32")[0][:4000])[None]
    with torch.no_grad():
        offline = model(x)
        state, outs = model.init_state(1), []
        for s in range(0, x.shape[-1] + model.latency, 128):
            chunk = x[:, s:s + 128] if s < x.shape[-1] else x.new_zeros(1, 128)
            out, state = model.step(chunk, state)
            outs.append(out)
    streamed = torch.cat(outs, -1)[..., model.latency:model.latency + x.shape[-1]]
    assert (streamed - offline).abs().max() <= 1e-5 * offline.pow(2).mean().sqrt() * 10


def test_demo_separates_the_example_and_says_where(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "SI-SNRi" in printed and str((tmp_path / "demo").resolve()) in printed
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "mixture_s1.wav", "mixture_s2.wav", "mixture_spectrogram.png"]


def _fake_run(tmp_path, name="run", init_from=None, train_data="demo:X:train", device="cpu"):
    """A run folder as the trainer leaves it: best.pt, config.yaml, log.jsonl (a resumed run)."""
    import speechsep

    run = tmp_path / name
    run.mkdir()
    model = speechsep.build("tfacm-tiny", sample_rate=8000)
    save_checkpoint(run / "best.pt", model, step=30, epoch=3,
                    extra={"train_config": {"model": {"name": "tfacm-tiny"}, "data": {"train": train_data},
                                            "init_from": init_from}})
    (run / "config.yaml").write_text("model:\n  name: tfacm-tiny\n")
    records = [{"kind": "event", "event": "start", "step": 0, "epoch": 0, "device": device, "run_id": f"id-{name}"},
               {"kind": "train", "step": 10, "epoch": 0, "loss": 1.0, "step_seconds": 2.0},
               {"kind": "train", "step": 20, "epoch": 1, "loss": 0.5, "step_seconds": 4.0},
               {"kind": "event", "event": "resume", "step": 20, "epoch": 1},
               {"kind": "train", "step": 20, "epoch": 1, "loss": 0.5, "step_seconds": 9.0},
               {"kind": "train", "step": 30, "epoch": 2, "loss": 0.4, "step_seconds": 1.0},
               {"kind": "valid", "step": 30, "epoch": 3, "si_sdr": 1.5}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def _folder_dataset(tmp_path, n=2, sr=8000):
    rng = np.random.default_rng(0)
    for folder in ("mix", "s1", "s2"):
        (tmp_path / folder).mkdir()
    for i in range(n):
        s = 0.1 * rng.standard_normal((2, sr))
        sf.write(tmp_path / "s1" / f"u{i}.wav", s[0], sr)
        sf.write(tmp_path / "s2" / f"u{i}.wav", s[1], sr)
        sf.write(tmp_path / "mix" / f"u{i}.wav", s.sum(0), sr)
    return f"folder:{tmp_path / 'mix'}:{tmp_path / 's1'},{tmp_path / 's2'}"


def test_run_history_counts_steps_once_across_a_resume(tmp_path):
    history = run_history(_fake_run(tmp_path))
    assert history["steps"] == 30 and history["epochs"] == 3 and history["best_valid_si_sdr"] == 1.5
    assert history["resumes"] == 1
    assert history["train_step_hours"] == pytest.approx((10 * 2.0 + 10 * 4.0 + 10 * 1.0) / 3600)


def test_bundle_ships_the_checkpoint_named_and_says_which(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    run = _fake_run(tmp_path)
    payload = torch.load(run / "best.pt", weights_only=False)
    payload["step"] = 45
    torch.save(payload, run / "last.pt")
    data = _folder_dataset(tmp_path)
    out = bundle_run(run, "tiny", data, dest=tmp_path / "pretrained", checkpoint="last.pt")
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["checkpoint_file"] == "last.pt" and card["training"]["checkpoint_step"] == 45
    shutil.rmtree(out)
    card = json.loads((bundle_run(run, "tiny", data, dest=tmp_path / "pretrained") / "card.json").read_text())
    assert card["training"]["checkpoint_file"] == "best.pt" and card["training"]["checkpoint_step"] == 30
    for bad, message in (("e99.pt", "no such checkpoint"), ("../run/best.pt", "a file name inside the run folder")):
        with pytest.raises(CheckpointError, match=message):
            bundle_run(run, "other", data, dest=tmp_path / "pretrained", checkpoint=bad)


@pytest.mark.parametrize("total_steps, shipped", [(30, "last.pt"), (40, "best.pt")])
def test_bundle_ships_the_end_of_a_finished_decay_by_default(tmp_path, monkeypatch, total_steps, shipped):
    # a warmup_cosine run that reached total_steps ships last.pt (the decayed weights); one stopped
    # mid-decay (log at step 30 of 40) keeps the trainer's best-on-validation
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    run = _fake_run(tmp_path)
    (run / "config.yaml").write_text("model:\n  name: tfacm-tiny\nschedule:\n  kind: warmup_cosine\n"
                                     f"  total_steps: {total_steps}\n")
    payload = torch.load(run / "best.pt", weights_only=False)
    payload["step"] = 30
    torch.save(payload, run / "last.pt")
    payload["step"] = 20
    torch.save(payload, run / "best.pt")
    assert default_checkpoint(run) == shipped
    # a history the caller has already read is used as given, not read again from log.jsonl
    assert default_checkpoint(run, {"steps": 0}) == "best.pt"
    assert default_checkpoint(run, {"steps": total_steps}) == "last.pt"
    card = json.loads((bundle_run(run, "tiny", _folder_dataset(tmp_path), dest=tmp_path / "pretrained")
                       / "card.json").read_text())
    assert card["training"]["checkpoint_file"] == shipped
    assert card["training"]["checkpoint_step"] == (30 if shipped == "last.pt" else 20)


def test_bundle_writes_a_loadable_weights_only_model_and_a_measured_card(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    run = _fake_run(tmp_path)
    out = bundle_run(run, "tiny", _folder_dataset(tmp_path), dest=tmp_path / "pretrained")
    card = json.loads((out / "card.json").read_text())
    assert card["preset"] == "tfacm-tiny" and card["causal"] is True and card["test"]["utterances"] == 2
    assert card["training"]["steps"] == 30 and "tfacm-tiny" in card["training"]["config_yaml"]
    payload = torch.load(out / "model.pt", weights_only=False)
    assert "optimizer" not in payload and "rng" not in payload
    assert lib.bundled_models() == {"tiny": out / "model.pt"}
    assert np.isfinite(card["example"]["si_snri"])
    assert "| si_sdri |" in (out / "card.md").read_text()


def test_rebundling_a_warm_started_run_counts_every_session(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    data = _folder_dataset(tmp_path)
    first = bundle_run(_fake_run(tmp_path), "tiny", data, dest=tmp_path / "pretrained", recipe="bundled/x")
    second_run = _fake_run(tmp_path, "run2", init_from=str(first / "model.pt"), device="cuda:0")
    out = bundle_run(second_run, "tiny", data, dest=tmp_path / "pretrained", recipe="bundled/x")
    training = json.loads((out / "card.json").read_text())["training"]
    assert [s["steps"] for s in training["sessions"]] == [30, 30] and training["total_steps"] == 60
    assert training["total_train_step_hours"] == pytest.approx(2 * (10 * 2.0 + 10 * 4.0 + 10 * 1.0) / 3600)
    # a CPU hour and a GPU hour are different budgets: the card keeps them apart
    assert [s["device"] for s in training["sessions"]] == ["cpu", "cuda:0"]
    assert training["train_step_hours_by_device"] == pytest.approx({"cpu": 70 / 3600, "cuda": 70 / 3600})
    # a bundled model is named by its place in the package, not by this machine's folder
    assert training["sessions"][1]["init_from"] == "speechsep/pretrained/tiny/model.pt"
    assert "init_from=speechsep/pretrained/tiny/model.pt" in training["continue_command"]
    text = (out / "card.md").read_text()
    assert "| 2 | 30 | cuda:0 | 0.02 | 1 |" in text and "0.04 hours of training steps: 0.02 on cpu, 0.02 on cuda" in text
    # runs and their resumptions, as the README counts them (not "2 session(s)")
    assert "- steps: 60 in 2 runs, resumed 2 times from their own last.pt" in text and "session" not in text


def test_bundling_a_run_again_replaces_its_own_entry(tmp_path, monkeypatch):
    # a warm-started run bundled once, trained on, and bundled again: its steps count once
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    data = _folder_dataset(tmp_path)
    first = bundle_run(_fake_run(tmp_path), "tiny", data, dest=tmp_path / "pretrained", recipe="bundled/x")
    second_run = _fake_run(tmp_path, "run2", init_from=str(first / "model.pt"))
    bundle_run(second_run, "tiny", data, dest=tmp_path / "pretrained", recipe="bundled/x")
    with (second_run / "log.jsonl").open("a") as log:  # the run goes on training
        log.write(json.dumps({"kind": "train", "step": 50, "epoch": 3, "loss": 0.3, "step_seconds": 1.0}) + "\n")
    out = bundle_run(second_run, "tiny", data, dest=tmp_path / "pretrained", recipe="bundled/x")
    training = json.loads((out / "card.json").read_text())["training"]
    assert [s["steps"] for s in training["sessions"]] == [30, 50] and training["total_steps"] == 80
    ids = [s["run_id"] for s in training["sessions"]]
    assert ids[0] != ids[1] and all(ids)


def test_a_run_logged_before_run_ids_is_named_by_its_first_records(tmp_path):
    def legacy(name, first_loss):
        run = _fake_run(tmp_path, name)
        records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
        del records[0]["run_id"]
        records[1]["loss"] = first_loss
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        return run

    a, b = legacy("a", 1.0), legacy("b", 1.1)
    before = run_history(a)["run_id"]
    assert before.startswith("log-") and before != run_history(b)["run_id"]
    with (a / "log.jsonl").open("a") as log:  # appending to the log keeps the run's name
        log.write(json.dumps({"kind": "train", "step": 40, "epoch": 3, "loss": 0.3, "step_seconds": 1.0}) + "\n")
    assert run_history(a)["run_id"] == before


def test_a_resume_with_a_changed_recipe_is_on_the_card(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    run = _fake_run(tmp_path)
    records = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    for r in records:
        if r.get("event") == "resume":
            r["config_changes"] = {"precision": "bf16"}
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert run_history(run)["config_changes"] == [{"step": 20, "precision": "bf16"}]
    out = bundle_run(run, "tiny", _folder_dataset(tmp_path), dest=tmp_path / "pretrained")
    assert "- run 1, from step 20: `precision: bf16`" in (out / "card.md").read_text()
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["continue_command"].endswith("/tiny/model.pt --set precision=bf16")


def _recipe_as_run(recipe, overrides):
    """The ``train_config`` a run of ``recipe`` with ``--set`` ``overrides`` stores in its checkpoints."""
    from speechsep.config import to_dict
    from speechsep.train.config import load_train_config
    from speechsep.train.recipes import resolve_recipe

    return to_dict(load_train_config(resolve_recipe(recipe), overrides))


def test_recipe_overrides_give_back_the_sets_that_made_the_run(tmp_path):
    sets = ["optim.lr=0.0005", "data.mixing.speed_range=[0.9, 1.1]", "model.overrides.hop_ms=16",
            "schedule.kind=warmup_cosine", "schedule.patience=null", "schedule.stop_patience=null",
            f"init_from={tmp_path / 'w.pt'}"]
    config = _recipe_as_run("bundled/tf-mask-blstm", sets)
    # the corpus root given as this machine's path is the recipe's ${SPEECHSEP_DEMO_ROOT}: no override
    config["data"]["train"] = f"demo:{tmp_path}/demo8k:train:reverb"
    assert sorted(recipe_overrides("bundled/tf-mask-blstm", config)) == sorted(sets[:-1])
    assert recipe_overrides("bundled/tf-mask-blstm", _recipe_as_run("bundled/tf-mask-blstm", [])) == []
    assert recipe_overrides("bundled/no-such-recipe", config) == [] and recipe_overrides(None, config) == []


def test_the_cards_training_command_carries_the_runs_overrides(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    run = _fake_run(tmp_path)
    model = torch.load(run / "best.pt", weights_only=False)
    model["extra"]["train_config"] = _recipe_as_run("bundled/tfacm-lite", ["optim.lr=5e-4", "max_steps=3500"])
    torch.save(model, run / "best.pt")
    out = bundle_run(run, "tiny", _folder_dataset(tmp_path), dest=tmp_path / "pretrained", recipe="bundled/tfacm-lite")
    command = json.loads((out / "card.json").read_text())["training"]["command"]
    assert command == "speechsep train bundled/tfacm-lite --out run --set optim.lr=0.0005 --set max_steps=3500"


def test_bundle_without_a_checkpoint_names_the_run_and_writes_nothing(tmp_path):
    run = _fake_run(tmp_path)
    (run / "best.pt").unlink()
    with pytest.raises(Exception, match="no best.pt or last.pt"):
        bundle_run(run, "tiny", "unused", dest=tmp_path / "pretrained")
    assert not (tmp_path / "pretrained").exists()
    shutil.rmtree(run)


def test_the_bundled_cards_count_runs_as_the_readme_does():

    # the README's "Bundled models" counts machine sessions, one run each, resumed; the card counts runs
    for folder in sorted(lib.PRETRAINED_DIR.glob("*/card.json")):
        card = json.loads(folder.read_text())
        text = (folder.parent / "card.md").read_text()
        assert text == lib.render_card(card)  # card.md is what the renderer writes today
        runs = len(card["training"]["sessions"])
        assert f"- steps: {card['training']['total_steps']} in {runs} run{'s' if runs > 1 else ''}, resumed " in text
        assert "session(s)" not in text


def test_a_run_warm_started_from_another_run_counts_both(tmp_path):
    import json as _json

    from speechsep.inference.bundling import _sessions, run_history

    def run(folder, steps, init_from=None):
        folder.mkdir()
        records = [{"kind": "event", "event": "start", "step": 0, "epoch": 0, "run_id": folder.name}]
        records += [{"kind": "train", "step": s, "epoch": 0, "step_seconds": 0.5} for s in range(100, steps + 1, 100)]
        records.append({"kind": "valid", "step": steps, "epoch": 1, "si_sdr": 1.0, "si_sdri": 2.0})
        (folder / "log.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in records))
        (folder / "config.yaml").write_text(f"init_from: {init_from or 'null'}\n")
        return folder

    first = run(tmp_path / "first", 400)
    second = run(tmp_path / "second", 300, init_from=first / "last.pt")
    sessions = _sessions(run_history(second), str(first / "last.pt"))
    assert [s["steps"] for s in sessions] == [400, 300]
    assert sum(s["train_step_hours"] for s in sessions) == pytest.approx(700 * 0.5 / 3600)


def test_weights_without_a_history_are_named_in_a_warning(tmp_path, caplog):
    from speechsep.inference.bundling import _sessions, run_history

    loose = tmp_path / "copies" / "weights.pt"  # copied out of their run: no log or card beside them
    loose.parent.mkdir()
    loose.write_bytes(b"")
    with caplog.at_level("WARNING", logger="speechsep.inference.bundling"):
        sessions = _sessions(run_history(_fake_run(tmp_path)), str(loose))
    assert [s["steps"] for s in sessions] == [30]
    assert "weights.pt: no model card or run log beside it" in caplog.text


#: a word that starts with / or ~ (an absolute path) after a separator of commands, specs or YAML
ABSOLUTE = re.compile(r"""(?:^|[\s"'=:,(`])~?/[\w.]""")


def test_a_card_names_no_folder_of_the_machine_that_wrote_it(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path / "pretrained")
    first = _fake_run(tmp_path, "first")
    corpus = tmp_path / "corpora" / "demo8k"
    run = _fake_run(tmp_path, "second", init_from=str(first / "last.pt"), train_data=f"demo:{corpus}:train")
    config = {"model": {"name": "tfacm-tiny"}, "data": {"train": f"demo:{corpus}:train:reverb",
                                                         "valid": f"demo:{corpus}:valid:reverb"},
              "init_from": str(first / "last.pt"), "description": "demo: a run (not a spec)"}
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    data = _folder_dataset(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "venv" / "bin" / "speechsep"), "bundle", str(run), "--name",
                                      "tiny", "--data", data, "--notes", "two runs"])
    out = bundle_run(run, "tiny", data, dest=tmp_path / "pretrained", recipe="bundled/x")

    text = (out / "card.json").read_text() + (out / "card.md").read_text()
    assert str(tmp_path) not in text
    card = json.loads((out / "card.json").read_text())
    strings = [card["bundled_with"], card["training"]["config_yaml"], (out / "card.md").read_text()]
    strings += list(_strings(card))
    for value in strings:  # no absolute path anywhere: a word starting with / or ~ (after a separator)
        assert not ABSOLUTE.search(value), value
    training = card["training"]
    assert training["data"] == "demo:${SPEECHSEP_DEMO_ROOT}:train"
    assert [s["init_from"] for s in training["sessions"]] == [None, "first/last.pt"]
    assert yaml.safe_load(training["config_yaml"]) == {
        "model": {"name": "tfacm-tiny"},
        "data": {"train": "demo:${SPEECHSEP_DEMO_ROOT}:train:reverb", "valid": "demo:${SPEECHSEP_DEMO_ROOT}:valid:reverb"},
        "init_from": "first/last.pt", "description": "demo: a run (not a spec)"}
    assert card["test"]["data"] == "folder:mix:s1,s2"
    assert card["test"]["command"] == "speechsep eval tiny --data folder:mix:s1,s2 --out results.csv"
    assert card["bundled_with"] == "speechsep bundle second --name tiny --data folder:mix:s1,s2 --notes 'two runs'"


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_a_card_writes_each_dataset_root_as_the_variable_the_recipes_read():
    from speechsep.data.spec import parse_spec
    from speechsep.inference.bundling import ROOT_VARIABLES, portable
    from speechsep.train.recipes import CORPORA

    for corpus in CORPORA:
        kind, root, _, _ = parse_spec(corpus.train)
        assert root == "${" + ROOT_VARIABLES[kind] + "}"
        assert portable(corpus.train.replace(root, "/data/somewhere")) == corpus.train
    assert portable("demo:${SPEECHSEP_DEMO_ROOT}:test") == "demo:${SPEECHSEP_DEMO_ROOT}:test"
    assert portable("demo: prose, not a spec") == "demo: prose, not a spec"
