import subprocess
import sys

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
