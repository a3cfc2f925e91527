"""The optimiser a run trains with, from ``optim`` in its config (:class:`OptimConfig`).

Both papers train with Adam (iterative paper Sec. 3.2, TFACM Sec. IV), the default. ``adamw`` is Adam
with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019):
the weights shrink by ``lr x weight_decay`` each step whatever their gradient scale, the form of
weight decay that regularises under Adam's per-weight step sizes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from speechsep.train.config import OptimConfig

__all__ = ["OPTIMIZER_CLASSES", "make_optimizer"]

# One class per name that ``OptimConfig`` accepts (``config.OPTIMIZERS``, checked there; a test keeps the two equal).
OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def make_optimizer(params: Iterable[torch.nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser ``config.name`` names over ``params``, at ``config.lr`` and ``config.weight_decay``."""
    return OPTIMIZER_CLASSES[config.name](params, lr=config.lr, weight_decay=config.weight_decay)
