"""Which model ``speechsep serve`` (and separate, stream, export) gets: the bundled causal one by default,
a clear error when it is missing; never depending on a trained model being shipped."""

import logging

import pytest
import torch

import speechsep
from speechsep.checkpoint import CheckpointError, save_checkpoint
from speechsep.cli import main
from speechsep.inference import pretrained as lib


@pytest.fixture
def pretrained(tmp_path, monkeypatch):
    """An empty speechsep/pretrained/ stand-in; ``add(name, preset)`` ships a seeded model in it."""
    monkeypatch.setattr(lib, "PRETRAINED_DIR", tmp_path)

    def add(name: str, preset: str):
        torch.manual_seed(0)
        model = speechsep.build(preset).eval()
        save_checkpoint(tmp_path / name / "model.pt", model, include_rng=False)
        return model

    return add


def test_no_bundled_model_names_the_missing_file(pretrained):
    with pytest.raises(CheckpointError, match=r"no bundled causal model: .*tfacm-lite/model\.pt is missing"):
        lib.resolve(None, causal=True, device="cpu", presets=True)


def test_a_non_causal_bundled_model_is_not_the_live_default(pretrained):
    pretrained("a-offline", "iter-time-simo1-siso2-it1-tiny")
    with pytest.raises(CheckpointError, match=r"bundled: a-offline; none of them causal"):
        lib.default_causal_name()
    shipped = pretrained("b-causal", "tfacm-tiny")
    assert lib.default_causal_name() == "b-causal"  # skips the offline one listed first
    got = lib.resolve(None, causal=True, device="cpu", presets=True)
    assert got.is_causal and not got.training
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), shipped.state_dict().values(), strict=True))


def test_the_default_name_wins_over_other_bundled_models(pretrained):
    pretrained("a-causal", "tfacm-tiny")
    pretrained(lib.DEFAULT_CAUSAL_MODEL, "tfacm-tiny")
    assert lib.default_causal_name() == lib.DEFAULT_CAUSAL_MODEL


def test_preset_names_build_random_weights_with_a_warning(pretrained, caplog):
    with caplog.at_level(logging.WARNING):
        model = lib.resolve("tfacm-tiny", causal=True, device="cpu", presets=True)
    assert model.family == "tfacm" and not model.training and "random" in caplog.text
    with pytest.raises(CheckpointError, match="no-such-model: not a checkpoint file"):
        lib.resolve("no-such-model", causal=True, device="cpu", presets=True)


def test_checkpoint_paths_load_trained_weights(tmp_path):
    torch.manual_seed(3)
    model = speechsep.build("tfacm-tiny")
    path = save_checkpoint(tmp_path / "m.pt", model, include_rng=False)
    got = lib.resolve(str(path), causal=True, device="cpu", presets=True)
    assert torch.equal(next(iter(got.state_dict().values())), next(iter(model.state_dict().values())))


def test_cli_serve_without_a_bundled_model_fails_clearly(pretrained, capsys, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server must not start"))
    assert main(["serve", "--port", "1"]) == 2
    assert "no bundled causal model" in capsys.readouterr().err


def test_cli_serve_defaults_to_the_bundled_causal_model_with_its_limits(pretrained, monkeypatch):
    import uvicorn

    pretrained(lib.DEFAULT_CAUSAL_MODEL, "tfacm-tiny")
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert main(["serve", "--port", "8123", "--max-sessions", "3", "--max-frame-samples", "1000",
                 "--max-session-seconds", "5", "--max-upload-mb", "1", "--queue-frames", "4"]) == 0
    app = seen["app"]
    limits = app.state.manager.limits
    assert app.state.model.family == "tfacm" and app.state.model.is_causal
    assert (limits.max_sessions, limits.max_frame_samples, limits.max_session_seconds, limits.max_upload_bytes,
            limits.queue_frames) == (3, 1000, 5.0, 2**20, 4)
    # uvicorn refuses WebSocket messages larger than the largest legal frame before buffering them
    assert seen["port"] == 8123 and seen["host"] == "127.0.0.1" and seen["ws_max_size"] == 4 * 1000 + 64


def test_the_marked_default_is_preferred_among_causal_models(pretrained):
    pretrained("a-causal", "tfacm-tiny")
    pretrained("b-causal", "tfacm-tiny")
    lib.set_default_name("b-causal")
    assert lib.default_causal_name() == "b-causal"
