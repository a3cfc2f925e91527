import pytest
import torch

from speechsep.train.config import OPTIMIZERS, OptimConfig
from speechsep.train.optim import OPTIMIZER_CLASSES, make_optimizer


def _one_step(config: OptimConfig, grad: float) -> float:
    """The weight after one step from 1.0 with the given gradient."""
    weight = torch.nn.Parameter(torch.ones(1))
    optimizer = make_optimizer([weight], config)
    weight.grad = torch.full((1,), grad)
    optimizer.step()
    return weight.item()


def test_adam_is_the_default_and_adamw_is_torchs_own():
    weight = [torch.nn.Parameter(torch.ones(1))]
    assert type(make_optimizer(weight, OptimConfig())) is torch.optim.Adam
    assert type(make_optimizer(weight, OptimConfig(name="adamw"))) is torch.optim.AdamW
    assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)  # every name the config accepts builds an optimiser


def test_adamw_decay_is_decoupled_from_the_gradient():
    # AdamW: w <- w (1 - lr wd) - lr * m / (sqrt(v) + eps); with a zero gradient only the decay acts.
    assert _one_step(OptimConfig(name="adamw", lr=0.1, weight_decay=0.5), grad=0.0) == pytest.approx(0.95)
    # Adam's L2 adds wd * w to the gradient, and its first step moves a weight by lr whatever the
    # gradient's scale: the same 0.5 penalty moves it by 0.1, not 0.05.
    assert _one_step(OptimConfig(name="adam", lr=0.1, weight_decay=0.5), grad=0.0) == pytest.approx(0.9)
    # Without decay AdamW follows the gradient alone (first step: lr * sign(grad)), and a zero one leaves the weight.
    assert _one_step(OptimConfig(name="adamw", lr=0.1), grad=3.0) == pytest.approx(0.9)
    assert _one_step(OptimConfig(name="adamw", lr=0.1), grad=0.0) == pytest.approx(1.0)


@pytest.mark.parametrize("changes, words", [
    ({"name": "sgd"}, "optim.name"),
    ({"weight_decay": -0.1}, "optim.weight_decay"),
    ({"weight_decay": float("nan")}, "optim.weight_decay"),
])
def test_bad_optimiser_settings_are_named(changes, words):
    with pytest.raises(ValueError, match=words):
        OptimConfig(**changes)
