"""speechsep.inference.pretrained: the one place that resolves "which model, on which device"."""

import pytest
import torch

import speechsep
from speechsep.checkpoint import CheckpointError, save_checkpoint
from speechsep.inference import pretrained as lib

CAUSAL, OFFLINE = "tfacm-tiny", "iter-time-simo1-siso2-it1-tiny"


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """An empty speechsep/pretrained/ stand-in; ``add(name, preset)`` ships a seeded model in it."""
    root = tmp_path / "pretrained"
    root.mkdir()
    monkeypatch.setattr(lib, "PRETRAINED_DIR", root)

    def add(name: str, preset: str, seed: int = 0):
        torch.manual_seed(seed)
        model = speechsep.build(preset).eval()
        save_checkpoint(root / name / "model.pt", model, include_rng=False)
        return model

    add.root = root
    return add


def _same_weights(a, b) -> bool:
    return all(torch.equal(x.cpu(), y.cpu()) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def _card(name: str) -> dict:
    summary = {"si_sdri": {"mean": 4.5, "median": 4.0, "ci95_low": 3.0, "ci95_high": 6.0}}
    test = {"data": "folder:mix:s1,s2", "utterances": 2, "command": f"speechsep eval {name}", "summary": summary}
    return {
        "name": name, "description": "a test bundle", "preset": CAUSAL, "family": "tfacm", "causal": True,
        "latency_ms": 16.0, "sample_rate": 8000, "params_m": 0.01, "macs_g": 0.02,
        "training": {"data": "demo", "total_steps": 30, "total_train_step_hours": 0.5, "device": "CPU, 1 thread",
                     "best_valid_si_sdr": 1.5, "command": "speechsep train x",
                     "sessions": [{"steps": 30, "train_step_hours": 0.5, "resumes": 1, "valid_curve": [[10, 1.5]]}]},
        "test": test, "tests": {"all": test}, "example": {"source": "the example", "si_snri": 5.25}, "notes": "",
    }


def test_lists_the_bundled_models_by_name_and_never_half_a_bundle(bundle):
    assert lib.bundled_models() == {}
    bundle("b-causal", CAUSAL)
    bundle("a-causal", CAUSAL)
    (bundle.root / "c-half").mkdir()  # a card written, model.pt not yet: not a bundle
    lib.write_card(bundle.root / "c-half", _card("c-half"))
    assert lib.bundled_models() == {n: bundle.root / n / "model.pt" for n in ("a-causal", "b-causal")}
    assert list(lib.bundled_models()) == ["a-causal", "b-causal"]


def test_a_card_reads_back_as_written_by_name_folder_or_model_file(bundle):
    bundle("m", CAUSAL)
    card = _card("m")
    assert lib.write_card(bundle.root / "m", card) == bundle.root / "m"
    for where in ("m", bundle.root / "m", bundle.root / "m" / "model.pt"):
        assert lib.read_card(where) == card
    assert (bundle.root / "m" / "card.md").read_text() == lib.render_card(card)
    assert "| si_sdri | 4.50 | 4.00 | 3.00 .. 6.00 |" in lib.render_card(card)
    # a missing or broken card is reported, naming the file, not raised
    bundle("n", CAUSAL)
    assert lib.read_card("n") == {"error": f"no card.json in {bundle.root / 'n'}"}
    (bundle.root / "n" / "card.json").write_text("{not json")
    assert "card.json: unreadable" in lib.read_card("n")["error"]
    (bundle.root / "n" / "card.json").write_text("[1, 2]")
    assert "not a JSON object" in lib.read_card("n")["error"]


def test_the_default_and_the_causal_default(bundle):
    with pytest.raises(ValueError, match="none is bundled"):
        lib.default_name()
    bundle("a-offline", OFFLINE)
    bundle("b-causal", CAUSAL)
    bundle("c-causal", CAUSAL)
    assert lib.default_name() == "a-offline"  # no DEFAULT marker: the first by name
    assert lib.default_causal_name() == "b-causal"  # the first that can stream
    lib.set_default_name("c-causal")
    assert (bundle.root / "DEFAULT").read_text() == "c-causal\n"
    assert lib.default_name() == "c-causal" and lib.default_causal_name() == "c-causal"
    with pytest.raises(ValueError, match=r"missing: not a bundled model \(bundled: a-offline, b-causal, c-causal\)"):
        lib.set_default_name("missing")
    bundle(lib.DEFAULT_CAUSAL_MODEL, CAUSAL)
    assert lib.default_causal_name() == lib.DEFAULT_CAUSAL_MODEL  # shipped: it wins
    (bundle.root / "DEFAULT").write_text("gone\n")  # a marker naming no bundle is ignored
    assert lib.default_name() == "a-offline"
    lib.set_default_name("c-causal", causal=True)  # the causal marker wins over the shipped name
    assert (bundle.root / "DEFAULT_CAUSAL").read_text() == "c-causal\n" and lib.default_causal_name() == "c-causal"
    with pytest.raises(ValueError, match="a-offline: not causal"):
        lib.set_default_name("a-offline", causal=True)
    (bundle.root / "DEFAULT_CAUSAL").write_text("a-offline\n")  # written by hand: a non-causal one is ignored
    assert lib.default_causal_name() == lib.DEFAULT_CAUSAL_MODEL


def test_resolve_a_name_a_path_a_run_folder_and_none(bundle, tmp_path):
    offline = bundle("a-offline", OFFLINE, seed=1)
    causal = bundle("b-causal", CAUSAL, seed=2)
    by_name = lib.resolve("b-causal", device="cpu")
    assert _same_weights(by_name, causal) and not by_name.training
    assert next(by_name.parameters()).device == torch.device("cpu")
    path = bundle.root / "b-causal" / "model.pt"
    assert _same_weights(lib.resolve(path, device="cpu"), causal)
    assert _same_weights(lib.resolve(str(path), device="cpu"), causal)
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "best.pt", offline, include_rng=False)
    assert _same_weights(lib.resolve(run, device="cpu"), offline)  # a training run folder: its best.pt
    default = lib.resolve(None, device="cpu")
    assert _same_weights(default, offline) and not default.is_causal
    live = lib.resolve(None, causal=True, device="cpu")
    assert _same_weights(live, causal) and live.is_causal and not live.training
    auto = lib.resolve(device="auto")  # the CPU here, the GPU where there is one
    assert _same_weights(auto, offline) and next(auto.parameters()).device == lib.resolve_device("auto")


