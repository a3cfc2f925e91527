import dataclasses

import pytest
import torch
from torch import nn

import speechsep
from speechsep.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from speechsep.models.base import ModelConfig, SeparationModel, StreamingNotSupported
from speechsep.registry import build, get_preset, register_model, register_preset


@dataclasses.dataclass
class _MaskNetConfig(ModelConfig):
    hidden: int = 8
    window: int = 16


@register_model
class _MaskNet(SeparationModel):
    """A real (if small) masking model used to exercise registry, checkpoints and complexity."""

    family = "_test-masknet"
    config_class = _MaskNetConfig

    def __init__(self, config):
        super().__init__(config)
        w = config.window
        self.enc = nn.Conv1d(1, config.hidden, w, stride=w // 2)
        self.lstm = nn.LSTM(config.hidden, config.hidden, batch_first=True)
        self.mask = nn.Conv1d(config.hidden, config.hidden * config.num_sources, 1)
        self.dec = nn.ConvTranspose1d(config.hidden, 1, w, stride=w // 2)

    def forward(self, mixture):
        b, t = mixture.shape
        feats = torch.relu(self.enc(mixture[:, None]))
        h, _ = self.lstm(feats.transpose(1, 2))
        masks = torch.sigmoid(self.mask(h.transpose(1, 2))).view(b, self.num_sources, -1, feats.shape[-1])
        out = self.dec((masks * feats[:, None]).flatten(0, 1))[..., :t]
        return nn.functional.pad(out, (0, t - out.shape[-1])).view(b, self.num_sources, t)


register_preset("_test-masknet-wide", "_test-masknet", _MaskNetConfig(hidden=16), "wider", paper={"params_m": 0.1})


def test_build_with_overrides_and_presets():
    m = build("_test-masknet", hidden=4, num_sources=3)
    assert isinstance(m, _MaskNet) and m.config.hidden == 4 and m.num_sources == 3
    assert m(torch.randn(2, 800)).shape == (2, 3, 800)
    wide = speechsep.build("_test-masknet-wide")
    assert wide.config.hidden == 16 and get_preset("_test-masknet-wide").paper == {"params_m": 0.1}
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        build("nope")


def test_save_load_identical_output(tmp_path):
    m = build("_test-masknet", hidden=6)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.randn(1, 400)).pow(2).mean().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "ck.pt", m, optimizer=opt, step=7, epoch=2)
    loaded = speechsep.load(str(path))
    x = torch.randn(2, 1000)
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), loaded(x))
    payload = read_checkpoint(path)
    assert payload["step"] == 7 and payload["epoch"] == 2 and "optimizer" in payload and "rng" in payload
    assert payload["versions"]["torch"] == torch.__version__
    assert not loaded.training


def test_bad_checkpoints_are_named(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint"):
        speechsep.load(str(junk))
    with pytest.raises(CheckpointError, match="neither a checkpoint file"):
        speechsep.load(str(tmp_path / "missing.pt"))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    m = build("_test-masknet")
    path = save_checkpoint(tmp_path / "ck.pt", m, step=1)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, m, step=2)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_non_causal_models_refuse_to_stream():
    m = build("_test-masknet")
    assert not m.is_causal
    with pytest.raises(StreamingNotSupported):
        m.init_state(1)


def test_complexity_counts_lstm():
    m = build("_test-masknet", hidden=8, window=16, sample_rate=8000)
    c = speechsep.complexity(m, seconds=1.0)
    assert c.params == sum(p.numel() for p in m.parameters())
    frames = (8000 - 16) // 8 + 1
    lstm_macs = frames * 4 * 8 * (8 + 8)  # 4 gates, (input + hidden) x hidden per frame
    enc_macs = frames * 8 * 16
    # the LSTM must be counted: total well above the convolutions alone
    assert c.macs_per_second > enc_macs + lstm_macs * 0.9
    c2 = speechsep.complexity(m, seconds=2.0)
    assert abs(c2.macs_per_second - c.macs_per_second) / c.macs_per_second < 0.01  # per second of audio
