"""Results schema, BENCHMARKS.md rendering and the plot, from the fixed results in conftest.py."""

import json

import pytest

from speechsep.bench.plot import plot_rtf_vs_macs
from speechsep.bench.report import read_fragments, render_markdown
from speechsep.bench.schema import BenchSchemaError, validate_results
from speechsep.cli import main


def test_fixed_results_validate(results):
    assert validate_results(results) is results


@pytest.mark.parametrize("path, problem", [
    (("models", 0, "params"), "missing field 'params'"),
    (("machine", "cpu"), "missing field 'cpu'"),
    (("anchors", 0, "error"), "missing field 'error'"),
])
def test_schema_names_the_missing_field(results, path, problem):
    obj = results
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]
    with pytest.raises(BenchSchemaError, match=problem):
        validate_results(results)


def test_schema_rejects_wrong_types_and_versions(results):
    bad = json.loads(json.dumps(results))
    bad["models"][1]["offline"]["4"]["rtf"] = "fast"
    with pytest.raises(BenchSchemaError, match=r"models\[1\]\.offline\[4\]\.rtf"):
        validate_results(bad)
    bad = json.loads(json.dumps(results))
    bad["models"][0]["memory"] = {"long": 5}
    with pytest.raises(BenchSchemaError, match="'long' is not a number"):
        validate_results(bad)
    bad = json.loads(json.dumps(results))
    bad["schema"] = 999
    with pytest.raises(BenchSchemaError, match="version 999"):
        validate_results(bad)


def test_markdown_has_every_area_and_the_numbers(results):
    text = render_markdown(results)
    for heading in ("Parameters and MACs", "Offline forward time", "Peak memory", "Streaming through",
                    "Training step", "Anchors, same run", "PIT + SI-SDR"):
        assert f"## {heading}" in text
    assert "Test CPU 9000, 2 cores; torch 2.13.0+cpu, 2 threads" in text
    assert "`speechsep bench --quick --json bench/results.json`" in text
    # complexity beside the paper: 0.469 M vs 0.5 -> 0.94; 17.20 GMAC/s vs 19.4 -> 0.89
    assert "| `tfacm-small` | 8000 | yes | 0.469 | 0.5 | 0.94 | 17.20 | 19.4 | 0.89 |" in text
    assert "| `tfacm-small` | 0.900 s (RTF 0.90) | 3.200 s (RTF 0.80) | 0.573 | 1.4 |" in text
    assert "| `tfacm-small` | 16 | 0.700 | 10.50 | 12.25 | 30.00 | 8.0 |" in text
    assert "its own `forward_streaming`, 0.25 s | 0.125 (1 frame) | 24.000 | 2.500 | 4.000 | 9.000 | - |" in text
    assert "1 s: 0.300 / 0.600 = **0.50**" in text  # ours / theirs on the anchor row
    assert "NOT MEASURED: anchor venv unavailable" in text  # an anchor that failed is said, not dropped
    assert "| 16 x 2 x 32000 | 120.0 | 480.0 | **0.25** |" in text
    assert "skipped (estimated 999 s > budget 20 s)" in text
    assert "`tfgridnet-causal` (--quick leaves out the slowest presets)" in text
    assert "| `iter-freq-simo1-siso2-it1` | 0.050 s (RTF 0.05) | skipped" not in text  # only 1 s measured: no 4 s claim
    assert "# Measured by each area" not in text


def test_fragments_are_appended_in_name_order(results, tmp_path):
    (tmp_path / "b-serve.md").write_text("## Serve latency\n\n| p50 | 12 |\n")
    (tmp_path / "a-data.md").write_text("## Corpus build\n\ntook 3 min\n")
    (tmp_path / "notes.txt").write_text("not markdown: ignored")
    fragments = read_fragments(tmp_path)
    assert [name for name, _ in fragments] == ["a-data.md", "b-serve.md"]
    text = render_markdown(results, fragments)
    assert text.index("## Corpus build") < text.index("## Serve latency")
    assert text.index("## PIT + SI-SDR") < text.index("# Measured by each area")
    assert read_fragments(tmp_path / "missing") == []


def test_plot_writes_a_png(results, tmp_path):
    path = plot_rtf_vs_macs(results, tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results["models"] = []
    results["anchors"] = []
    with pytest.raises(ValueError, match="no model"):
        plot_rtf_vs_macs(results, tmp_path / "empty.png")


def test_cli_renders_from_a_results_file(results, tmp_path, capsys):
    src = tmp_path / "results.json"
    src.write_text(json.dumps(results))
    (tmp_path / "frags").mkdir()
    (tmp_path / "frags" / "x.md").write_text("## From a fragment\n")
    out = tmp_path / "BENCHMARKS.md"
    assert main(["bench", "--render-only", str(src), "--markdown", str(out), "--plot", str(tmp_path / "p.png"),
                 "--fragments", str(tmp_path / "frags")]) == 0
    text = out.read_text()
    assert "![RTF vs MACs](p.png)" in text and "## From a fragment" in text
    assert (tmp_path / "p.png").stat().st_size > 1000
    results["models"][0].pop("offline")
    src.write_text(json.dumps(results))
    assert main(["bench", "--render-only", str(src), "--markdown", str(out)]) == 2
    assert "missing field 'offline'" in capsys.readouterr().err
