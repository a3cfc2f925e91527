"""The side-by-side harness for the authors' TFACM, on a stand-in checkout with the same layout."""

import sys
import textwrap

import pytest
import torch

from bench.authors_tfacm import load_authors_model, side_by_side
from speechsep.registry import build

#: a model that, like theirs, takes (B, T), returns (B, C, T), and inverts its STFT through
#: torch.functional.istft with a real (..., 2) tensor (which torch 2 refuses without the harness)
STAND_IN = '''
import torch
import torch.functional as tf
from torch import nn


class Stand(nn.Module):
    def __init__(self, n_srcs, n_fft, sample_rate):
        super().__init__()
        self.n_srcs, self.n_fft = n_srcs, n_fft
        self.gain = nn.Parameter(torch.ones(n_srcs))

    def forward(self, input):
        window = torch.hann_window(self.n_fft)
        spec = torch.view_as_real(torch.stft(input, self.n_fft, window=window, return_complex=True))
        out = tf.istft(spec, self.n_fft, window=window, length=input.shape[-1])
        return self.gain[None, :, None] * out[:, None]
'''


@pytest.fixture
def checkout(tmp_path):
    models = tmp_path / "look2hear" / "models"
    models.mkdir(parents=True)
    (tmp_path / "look2hear" / "__init__.py").write_text("")
    (models / "__init__.py").write_text("")
    (models / "TFACM_causal.py").write_text(STAND_IN)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tfacm_causal_wham.yml").write_text(textwrap.dedent("""
        audionet:
          audionet_name: Stand
          audionet_config:
            n_srcs: 2
            n_fft: 64
        loss: {}
        """))
    path = list(sys.path)
    yield tmp_path
    sys.path[:] = path
    for name in [n for n in sys.modules if n == "look2hear" or n.startswith("look2hear.")]:
        del sys.modules[name]


def test_builds_their_class_from_their_config_and_runs_it_on_torch_2(checkout):
    import torch.functional as tf

    original = tf.istft
    model = load_authors_model(checkout, sample_rate=8000)
    assert model.sample_rate == 8000 and "Stand" in model.name and not model.training
    x = torch.randn(1, 800)
    with torch.inference_mode():
        y = model(x)
    assert y.shape == (1, 2, 800)
    torch.testing.assert_close(y[:, 0], x, rtol=1e-4, atol=1e-5)  # STFT then iSTFT: the input back
    assert tf.istft is original  # the torch-2 adaptation lasts for their forward only
    with pytest.raises(RuntimeError, match="complex-valued input"):  # without it torch refuses their call
        tf.istft(torch.randn(33, 5, 2), 64, window=torch.hann_window(64))


def test_bad_checkouts_are_named(checkout, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match=r"no look2hear/models/TFACM_causal.py"):
        load_authors_model(empty)
    with pytest.raises(FileNotFoundError, match="no config configs/missing.yml"):
        load_authors_model(checkout, "configs/missing.yml")
    (checkout / "configs" / "bare.yml").write_text("loss: {}\n")
    with pytest.raises(ValueError, match="no audionet.audionet_name"):
        load_authors_model(checkout, "configs/bare.yml")
    (checkout / "configs" / "other.yml").write_text("audionet:\n  audionet_name: Nope\n  audionet_config: {}\n")
    with pytest.raises(AttributeError, match="no class Nope"):
        load_authors_model(checkout, "configs/other.yml")


def test_side_by_side_alternates_and_reports_their_time_over_ours(checkout, monkeypatch):
    ours = build("tfacm-tiny").eval()
    theirs = load_authors_model(checkout, sample_rate=ours.sample_rate)
    order = []
    for who, model in (("ours", ours), ("theirs", theirs)):
        model.register_forward_hook(lambda *_, who=who: order.append(who))
    row = side_by_side(ours, theirs, seconds=0.25, repeats=3)
    assert order == ["ours", "theirs"] * 4  # one warm-up each, then alternating rounds
    assert len(row["ours_s"]) == len(row["theirs_s"]) == 3
    med = sorted(row["theirs_s"])[1] / sorted(row["ours_s"])[1]
    assert row["speedup"] == pytest.approx(med)
    assert row["ours_rtf"] == pytest.approx(sorted(row["ours_s"])[1] / 0.25)
    theirs.sample_rate = 16000
    with pytest.raises(ValueError, match="sample rates differ"):
        side_by_side(ours, theirs, seconds=0.25, repeats=1)
