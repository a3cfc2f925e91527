"""Presets for every row of the iterative paper's Tables 1-4, both domains, paper and tiny scale.

The rows are data (:data:`TABLES`); the experiment runner (``speechsep.experiments.iterative_grid``)
reads the same rows to lay out its tables, so a table and its presets cannot drift apart.

Names: ``iter-{time|freq}-simo{K1}-siso{K2}-it{N}[-detach|-nodetach][-layerwise][-iss][-oracle][-tiny]``
(``iss``: iteration-specific SIMO modules). Paper scale is Sec. 3.2 at 16 kHz; ``-tiny`` runs at
8 kHz with 32-wide encoder/bottleneck/LSTMs, the paper's segment sizes, the paper's STFT, and a
4 ms / 2 ms learnable encoder (instead of 2 ms / 1 ms) so the grid trains on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses

from speechsep.models.iterative import DPRNNConfig, EncoderConfig, IterativeConfig
from speechsep.registry import register_preset

__all__ = [
    "TableRow",
    "TABLES",
    "TABLE4_PAPER",
    "TABLE4_TRAIN_ITERATIONS",
    "preset_name",
    "row_config",
    "row_objective",
    "SCALES",
]

SCALES = ("paper", "tiny")
DOMAINS = ("time", "freq")


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One trained configuration of a table, with the SI-SDR (dB) the paper reports for it.

    ``layerwise`` and ``oracle_bias`` are the row's training objective (:func:`row_objective`), the
    other fields its model (:func:`row_config`).
    """

    simo: int
    siso: int
    iterations: int
    #: ``None`` for one iteration (the paper's "-")
    detach: bool | None = None
    layerwise: bool = False
    share_simo: bool = True
    oracle_bias: bool = False
    paper_time: float | None = None
    paper_freq: float | None = None

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(d for d in DOMAINS if self.paper(d) is not None)

    def paper(self, domain: str) -> float | None:
        return self.paper_time if domain == "time" else self.paper_freq

    @property
    def depth(self) -> int:
        """Effective network depth (Table 1): DPRNN blocks run end to end."""
        return (self.simo + self.siso) * self.iterations


def preset_name(row: TableRow, domain: str, scale: str = "paper") -> str:
    parts = [f"iter-{domain}-simo{row.simo}-siso{row.siso}-it{row.iterations}"]
    if row.iterations > 1:
        parts.append("detach" if row.detach else "nodetach")
    if row.layerwise:
        parts.append("layerwise")
    if not row.share_simo:
        parts.append("iss")
    if row.oracle_bias:
        parts.append("oracle")
    if scale == "tiny":
        parts.append("tiny")
    elif scale != "paper":
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    return "-".join(parts)


def row_config(row: TableRow, domain: str, scale: str = "paper") -> IterativeConfig:
    """The model config of ``row`` in ``domain`` at ``scale``."""
    if scale == "paper":
        sample_rate, encoder, dprnn = 16000, EncoderConfig(), DPRNNConfig()
    elif scale == "tiny":
        sample_rate = 8000
        # the time domain's 1 ms hop makes 1,000 frames a second, and the DPRNN's LSTMs are
        # latency-bound at these widths: a 4 ms window / 2 ms hop halves the CPU time per step
        encoder = EncoderConfig(window_ms=4.0, hop_ms=2.0, num_filters=32) if domain == "time" else EncoderConfig()
        dprnn = DPRNNConfig(bottleneck=32, hidden=32)
    else:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    return IterativeConfig(
        sample_rate=sample_rate,
        num_sources=2,
        domain=domain,
        encoder=encoder,
        dprnn=dprnn,
        simo_layers=row.simo,
        siso_layers=row.siso,
        iterations=row.iterations,
        # with one iteration nothing is fed back, so detach has no effect; True keeps names unique
        detach=True if row.detach is None else row.detach,
        share_simo=row.share_simo,
    )


def row_objective(row: TableRow) -> dict[str, object]:
    """The training objective of ``row``: fields of the training config's ``loss:`` (a preset's
    ``objective``). Every row puts a loss on every iteration's output, normalised (Sec. 2.1); Table 2
    adds every SISO layer (``layers: all``), Table 4's third column the oracle-bias pass."""
    return {"iterations": "all", "layers": "all" if row.layerwise else "last", "normalize": True,
            "oracle_bias": row.oracle_bias}


