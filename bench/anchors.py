"""Anchors: what a user would run instead of us, configured at our presets' sizes, run in the anchor venv.

Each :class:`AnchorSpec` names the preset it is paired with (ratios are ours / theirs on that row) and
the anchor's constructor arguments, derived from the preset's config so the two stay the same size
when a preset changes. What differs besides the code is stated in ``note`` and printed in the table.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

from bench.anchor_child import child_source
from speechsep.bench.memory import MemoryProbeError, peak_rss
from speechsep.blocks.framing import ms_to_samples
from speechsep.registry import get_preset

__all__ = ["ANCHORED", "AnchorSpec", "AnchorFailed", "anchor_specs", "run_anchor", "anchor_peak_rss"]


class AnchorFailed(RuntimeError):
    """The anchor child process failed; the message holds the end of its stderr."""


@dataclasses.dataclass(frozen=True)
class AnchorSpec:
    name: str
    #: the anchor child's job name (``asteroid-dprnn``, ``espnet-skim``, ``espnet-tfgridnet``)
    anchor: str
    #: our preset on the same row
    pairs_with: str
    kwargs: dict[str, Any]
    note: str = ""
    #: the anchor has a streaming interface of its own (ESPnet SkiM: one encoder frame per call)
    streams: bool = False


def _asteroid_dprnn_for_causal(preset: str) -> AnchorSpec:
    c = get_preset(preset).config
    return AnchorSpec(
        f"asteroid DPRNNTasNet ({preset} size)", "asteroid-dprnn", preset,
        dict(n_src=c.num_sources, n_filters=c.codec.num_filters, kernel_size=c.codec.window, stride=c.codec.hop,
             bn_chan=c.bottleneck, hid_size=c.hidden, chunk_size=c.segment, hop_size=c.segment // 2,
             n_repeats=c.num_blocks, bidirectional=False, norm_type="cLN", mask_act="relu",
             sample_rate=c.sample_rate),
        "one-way inter-chunk LSTM, cLN; its intra-chunk LSTM stays bidirectional over 50 % overlapping "
        "chunks (reads up to a chunk ahead), ours is one-way",
    )


def _asteroid_dprnn_for_iterative(preset: str) -> AnchorSpec:
    c = get_preset(preset).config
    if c.domain != "time":
        raise ValueError(f"{preset}: the asteroid DPRNNTasNet anchor pairs with a time-domain iterative preset")
    window = ms_to_samples(c.resolved("window_ms"), c.sample_rate)
    hop = ms_to_samples(c.resolved("hop_ms"), c.sample_rate)
    segment = c.resolved("segment_size")
    return AnchorSpec(
        f"asteroid DPRNNTasNet ({preset} size)", "asteroid-dprnn", preset,
        dict(n_src=c.num_sources, n_filters=c.resolved("num_filters"), kernel_size=window, stride=hop,
             bn_chan=c.dprnn.bottleneck, hid_size=c.dprnn.hidden, chunk_size=segment, hop_size=segment // 2,
             n_repeats=c.simo_layers + c.siso_layers, bidirectional=True, norm_type="gLN", mask_act="relu",
             sample_rate=c.sample_rate),
        f"{c.simo_layers + c.siso_layers} DPRNN blocks on one stream; ours encodes mixture + previous outputs",
    )


def _espnet_skim(preset: str) -> AnchorSpec:
    c = get_preset(preset).config
    return AnchorSpec(
        f"ESPnet SkiM ({preset} size)", "espnet-skim", preset,
        {"sample_rate": c.sample_rate,
         "encoder": dict(channel=c.codec.num_filters, kernel_size=c.codec.window, stride=c.codec.hop),
         "separator": dict(causal=True, num_spk=c.num_sources, nonlinear="relu", layer=c.num_layers,
                           unit=c.hidden, segment_size=c.segment, dropout=0.0, mem_type="hc",
                           seg_overlap=False)},
        "ESPnet ConvEncoder + SkiMSeparator(causal) + ConvDecoder",
        streams=True,
    )


def _espnet_tfgridnet(preset: str) -> AnchorSpec:
    c = get_preset(preset).config
    bins = c.stft.window // 2 + 1 if c.stft.n_fft is None else c.stft.n_fft // 2 + 1
    return AnchorSpec(
        f"ESPnet TF-GridNet ({preset} size)", "espnet-tfgridnet", preset,
        dict(sample_rate=c.sample_rate, n_srcs=c.num_sources, n_fft=c.stft.n_fft or c.stft.window,
             stride=c.stft.hop, window="hann", n_layers=c.num_blocks, lstm_hidden_units=c.hidden,
             attn_n_head=c.heads, attn_approx_qk_dim=c.qk_channels * bins, emb_dim=c.channels,
             emb_ks=c.kernel, emb_hs=1),
        "ESPnet's TF-GridNet is the offline (non-causal) model: bidirectional temporal LSTM, "
        "full attention, utterance-level normalisation",
    )


#: our preset -> how to build its anchor(s)
_PAIRINGS = {
    "dprnn-causal": (_asteroid_dprnn_for_causal,),
    "iter-time-simo3-siso0-it1": (_asteroid_dprnn_for_iterative,),
    "skim": (_espnet_skim,),
    "tfgridnet-causal": (_espnet_tfgridnet,),
}
#: our presets that have an anchor
ANCHORED = tuple(_PAIRINGS)


def anchor_specs(presets: list[str]) -> list[AnchorSpec]:
    """The anchors paired with any of ``presets``, in ``presets`` order."""
    return [make(name) for name in presets for make in _PAIRINGS.get(name, ())]


def run_anchor(python: Path, spec: AnchorSpec, measures: list[str], *, timeout: float, threads: int,
               **job: Any) -> dict[str, Any]:
    """Run ``measures`` on ``spec`` in the anchor venv; the child prints one JSON line."""
    payload = dict(job, anchor=spec.anchor, kwargs=spec.kwargs, measures=measures, threads=threads)
    try:
        proc = subprocess.run([str(python), "-c", child_source(), json.dumps(payload)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise AnchorFailed(f"{spec.name}: {'+'.join(measures)} ran past {timeout:.0f} s") from err
    if proc.returncode != 0:
        raise AnchorFailed(f"{spec.name}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "macs_per_second" in result and result["macs_per_second"] is not None:
        result["macs_per_second"] = float(result["macs_per_second"])
    return result



def anchor_peak_rss(python: Path, spec: AnchorSpec, seconds: float, *, timeout: float, threads: int) -> int:
    """Peak RSS (bytes) of a fresh anchor process that builds the model and runs one forward on ``seconds``."""
    payload = dict(anchor=spec.anchor, kwargs=spec.kwargs, measures=["memory"], threads=threads, seconds=seconds)
    try:
        return peak_rss(child_source(), python=python, args=[json.dumps(payload)], timeout=timeout)
    except MemoryProbeError as err:
        raise AnchorFailed(f"{spec.name}: {err}") from err
