"""speechsep.threads: a streaming step on one thread, its marked heavy kernels on several."""

import pytest
import torch

from speechsep.inference.streaming import stream_through_model
from speechsep.registry import build
from speechsep.threads import heavy_kernel, passive_wait_warning, split_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_split_runs_on_one_thread_and_heavy_kernels_on_more(restore_threads):
    torch.set_num_threads(3)
    with heavy_kernel:  # outside a split: no effect
        assert torch.get_num_threads() == 3
    with split_threads(2):
        assert torch.get_num_threads() == 1
        with heavy_kernel:
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 3


def test_split_restores_after_an_error_and_rejects_zero(restore_threads):
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"), split_threads(2):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with heavy_kernel:
        assert torch.get_num_threads() == 2  # the split is off again
    with pytest.raises(ValueError, match="at least 1 thread"), split_threads(0):
        pass


def test_tfacm_step_gives_its_lstms_and_attention_the_threads_and_nothing_else(restore_threads):
    torch.manual_seed(0)
    model = build("tfacm-tiny").eval()
    seen: dict[str, set[int]] = {"lstm": set(), "conv": set(), "bmm": set()}
    for module in model.modules():
        if isinstance(module, torch.nn.LSTM):
            module.register_forward_pre_hook(lambda *_: seen["lstm"].add(torch.get_num_threads()))
        elif isinstance(module, torch.nn.Conv2d):
            module.register_forward_pre_hook(lambda *_: seen["conv"].add(torch.get_num_threads()))
    attention = type(model.separator.blocks[0].car.attention)
    attend = attention._attend

    def spy(self, *args, **kwargs):
        with heavy_kernel:  # nested inside the method's own mark: the count seen is the method's
            seen["bmm"].add(torch.get_num_threads())
        return attend(self, *args, **kwargs)

    x = 0.1 * torch.randn(1, 2000)
    ref, _ = stream_through_model(model, x, 128, align=False)
    for kinds in seen.values():
        kinds.clear()  # the reference ran on torch's own thread count
    attention._attend = spy
    try:
        out, stats = stream_through_model(model, x, 128, align=False, threads=2)
    finally:
        attention._attend = attend
    assert seen == {"lstm": {2}, "conv": {1}, "bmm": {2}}
    assert stats.threads == 2 and stats.split_threads
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_passive_wait_policy_is_reported_only_when_it_hurts(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert "OMP_WAIT_POLICY=PASSIVE" in passive_wait_warning(2)
    assert passive_wait_warning(1) is None
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert passive_wait_warning(2) is None
