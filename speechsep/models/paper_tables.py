"""Numbers the papers report, keyed by the preset that reproduces each row.

Kept apart from the models so that a model file holds architecture only, and so that the benchmark
reports and the preset table read one copy. Units: SDRi and SI-SNRi in dB, ``params_m`` millions of
parameters, ``macs_g`` billions of multiply-accumulates per second of 8 kHz audio, ``gpu_time_ms``
the paper's GPU time.
"""

from __future__ import annotations

__all__ = ["TFACM_TABLE1", "TFACM_TABLE2"]

#: TFACM, Table I: the four causal baselines and TFACM's two sizes on WHAM!, WHAMR! and Libri2Mix
TFACM_TABLE1: dict[str, dict[str, float]] = {
    "dprnn-causal": {"wham_sdri": 11.0, "wham_si_snri": 10.6, "whamr_sdri": 7.8, "whamr_si_snri": 7.2,
                     "librimix_sdri": 9.6, "librimix_si_snri": 9.0, "params_m": 1.3, "macs_g": 11.2,
                     "gpu_time_ms": 33.42},
    "skim": {"wham_sdri": 10.8, "wham_si_snri": 10.4, "whamr_sdri": 7.7, "whamr_si_snri": 7.0,
             "librimix_sdri": 9.9, "librimix_si_snri": 9.2, "params_m": 3.6, "macs_g": 11.1, "gpu_time_ms": 39.01},
    "resepformer": {"wham_sdri": 11.7, "wham_si_snri": 11.3, "whamr_sdri": 7.6, "whamr_si_snri": 6.9,
                    "librimix_sdri": 4.1, "librimix_si_snri": 3.3, "params_m": 8.0, "macs_g": 6.3,
                    "gpu_time_ms": 47.46},
    "tfgridnet-causal": {"wham_sdri": 13.8, "wham_si_snri": 13.5, "whamr_sdri": 9.9, "whamr_si_snri": 9.2,
                         "librimix_sdri": 11.5, "librimix_si_snri": 10.8, "params_m": 11.4, "macs_g": 179.2,
                         "gpu_time_ms": 84.59},
    "tfacm-large": {"params_m": 1.0, "macs_g": 36.5, "wham_sdri": 13.3, "wham_si_snri": 13.0, "whamr_sdri": 9.6,
                    "whamr_si_snri": 8.9, "librimix_sdri": 11.7, "librimix_si_snri": 11.0, "gpu_time_ms": 57.00},
    "tfacm-small": {"params_m": 0.5, "macs_g": 19.4, "wham_sdri": 12.0, "wham_si_snri": 10.9, "whamr_sdri": 9.6,
                    "whamr_si_snri": 9.0, "librimix_sdri": 10.2, "librimix_si_snri": 9.3, "gpu_time_ms": 45.17},
}

#: TFACM, Table II: ablations of TFACM (Large) on WHAM!
TFACM_TABLE2: dict[str, dict[str, float]] = {
    "tfacm-large-no-cm": {"wham_sdri": 11.8, "wham_si_snri": 11.4},
    "tfacm-large-no-car": {"wham_sdri": 11.8, "wham_si_snri": 11.5},
}
