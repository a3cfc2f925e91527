"""The generalized iterative separation model (iterative paper, Fig. 1), at tiny sizes."""

import pytest
import torch

from speechsep.complexity import count_parameters
from speechsep.config import to_dict
from speechsep.losses.objectives import ObjectiveConfig, assemble_terms, weighted_pit_loss
from speechsep.losses.pit import apply_permutation, pit_from_pairwise
from speechsep.losses.snr import pairwise_neg_snr, si_sdr
from speechsep.models.iterative import IterationEstimate, IterativeOutputs
from speechsep.models.iterative_presets import TABLE4_PAPER, TABLES, preset_name, row_config
from speechsep.registry import build, build_from_config, get_preset, list_presets

SR = 8000
#: the objectives the tests train with (the training config's loss: section, no longer the model's)
LAYERWISE = ObjectiveConfig(layers="all")
ORACLE = ObjectiveConfig(oracle_bias=True)
TINY = {"sample_rate": SR, "dprnn": {"bottleneck": 8, "hidden": 8, "segment_size": 10}}


@pytest.fixture(autouse=True)
def _one_thread():
    """These LSTMs are a few units wide: a second intra-op thread only adds synchronisation (and on a
    shared, oversubscribed machine it makes every call wait for a descheduled thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(domain="time", **kw):
    enc = {"num_filters": 16} if domain == "time" else {"window_ms": 8.0, "hop_ms": 4.0}
    return build("iterative", domain=domain, encoder=enc, **TINY, **kw)


def simo_params(model):
    return sum(count_parameters(s) for s in model.simo)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(3)
    sources = torch.randn(2, 2, 1200, generator=g)
    return sources.sum(1), sources


@pytest.mark.parametrize("domain", ["time", "freq"])
def test_shapes_and_inference_iterations(domain, batch):
    mix, _ = batch
    model = tiny(domain, simo_layers=1, siso_layers=1, iterations=2).eval()
    assert model(mix).shape == (2, 2, 1200)
    assert model(mix.unsqueeze(1), iterations=1).shape == (2, 2, 1200)
    # more iterations than trained: runs and is deterministic
    with torch.no_grad():
        a, b = model(mix, iterations=4), model(mix, iterations=4)
        two = model(mix, iterations=2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - two).abs().max() > 0


@pytest.mark.parametrize("domain", ["time", "freq"])
def test_shared_iterations_add_no_parameters(domain):
    one = tiny(domain, simo_layers=1, siso_layers=2, iterations=1)
    three = tiny(domain, simo_layers=1, siso_layers=2, iterations=3)
    assert count_parameters(three) == count_parameters(one)


@pytest.mark.parametrize("domain", ["time", "freq"])
def test_iteration_specific_simo_multiplies_only_simo_parameters(domain):
    shared = tiny(domain, simo_layers=1, siso_layers=2, iterations=3)
    specific = tiny(domain, simo_layers=1, siso_layers=2, iterations=3, share_simo=False)
    assert simo_params(specific) == 3 * simo_params(shared)
    assert count_parameters(specific) - count_parameters(shared) == 2 * simo_params(shared)
    assert len(specific.simo) == 3 and len(shared.simo) == 1
    # everything outside the SIMO modules (front-end, SISO, mask layer) is one shared copy
    outside = {k: v.shape for k, v in specific.state_dict().items() if not k.startswith("simo.")}
    assert outside == {k: v.shape for k, v in shared.state_dict().items() if not k.startswith("simo.")}


def test_iteration_specific_simo_runs_more_inference_iterations_than_trained(batch):
    mix, _ = batch
    model = tiny("freq", simo_layers=1, siso_layers=1, iterations=2, share_simo=False).eval()
    with torch.no_grad():
        a, b = model(mix, iterations=4), model(mix, iterations=4)
        three = model(mix, iterations=3)
    assert a.shape == (2, 2, 1200) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # iterations past the trained count reuse the last SIMO module, so each one still changes the output
    assert (a - three).abs().max() > 0


@pytest.mark.parametrize("detach", [True, False])
def test_detach_stops_the_gradient_across_three_iterations(detach, batch):
    mix, ref = batch
    model = tiny("freq", simo_layers=1, siso_layers=1, iterations=3, detach=detach)
    first, second, third = model.training_outputs(mix, ref).iteration_outputs()
    loss_third = pit_from_pairwise(pairwise_neg_snr(third, ref))[0].sum()
    grads = torch.autograd.grad(loss_third, [first, second], allow_unused=True, retain_graph=True)
    for grad in grads:
        if detach:
            assert grad is None or torch.count_nonzero(grad) == 0
        else:
            # iteration 3 reads iteration 2 directly and iteration 1 through it
            assert grad is not None and grad.abs().sum() > 0
    # the parameters still learn from every iteration's loss with detach: only the feedback is cut
    (param_grad,) = torch.autograd.grad(loss_third, [model.mask.out[1].weight])
    assert param_grad.abs().sum() > 0


@pytest.mark.parametrize("detach", [True, False])
def test_detach_stops_the_gradient_between_iterations(detach, batch):
    mix, ref = batch
    model = tiny(simo_layers=1, siso_layers=1, iterations=2, detach=detach)
    first, second = model.training_outputs(mix, ref).iteration_outputs()
    loss_second = pit_from_pairwise(pairwise_neg_snr(second, ref))[0].sum()
    (grad,) = torch.autograd.grad(loss_second, first, allow_unused=True)
    if detach:
        assert grad is None or torch.count_nonzero(grad) == 0
    else:
        assert grad is not None and grad.abs().sum() > 0


def test_permutation_carried_between_iterations_is_pits(batch):
    mix, _ = batch
    model = tiny(simo_layers=1, siso_layers=1, iterations=2).eval()
    with torch.no_grad():
        first = model(mix, iterations=1)
    # plant a swap: targets are the first iteration's outputs in reversed order (plus a little noise)
    targets = first.flip(1) + 1e-3 * torch.randn_like(first)
    seen = []
    encode = model.front.encode
    model.front.encode = lambda wav: (seen.append(wav.clone()), encode(wav))[1]
    with torch.no_grad():
        out = model.training_outputs(mix, targets)
    expected = pit_from_pairwise(pairwise_neg_snr(first, targets))[1]
    assert expected.tolist() == [[1, 0], [1, 0]]
    assert out.permutations[0].tolist() == expected.tolist()
    # calls to encode: the mixture, then iteration 2's bias = iteration 1's outputs in PIT order
    bias = seen[1].reshape(2, 2, -1)
    torch.testing.assert_close(bias, apply_permutation(first, expected))
    assert len(out.permutations) == 2


def test_layerwise_returns_every_siso_layer_of_every_iteration(batch):
    mix, ref = batch
    model = tiny(simo_layers=1, siso_layers=3, iterations=2)
    out = model.training_outputs(mix, ref, LAYERWISE)
    assert isinstance(out, IterativeOutputs)
    assert [e.label for e in out.estimates] == [f"it{i}/siso{k}" for i in (1, 2) for k in (1, 2, 3)]
    torch.testing.assert_close(out.final, out.estimates[-1].estimate)
    terms = assemble_terms(model.training_outputs(mix, ref, LAYERWISE), LAYERWISE)
    assert len(terms) == 6 and all(w == pytest.approx(1 / 6) for _, w, _ in terms)
    # without layerwise only each iteration's final layer is decoded
    plain = tiny(simo_layers=1, siso_layers=3, iterations=2).training_outputs(mix, ref)
    assert [e.label for e in plain.estimates] == ["it1/siso3", "it2/siso3"]


def test_no_siso_layers_means_simo_outputs_are_the_outputs(batch):
    mix, ref = batch
    model = tiny(simo_layers=2, siso_layers=0, iterations=1)
    out = model.training_outputs(mix, ref, LAYERWISE)
    assert [e.label for e in out.estimates] == ["it1/simo"]
    assert len(model.siso) == 0


def test_oracle_pass_only_in_training(batch):
    mix, ref = batch
    model = tiny(simo_layers=1, siso_layers=1, iterations=1)
    labels = [e.label for e in model.train().training_outputs(mix, ref, ORACLE).estimates]
    assert labels == ["it1/siso1", "oracle/siso1"]
    terms = assemble_terms(model.training_outputs(mix, ref, ORACLE), ORACLE)
    assert [(w, label) for _, w, label in terms] == [(1.0, "it1/siso1"), (1.0, "oracle/siso1")]
    assert [e.label for e in model.eval().training_outputs(mix, ref, ORACLE).estimates] == ["it1/siso1"]
    # iteration-specific SIMO: the oracle pass uses iteration 2's module (the one that sees a bias)
    specific = tiny(simo_layers=1, siso_layers=1, iterations=3, share_simo=False)
    oracle = [e for e in specific.training_outputs(mix, ref, ORACLE).estimates if e.oracle]
    assert [e.iteration for e in oracle] == [2]


def _est(iteration, layer, oracle=False):
    return IterationEstimate(torch.full((1, 2, 4), float(10 * iteration + layer)), iteration, layer, oracle)


def test_objective_assembly_selects_and_weights():
    ests = [_est(i, k) for i in (1, 2, 3) for k in (1, 2)] + [_est(2, 1, True), _est(2, 2, True)]
    everything = assemble_terms(ests, ObjectiveConfig(layers="all"))
    assert [w for _, w, _ in everything] == pytest.approx([1 / 6] * 6 + [1 / 12] * 2)
    last_layers = assemble_terms(ests, ObjectiveConfig(layers="last"))
    assert [label for _, _, label in last_layers] == ["it1/siso2", "it2/siso2", "it3/siso2", "oracle/siso2"]
    last_only = assemble_terms(ests, ObjectiveConfig(iterations="last", layers="last", oracle_weight=0.0))
    assert [(w, label) for _, w, label in last_only] == [(1.0, "it3/siso2")]
    summed = assemble_terms(ests, ObjectiveConfig(layers="all", normalize=False, oracle_weight=2.0))
    assert [w for _, w, _ in summed] == [1.0] * 6 + [1.0, 1.0]
    with pytest.raises(ValueError, match="iterations"):
        ObjectiveConfig(iterations="first")


def test_weighted_pit_loss_is_the_weighted_sum():
    ref = torch.randn(3, 2, 50)
    a = ref.flip(1) + 0.1 * torch.randn_like(ref)
    b = ref + 0.3 * torch.randn_like(ref)
    total, parts = weighted_pit_loss([(a, 0.25, "a"), (b, 0.75, "b")], ref)
    torch.testing.assert_close(total, 0.25 * parts["a"] + 0.75 * parts["b"])
    # PIT undid the swap in `a`: its loss is the aligned one
    aligned = pit_from_pairwise(pairwise_neg_snr(a.flip(1), ref))[0]
    torch.testing.assert_close(parts["a"], aligned)


def test_wrong_shapes_raise(batch):
    mix, ref = batch
    model = tiny(simo_layers=1, siso_layers=0)
    with pytest.raises(ValueError, match=r"\(2, 3, 1200\)"):
        model(torch.randn(2, 3, 1200))
    with pytest.raises(ValueError, match=r"\(2, 3, 1200\)"):
        model.training_outputs(mix, torch.randn(2, 3, 1200))
    with pytest.raises(ValueError, match="iterations"):
        model(mix, iterations=0)
    with pytest.raises(ValueError, match="domain"):
        build("iterative", domain="wavelet")


def test_config_round_trips_through_a_checkpoint_dict():
    model = tiny("freq", simo_layers=1, siso_layers=2, iterations=3, share_simo=False)
    again = build_from_config("iterative", to_dict(model.config))
    assert again.config == model.config
    again.load_state_dict(model.state_dict())


def test_every_table_row_has_a_preset_in_each_domain_and_scale():
    for table, rows in TABLES.items():
        for row in rows:
            for domain in row.domains:
                for scale in ("paper", "tiny"):
                    preset = get_preset(preset_name(row, domain, scale))
                    assert f"iterative-table{table}" in preset.tags
                    assert preset.paper["si_sdr"] == row.paper(domain)
                    assert preset.config == row_config(row, domain, scale)
    assert len(list_presets("iterative-table1")) == 9 * 2 * 2
    assert len(list_presets("iterative-table3")) == 2 * 2  # frequency domain only
    oracle = get_preset("iter-freq-simo1-siso2-it2-detach-oracle")
    assert oracle.objective["oracle_bias"] and oracle.paper["si_sdr_by_inference_iterations"][3] == TABLE4_PAPER[2][3][2]
    paper = get_preset("iter-time-simo1-siso2-it3-detach").config
    assert (paper.sample_rate, paper.resolved("window_ms"), paper.resolved("num_filters")) == (16000, 2.0, 128)
    freq = get_preset("iter-freq-simo3-siso0-it1").config
    assert (freq.resolved("window_ms"), freq.resolved("segment_size"), freq.dprnn.bottleneck) == (32.0, 24, 64)


def _sources(n, sr=SR, seed=0):
    """Two harmonic 'voices' with different pitches and syllable-rate envelopes."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / sr
    out = []
    for f0, rate in ((140.0, 3.0), (230.0, 5.0)):
        f0 = f0 * (1 + 0.1 * torch.rand(1, generator=g))
        wave = sum(torch.sin(2 * torch.pi * h * f0 * t + torch.rand(1, generator=g) * 6) / h for h in range(1, 6))
        out.append(wave * (0.6 + 0.4 * torch.sin(2 * torch.pi * rate * t)))
    return torch.stack(out)


@pytest.mark.slow
def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    ref = torch.stack([_sources(2000, seed=s) for s in (1, 2)])  # (2, 2, 2000): 0.25 s
    mix = ref.sum(1)
    model = build("iterative", domain="time", sample_rate=SR, encoder={"num_filters": 32},
                  dprnn={"bottleneck": 16, "hidden": 16, "segment_size": 50},
                  simo_layers=1, siso_layers=1, iterations=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def score():
        with torch.no_grad():
            est = model.eval()(mix)
        model.train()
        perm = pit_from_pairwise(pairwise_neg_snr(est, ref))[1]
        return si_sdr(apply_permutation(est, perm), ref).mean().item()

    before = score()
    for step in range(150):
        opt.zero_grad()
        # the training engine's path: the model's terms, weighted PIT negative SNR
        loss, _ = weighted_pit_loss(assemble_terms(model.training_outputs(mix, ref), ObjectiveConfig()), ref)
        loss.mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if step % 5 == 4 and score() - before >= 10.0:
            break
    after = score()
    assert after - before >= 10.0, (before, after)
