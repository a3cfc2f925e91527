"""Training objectives: SNR / SI-SDR in element-wise and pairwise form, and permutation invariant training.

Losses take ``(estimate, reference)`` and return one value per example; callers reduce. The
deep-clustering term of an embedding head (Chimera++) is :mod:`speechsep.losses.deep_clustering`.
"""

from speechsep.losses import pit as _pit
from speechsep.losses import snr as _snr
from speechsep.losses.pit import *  # noqa: F403
from speechsep.losses.snr import *  # noqa: F403

__all__ = [*_snr.__all__, *_pit.__all__, "PAIRWISE_LOSSES"]

#: Pairwise criteria by the names configs use (``loss.name`` in a training recipe).
PAIRWISE_LOSSES = {"neg_snr": _snr.pairwise_neg_snr, "neg_si_sdr": _snr.pairwise_neg_si_sdr}
