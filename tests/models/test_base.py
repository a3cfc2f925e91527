"""The optional capabilities :class:`SeparationModel` declares, and their defaults."""

from __future__ import annotations

import pytest
import torch

from speechsep.models.base import Streamer
from speechsep.registry import build
from speechsep.train.engine import ModelWithLoss


@pytest.mark.parametrize(
    ("name", "hop"),
    [
        ("dprnn-causal", 2),  # conv encoder, stride 2
        ("skim", 1),
        ("resepformer", 8),
        ("tfgridnet-causal", 16),  # STFT hop of 2 ms at 8 kHz
        ("tfacm-large", 8),  # 1 ms at 8 kHz
        ("tfacm-lite", 64),  # 8 ms at 8 kHz
        ("tf-mask-blstm", 64),  # 8 ms at 8 kHz
        ("sudormrf-1.0x", 10),
        ("iter-time-simo3-siso0-it1", 16),  # 1 ms at 16 kHz
        ("iter-freq-simo3-siso0-it1", 128),  # 8 ms at 16 kHz
    ],
)
def test_hop_is_the_front_ends_stride(name, hop):
    assert build(name).hop == hop


def test_default_training_outputs_is_the_forward_output_at_weight_one():
    torch.manual_seed(0)
    model = build("dprnn-causal-tiny").eval()
    mix, ref = torch.randn(2, 400), torch.randn(2, 2, 400)
    with torch.no_grad():
        # the trainer's view: the model's outputs, weighted by the (default) objective
        (term,) = ModelWithLoss(model, "neg_snr", pit=True).terms(mix, ref)
        expected = model(mix)
    assert len(term) == 2 and term[1] == 1.0
    torch.testing.assert_close(term[0], expected, rtol=0, atol=0)


def test_the_export_chunk_leaves_a_fixed_size_state_as_it_is():
    """ONNX export traces ``step`` from ``init_state(B, chunk_samples=n)``; a model whose state is fixed-size
    whatever the chunk gives the same stream."""
    torch.manual_seed(0)
    model = build("dprnn-causal-tiny").eval()
    x = torch.randn(1, 96)
    with torch.no_grad():
        ref, _ = model.step(x, model.init_state(1))
        out, _ = model.step(x, model.init_state(1, chunk_samples=96))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_a_model_is_a_streamer_on_any_chunk_length():
    model = build("dprnn-causal-tiny")
    assert isinstance(model, Streamer)
    assert (model.step_samples, model.threads) == (1, None)
