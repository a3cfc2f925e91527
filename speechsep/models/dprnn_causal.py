"""Causal DPRNN-TasNet (Luo, Chen and Yoshioka, ICASSP 2020), the first baseline of TFACM's Table I.

Axis legend:
    B  batch           C  sources            T  samples
    N  encoder filters  D  bottleneck channels  K  encoder frames
    J  segments        S  frames per segment (2 P, 50 % overlap)   P  segment hop
    H  LSTM hidden units

Causality. The published DPRNN keeps its intra-segment LSTM bidirectional even in the causal
setting, so it reads up to a whole segment ahead (docs/design.md#baseline-sizes). Here both LSTMs run one way, norms
are per frame, and segments are cut without front padding: segment ``j`` holds frames
``[j P, j P + S)``. Output frame ``k`` of segment ``j`` then depends only on frames ``<= k`` of
segments ``<= j``, so the separator adds no latency; the model's only look-ahead is the encoder
window (``latency``).

The separator is :class:`speechsep.blocks.dprnn.CausalDualPath` (its docstring describes the
streaming step) inside the skeleton of :mod:`speechsep.models.time_domain`; the paper's numbers
are in :mod:`speechsep.models.paper_tables`.
"""

from __future__ import annotations

import dataclasses

from speechsep.blocks.dprnn import CausalDualPath, DualPathState, ResidualLSTM
from speechsep.models.paper_tables import TFACM_TABLE1
from speechsep.models.time_domain import (
    ConvCodecConfig,
    TimeDomainConfig,
    TimeDomainMaskingModel,
    TimeDomainState,
)
from speechsep.registry import register_model, register_preset

# The separator, the skeleton and the table lived here once; these names stay importable from here.
__all__ = ["DPRNNCausalConfig", "DPRNNCausal", "DualPathState", "ResidualLSTM", "CausalDualPath",
           "TimeDomainMaskingModel", "TimeDomainConfig", "TimeDomainState", "ConvCodecConfig", "TABLE1"]

#: TFACM Table I (see :mod:`speechsep.models.paper_tables`)
TABLE1 = TFACM_TABLE1


@dataclasses.dataclass
class DPRNNCausalConfig(TimeDomainConfig):
    """Causal DPRNN-TasNet. Defaults: the Table I size (see the preset)."""

    #: LSTM hidden units of both paths (one direction); 168 lands on Table I's 1.3 M / 11.2 G
    #: with one-way intra LSTMs (a size of 128 assumed a two-way intra LSTM: docs/design.md#baseline-sizes)
    hidden: int = 168
    #: frames per segment S (hop S / 2)
    segment: int = 100
    num_blocks: int = 4


@register_model
class DPRNNCausal(TimeDomainMaskingModel):
    family = "dprnn-causal"
    config_class = DPRNNCausalConfig

    def __init__(self, config: DPRNNCausalConfig):
        super().__init__(config)
        self.separator = CausalDualPath(config.bottleneck, config.hidden, config.segment, config.num_blocks)


register_preset(
    "dprnn-causal", DPRNNCausal.family, DPRNNCausalConfig(),
    "Causal DPRNN-TasNet, TFACM Table I: encoder 64 x 4 samples / stride 2, bottleneck 64, 4 blocks, "
    "segments of 100 frames with 50 % overlap, one-way intra and inter LSTMs of 168 units",
    paper=TFACM_TABLE1["dprnn-causal"], tags=("tfacm-table1", "paper-scale"),
)
register_preset(
    "dprnn-causal-tiny", DPRNNCausal.family,
    DPRNNCausalConfig(codec=ConvCodecConfig(8, 8, 4), bottleneck=8, hidden=8, segment=20, num_blocks=2),
    "Causal DPRNN at test size (CPU tests)", tags=("tiny",),
)