def test_an_unknown_name_is_named_with_the_known_ones(bundle):
    bundle("a-offline", OFFLINE)
    bundle("b-causal", CAUSAL)
    with pytest.raises(CheckpointError, match=r"no-such-model: neither a checkpoint file.*\(bundled: a-offline, b-causal\)"):
        lib.resolve("no-such-model")
    with pytest.raises(CheckpointError, match=r"no-such-model: not a checkpoint file.*\(bundled: a-offline, b-causal\)"):
        lib.resolve("no-such-model", presets=True)
    # a preset name is a model only where random weights make sense (timing: stream, serve, export)
    with pytest.raises(CheckpointError, match=f"{CAUSAL}: neither"):
        lib.resolve(CAUSAL, device="cpu")
    assert lib.resolve(CAUSAL, device="cpu", presets=True).family == "tfacm"


def test_resolve_device_auto_and_cpu():
    assert lib.resolve_device("cpu") == torch.device("cpu")
    assert lib.resolve_device(torch.device("cpu")) == torch.device("cpu")
    auto = lib.resolve_device()
    if torch.cuda.is_available():
        assert auto == torch.device("cuda", torch.cuda.current_device()) and auto.index is not None
    else:
        assert auto == torch.device("cpu")
    with pytest.raises(ValueError, match="'gpu' is not a device: use auto, cpu, cuda or cuda:N"):
        lib.resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.device_count() > 3, reason="this machine has a cuda:3")
def test_an_unavailable_gpu_is_a_clear_error_naming_it(bundle):
    bundle("b-causal", CAUSAL)
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    have = "no CUDA GPU is available" if count == 0 else f"this machine has {count} CUDA GPU"
    with pytest.raises(ValueError, match=f"device 'cuda:3' is not available: {have}"):
        lib.resolve_device("cuda:3")
    with pytest.raises(ValueError, match="'cuda:3' is not available"):  # before loading anything
        lib.resolve("b-causal", device="cuda:3")
    if count == 0:
        with pytest.raises(ValueError, match="device 'cuda' is not available: no CUDA GPU"):
            lib.resolve_device("cuda")


def test_speechsep_load_goes_through_resolve(bundle):
    causal = bundle("b-causal", CAUSAL, seed=4)
    model = speechsep.load("b-causal")
    assert _same_weights(model, causal) and not model.training