#: Tables 1-3 of the paper, rows in its order (SI-SDR in dB, time and frequency domain)
TABLES: dict[int, list[TableRow]] = {
    1: [
        TableRow(3, 0, 1, None, paper_time=8.7, paper_freq=8.4),
        TableRow(2, 1, 1, None, paper_time=9.0, paper_freq=8.7),
        TableRow(1, 2, 1, None, paper_time=9.2, paper_freq=9.1),
        TableRow(1, 2, 2, True, paper_time=9.8, paper_freq=9.6),
        TableRow(1, 2, 2, False, paper_time=9.7, paper_freq=9.5),
        TableRow(2, 4, 1, None, paper_time=10.0, paper_freq=9.5),
        TableRow(1, 2, 3, True, paper_time=10.1, paper_freq=9.8),
        TableRow(1, 2, 3, False, paper_time=9.6, paper_freq=9.5),
        TableRow(3, 6, 1, None, paper_time=10.2, paper_freq=9.4),
    ],
    # layer-wise objective, output detach, shared parameters
    2: [
        TableRow(1, 2, 3, True, layerwise=True, paper_time=9.9, paper_freq=9.4),
        TableRow(3, 6, 1, None, layerwise=True, paper_time=10.1, paper_freq=9.2),
    ],
    # iteration-specific SIMO, frequency domain only (detach as in the shared rows it compares with)
    3: [
        TableRow(1, 2, 2, True, share_simo=False, paper_freq=9.6),
        TableRow(1, 2, 3, True, share_simo=False, paper_freq=9.7),
    ],
}

#: Table 4: 1 SIMO + 2 SISO layers trained with 1, 2, 3 iterations (detached, as Table 1's matching
#: rows), evaluated with 1-4 inference iterations. Columns: time, freq, freq trained with oracle bias.
TABLE4_TRAIN_ITERATIONS = (1, 2, 3)
TABLE4_PAPER: dict[int, dict[int, tuple[float, float, float]]] = {
    1: {1: (9.2, 9.1, 9.1), 2: (5.4, 3.4, 8.9), 3: (6.2, 4.5, 8.6), 4: (5.5, 3.7, 8.3)},
    2: {1: (9.4, 9.2, 9.1), 2: (9.8, 9.6, 9.7), 3: (9.7, 9.6, 9.7), 4: (9.7, 9.6, 9.6)},
    3: {1: (9.2, 9.2, 9.2), 2: (9.4, 9.7, 9.8), 3: (10.1, 9.8, 9.8), 4: (10.1, 9.8, 9.8)},
}


def table4_row(train_iterations: int, oracle_bias: bool) -> TableRow:
    """The trained model behind a Table 4 row (the plain ones are Table 1's detached rows)."""
    p = TABLE4_PAPER[train_iterations][train_iterations]
    return TableRow(
        1, 2, train_iterations, True if train_iterations > 1 else None, oracle_bias=oracle_bias,
        paper_time=None if oracle_bias else p[0], paper_freq=p[2] if oracle_bias else p[1],
    )


def _register_all() -> None:
    rows: dict[str, tuple[TableRow, str, set[str]]] = {}

    def add(row: TableRow, domain: str, table: int) -> None:
        for scale in SCALES:
            name = preset_name(row, domain, scale)
            if name in rows:
                rows[name][2].add(f"iterative-table{table}")
            else:
                rows[name] = (row, scale, {f"iterative-table{table}"})

    for table, table_rows in TABLES.items():
        for row in table_rows:
            for domain in row.domains:
                add(row, domain, table)
    for n in TABLE4_TRAIN_ITERATIONS:
        for domain in DOMAINS:
            add(table4_row(n, oracle_bias=False), domain, 4)
        add(table4_row(n, oracle_bias=True), "freq", 4)

    for name, (row, scale, tags) in rows.items():
        domain = "time" if name.startswith("iter-time") else "freq"
        paper = {"si_sdr": row.paper(domain), "si_sdr_time": row.paper_time, "si_sdr_freq": row.paper_freq}
        if row.iterations in TABLE4_PAPER and row.simo == 1 and row.siso == 2 and row.detach is not False \
                and not row.layerwise and row.share_simo:
            column = 2 if row.oracle_bias else (0 if domain == "time" else 1)
            paper["si_sdr_by_inference_iterations"] = {
                k: v[column] for k, v in TABLE4_PAPER[row.iterations].items()
            }
        what = (f"{row.simo} SIMO + {row.siso} SISO DPRNN blocks, {row.iterations} iteration(s)"
                f"{', detached' if row.detach else ''}{', layer-wise loss' if row.layerwise else ''}"
                f"{', iteration-specific SIMO' if not row.share_simo else ''}"
                f"{', oracle-bias aux loss' if row.oracle_bias else ''}; {domain} domain, {scale} scale")
        register_preset(
            name,
            "iterative",
            row_config(row, domain, scale),
            what,
            paper={k: v for k, v in paper.items() if v is not None},
            tags=tuple(sorted(tags)) + ("tiny" if scale == "tiny" else "paper-scale",),
            objective=row_objective(row),
        )


_register_all()
