"""The post-process workshop tool: test-time variants of a separator's output, scored paired."""

import pytest
import torch


def test_mixture_consistency_makes_the_estimates_add_up_to_the_mixture():
    from bench.learn.post_process import mixture_consistency

    mixture, est = torch.randn(800), torch.randn(2, 800)
    fixed = mixture_consistency(est, mixture)
    assert torch.allclose(fixed.sum(0), mixture, atol=1e-5)
    assert torch.allclose(fixed[0] - est[0], fixed[1] - est[1], atol=1e-6)  # the residual is shared equally


def test_wiener_remask_keeps_disjoint_sources_and_splits_the_mixture():
    from bench.learn.post_process import wiener_remask

    t = torch.arange(8000) / 8000
    low, high = torch.sin(2 * torch.pi * 300 * t), torch.sin(2 * torch.pi * 2500 * t)
    out = wiener_remask(torch.stack([low, high]), low + high, power=2.0)
    assert torch.allclose(out.sum(0), low + high, atol=1e-3)  # the masks sum to one
    inner = slice(256, -256)
    assert (out[0, inner] - low[inner]).abs().max() < 0.02 and (out[1, inner] - high[inner]).abs().max() < 0.02


def test_align_to_swaps_estimates_into_the_reference_order():
    from bench.learn.post_process import align_to

    ref = torch.randn(2, 400)
    assert torch.equal(align_to(ref, ref.flip(0) * 0.5), ref * 0.5)
    assert torch.equal(align_to(ref, ref), ref)


def test_compare_scores_every_variant_paired_against_the_plain_output():
    from bench.learn.post_process import compare, variants
    from speechsep.registry import build

    torch.manual_seed(0)
    model = build("tf-mask-tiny").eval()
    sources = torch.randn(3, 2, 4000) * 0.1
    dataset = [(s.sum(0), s) for s in sources]
    outputs = variants(model, dataset[0][0])
    assert set(outputs) == {"plain", "consistency", "wiener1", "wiener2", "shift4", "shift4+wiener2", "reapply"}
    assert all(o.shape == (2, 4000) for o in outputs.values())
    rows = compare(model, dataset, limit=3)
    assert rows[0]["variant"] == "plain" and len(rows) == 7
    consistency = next(r for r in rows if r["variant"] == "consistency")
    assert consistency["low"] <= consistency["diff"] <= consistency["high"]
    with pytest.raises(ValueError, match="same ones"):
        compare(model, dataset, limit=1)


class _Fixed(torch.nn.Module):
    """A stand-in separator whose output for any mixture is ``out`` (2, T)."""

    num_sources, sample_rate = 2, 8000

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, mixture):
        return self.out[None]


def test_ensemble_aligns_and_rescales_each_other_output_before_averaging():
    from bench.learn.post_process import ensemble

    torch.manual_seed(0)
    mixture, plain = torch.randn(400), torch.randn(2, 400)
    # another separator giving the same voices swapped and 3x louder: undone, so the mean is the plain output
    assert torch.allclose(ensemble([_Fixed(3 * plain.flip(0))], mixture, plain), plain, atol=1e-6)
    # a different output in the plain order: the mean of the two at the plain output's norm per source
    other = plain + 0.5 * torch.randn(2, 400)
    scaled = other * (plain.norm(dim=-1, keepdim=True) / other.norm(dim=-1, keepdim=True))
    assert torch.allclose(ensemble([_Fixed(other)], mixture, plain), (plain + scaled) / 2, atol=1e-6)


def test_compare_adds_the_ensemble_variant_and_refuses_mixed_sample_rates():
    from bench.learn.post_process import compare, variants
    from speechsep.registry import build

    torch.manual_seed(0)
    model, other = build("tf-mask-tiny").eval(), build("tf-mask-tiny").eval()
    sources = torch.randn(2, 2, 4000) * 0.1
    dataset = [(s.sum(0), s) for s in sources]
    assert "ensemble" in variants(model, dataset[0][0], [other]) and "ensemble" not in variants(model, dataset[0][0])
    rows = compare(model, dataset, limit=2, others=[other])
    assert [r["variant"] for r in rows][-1] == "ensemble" and len(rows) == 8
    with pytest.raises(ValueError, match="share a sample rate"):
        compare(model, dataset, limit=2, others=[build("tf-mask-tiny", sample_rate=16000)])
