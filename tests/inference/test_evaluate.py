import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from speechsep.checkpoint import save_checkpoint
from speechsep.cli import main
from speechsep.inference.evaluate import evaluate, format_summary, summary_path, write_results

SR = 8000
NOISE = 0.01

# The constructed sources are exactly orthogonal, so bss_eval's SIR is infinite (log10 of 0 inside it).
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in log10:RuntimeWarning")


def _bin_tones(freqs, rng, n=SR):
    """Sinusoids at whole-Hz frequencies over exactly 1 s: each sits on one DFT bin, so tones at
    different frequencies are exactly orthogonal and zero-mean."""
    t = np.arange(n) / SR
    return sum(rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)


def _dataset(count=3, seed=0):
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(count):
        low = _bin_tones(rng.choice(np.arange(20, 250), 8, replace=False), rng)
        high = _bin_tones(rng.choice(np.arange(400, 800), 8, replace=False), rng)
        refs = np.stack([low, high]).astype(np.float32)
        items.append((torch.from_numpy(refs.sum(0)), torch.from_numpy(refs)))
    return items


def _closed_form(refs):
    """SI-SDR(i) of est_c = ref_c + NOISE * unit tone (T/2 energy), all components orthogonal."""
    energy = (refs.double() ** 2).sum(-1)  # (C,)
    si_sdr = 10 * torch.log10(energy / (NOISE**2 * SR / 2))
    baseline = 10 * torch.log10(energy / energy.flip(0))  # the mixture's error is the other source
    return float(si_sdr.mean()), float((si_sdr - baseline).mean())


@pytest.mark.slow  # about 6 s on a loaded 2-core machine: bss_eval solves a 1,024-tap system per source
def test_known_noise_gives_closed_form_si_sdri(band_model):
    data = _dataset(2)
    model = band_model(cutoff_hz=300.0, noise=NOISE, noise_hz=1000.0)
    result = evaluate(model, data, pesq_stoi=False)
    assert result.utterances == 2 and set(result.summary) == {"si_sdr", "si_sdri", "sdr", "sdri"}
    for row, (_, refs) in zip(result.rows, data, strict=True):
        want_si_sdr, want_si_sdri = _closed_form(refs)
        assert row["si_sdr"] == pytest.approx(want_si_sdr, abs=1e-3)
        assert row["si_sdri"] == pytest.approx(want_si_sdri, abs=1e-3)
        # bss_eval's 512-tap filter may absorb a little of the tone: SDR is at least SI-SDR, barely more
        assert want_si_sdr - 1e-3 <= row["sdr"] <= want_si_sdr + 0.5
    s = result.summary["si_sdri"]
    values = [r["si_sdri"] for r in result.rows]
    assert s["mean"] == pytest.approx(np.mean(values)) and s["n"] == 2
    assert s["ci95_low"] < s["mean"] < s["ci95_high"]
    assert result.utterances_per_second > 0 and result.audio_seconds == pytest.approx(2.0)


def test_a_fixed_mask_improves_nothing(band_model):
    """Scaled copies of the mixture: SI-SDR and SDR are scale-invariant, so both improvements are 0."""
    result = evaluate(band_model(mode="gain", gain=0.7), _dataset(1, seed=1), pesq_stoi=False)
    for row in result.rows:
        assert row["si_sdri"] == pytest.approx(0.0, abs=1e-4)
        assert row["sdri"] == pytest.approx(0.0, abs=1e-3)


def test_long_utterances_are_segmented(band_model):
    rng = np.random.default_rng(2)
    refs = torch.from_numpy(rng.standard_normal((2, 10 * SR)).astype(np.float32))
    model = band_model(mode="gain", gain=0.9, shuffle=True)
    result = evaluate(model, [(refs.sum(0), refs)], pesq_stoi=False, segment_seconds=3.0, overlap_seconds=1.0)
    assert model.max_input_length == 3 * SR and model.calls > 1
    # a shuffling model stitched consistently is still just a fixed mask: no improvement anywhere
    assert result.rows[0]["si_sdri"] == pytest.approx(0.0, abs=1e-3)


