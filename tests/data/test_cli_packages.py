import io
import tarfile

import pytest

from speechsep.cli import main
from speechsep.data import packages


def _targz(files):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _deb(path, files):
    """A minimal .deb: an ar archive of debian-binary, control.tar.gz and data.tar.gz."""
    control = _targz({"control": b"Package: pkg\nVersion: 1.0\nArchitecture: all\nMaintainer: x\nDescription: x\n"})
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", control), ("data.tar.gz", _targz(files))]
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    path.write_bytes(out)
    return path


@pytest.mark.parametrize("have_dpkg", [True, False])
def test_unpack_deb_once(tmp_path, monkeypatch, have_dpkg):
    deb = _deb(tmp_path / "pkg_1.0_all.deb", {"usr/share/x/a.txt": b"hello"})
    if not have_dpkg:
        real = packages.shutil.which
        monkeypatch.setattr(packages.shutil, "which", lambda n: None if n == "dpkg" else real(n))
    out = packages.unpack_deb(deb, tmp_path / "unpacked", log=lambda m: None)
    assert (out / "usr/share/x/a.txt").read_bytes() == b"hello"
    assert (out / ".complete").exists()
    (out / "usr/share/x/a.txt").write_bytes(b"kept")  # a second call trusts the marker
    packages.unpack_deb(deb, tmp_path / "unpacked", log=lambda m: None)
    assert (out / "usr/share/x/a.txt").read_bytes() == b"kept"


def test_cached_deb_is_not_downloaded_again(tmp_path, monkeypatch):
    (tmp_path / "lincity-ng-data_2.9_all.deb").write_bytes(b"x")
    monkeypatch.setattr(packages.subprocess, "run", lambda *a, **k: pytest.fail("tried to download"))
    assert packages.download_deb("lincity-ng-data", tmp_path, hint="").name == "lincity-ng-data_2.9_all.deb"


def test_demo_without_apt_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPEECHSEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(packages.shutil, "which", lambda name: None)
    assert main(["data", "demo", "--root", str(tmp_path / "c"), "--tiny"]) == 2
    out = capsys.readouterr().out
    assert "apt-get is not available" in out and "--noise-dir" in out and "lincity-ng-data" in out
    # with noise given, every speech source says which package it lacks and how to supply it
    (tmp_path / "noise").mkdir()
    assert main(["data", "demo", "--root", str(tmp_path / "d"), "--tiny", "--noise-dir", str(tmp_path / "noise"),
                 "--sources", "fotaq", "festvox-ru"]) != 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "source fotaq left out: apt-get is not available" in out and "flight-of-the-amazon-queen" in out
    assert "--package flight-of-the-amazon-queen=PATH" in out and "source festvox-ru left out" in out
    assert "only 0 training voices remain" in out


def test_data_help_documents_the_grammar(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    for kind in ("demo:ROOT:SPLIT", "wham:ROOT:SUBSET", "whamr:", "librimix:", "folder:MIXDIR"):
        assert kind in out


def test_data_check(wham_tree, capsys):
    assert main(["data", "check", f"wham:{wham_tree}:tt"]) == 0
    out = capsys.readouterr().out
    assert "3 mixtures" in out and "0 problem(s)" in out and "sources (2, 800)" in out
    (wham_tree / "wav8k/min/tt/s2/mix2.wav").write_bytes(b"RIFF")
    assert main(["data", "check", f"wham:{wham_tree}:tt"]) == 1
    assert "s2/mix2.wav: cannot be decoded" in capsys.readouterr().out
