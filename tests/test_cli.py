import subprocess
import sys

import pytest

from speechsep.cli import build_parser, main


def test_info_lists_version_and_device(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "speechsep 0.1.0" in out and "torch" in out and "device" in out


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "info" in sub.choices
    for name in sub.choices:
        proc = subprocess.run([sys.executable, "-m", "speechsep", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, (name, proc.stderr)
        assert "usage: speechsep " + name in proc.stdout


def test_bench_finds_the_workshop_in_the_checkout_and_says_when_there_is_none(tmp_path, monkeypatch):
    import speechsep.cli.bench as cli_bench

    assert callable(cli_bench.workshop("bench.plan").make_plan)  # this checkout has bench/
    # an installed wheel: no bench/ beside the package and none importable
    monkeypatch.setattr(cli_bench, "__file__", str(tmp_path / "speechsep" / "cli" / "bench.py"))
    for name in ("bench", "bench.plan"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(FileNotFoundError, match="source checkout"):
        cli_bench.workshop("bench.plan")