def test_pesq_and_stoi_when_available(band_model):
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    result = evaluate(band_model(cutoff_hz=300.0, noise=NOISE), _dataset(1), limit=1)
    row = result.rows[0]
    assert 1.0 <= row["pesq"] <= 4.6 and 0.9 < row["stoi"] <= 1.0


def test_limit_and_shape_errors(band_model):
    model = band_model()
    assert evaluate(model, _dataset(2), limit=1, pesq_stoi=False).utterances == 1
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(model, _dataset(1), limit=0)
    three = [(torch.zeros(SR), torch.zeros(3, SR))]
    with pytest.raises(ValueError, match="has 3 sources but the model separates 2"):
        evaluate(model, three)
    with pytest.raises(ValueError, match=r"got \(2, 8000\)"):
        evaluate(model, [(torch.zeros(2, SR), torch.zeros(2, SR))])


def test_results_files_are_written_atomically(tmp_path, band_model):
    result = evaluate(band_model(noise=NOISE), _dataset(2), pesq_stoi=False)
    csv_path, json_path = write_results(result, tmp_path / "results.csv", meta={"model": "x"})
    assert json_path == tmp_path / "results.json" == summary_path(csv_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]  # no temp files left
    summary = json.loads(json_path.read_text())
    assert summary["model"] == "x" and summary["throughput"]["utterances"] == 2
    assert summary["summary"]["si_sdri"]["ci95_low"] is not None
    assert "si_sdri" in format_summary(result) and "utterances/s" in format_summary(result)
    with pytest.raises(ValueError, match="summary goes beside it"):
        summary_path(tmp_path / "results.json")
    # a NaN (say a PESQ that failed) is written as null, not as invalid JSON
    result.summary["si_sdr"]["ci95_low"] = math.nan
    write_results(result, tmp_path / "results.csv")
    assert json.loads(json_path.read_text())["summary"]["si_sdr"]["ci95_low"] is None


def test_eval_cli_on_a_folder_dataset(tmp_path, band_model, capsys):
    data = _dataset(3)
    dirs = {name: tmp_path / "data" / name for name in ("mix", "s1", "s2")}
    for d in dirs.values():
        d.mkdir(parents=True)
    for i, (mix, refs) in enumerate(data):
        sf.write(dirs["mix"] / f"utt{i}.wav", mix.numpy(), SR, subtype="FLOAT")
        for c in range(2):
            sf.write(dirs[f"s{c + 1}"] / f"utt{i}.wav", refs[c].numpy(), SR, subtype="FLOAT")
    ck = save_checkpoint(tmp_path / "model.pt", band_model(cutoff_hz=300.0, noise=NOISE))
    spec = f"folder:{dirs['mix']}:{dirs['s1']},{dirs['s2']}"
    out = tmp_path / "res" / "results.csv"
    assert main(["eval", str(ck), "--data", spec, "--out", str(out), "--limit", "2", "--no-pesq"]) == 0
    printed = capsys.readouterr().out
    assert "si_sdri" in printed and "utterances/s" in printed
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["utt0", "utt1"] and "pesq" not in rows[0]
    for row, (_, refs) in zip(rows, data[:2], strict=True):
        assert float(row["si_sdri"]) == pytest.approx(_closed_form(refs)[1], abs=1e-2)
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["data"] == spec and summary["summary"]["si_sdri"]["n"] == 2


@pytest.mark.slow  # starts two spawned worker processes
def test_metric_workers_give_the_same_rows_in_order(band_model):
    data = _dataset(2, seed=4)
    model = band_model(cutoff_hz=300.0, noise=NOISE)
    serial = evaluate(model, data, pesq_stoi=False)
    parallel = evaluate(model, data, pesq_stoi=False, jobs=2)
    assert [r["id"] for r in parallel.rows] == ["0", "1"]
    for a, b in zip(serial.rows, parallel.rows, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-9), key
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        evaluate(model, data, jobs=0)
