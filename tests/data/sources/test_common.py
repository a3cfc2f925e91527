"""The helpers every reader shares (``speechsep.data.sources.common``), and the checks every reader must pass."""

from __future__ import annotations

import pytest

from speechsep.audio import AudioError
from speechsep.data.sources import SourceError, get_source
from speechsep.data.sources.common import (
    DuplicateFilter,
    decode_file,
    iso_language,
    make_utterance,
    require_dir,
    require_file,
    require_files,
)

# every reader that finds its files under one folder of its package, and that folder
FOLDERS = [
    ("asterisk-fr-armelle", "usr/share/asterisk/sounds/fr"),
    ("asterisk-es-co", "usr/share/asterisk/sounds/es"),
    ("drascula-en", "usr/share/scummvm/drascula/en"),
    ("drascula-es", "usr/share/scummvm/drascula/es"),
    ("festvox-ru", "msu_ru_nsh_clunits/wav"),
    ("fillets-cs", "usr/share/games/fillets-ng/sound"),
    ("fillets-nl", "usr/share/games/fillets-ng/sound"),
    ("hedgewars", "Data/Sounds/voices"),
    ("klettres", "usr/share/klettres"),
    ("ktuberling", "usr/share/ktuberling/sounds"),
    ("tuxpaint-stamps", "usr/share/tuxpaint/stamps"),
    ("warzone2100", "usr/share/games/warzone2100"),
    ("beneath-a-steel-sky", "usr/share/scummvm/beneath-a-steel-sky"),
]


@pytest.mark.parametrize("name, folder", FOLDERS)
def test_missing_folder_raises(name, folder, tmp_path):
    source = get_source(name)
    with pytest.raises(SourceError, match=f"{name}: .*{folder}"):
        source.list({source.packages[0]: tmp_path})
    with pytest.raises(SourceError, match=f"no folder given for package {source.packages[0]}"):
        source.list({})


def test_require_dir_and_files(tmp_path):
    source = get_source("festvox-ru")
    (tmp_path / "a/b").mkdir(parents=True)
    assert require_dir(source, {"festvox-ru": tmp_path}, "a/b") == tmp_path / "a/b"
    with pytest.raises(SourceError, match=r"festvox-ru: .*a/c is missing \(is festvox-ru unpacked there\?\)"):
        require_dir(source, {"festvox-ru": tmp_path}, "a/c")
    assert require_files(source, [tmp_path], "unused") == [tmp_path]
    with pytest.raises(SourceError, match="^festvox-ru: no .wav files in X$"):
        require_files(source, [], "no .wav files in X")


def test_duplicate_filter_keeps_the_first_copy(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"other")
    copies = DuplicateFilter()
    assert [copies.skip_reason(p) for p in (a, b, c)] == ["", f"byte-identical copy of {a}", ""]
    copies.keep("pcv480", "x.wz:pcv480.ogg")  # any key: warzone also keeps console line numbers
    assert copies.first("pcv480") == "x.wz:pcv480.ogg" and copies.first("pcv481") is None
    copies.keep("pcv480", "later")
    assert copies.first("pcv480") == "x.wz:pcv480.ogg"


def test_make_utterance_prefixes_the_source_name():
    utt = make_utterance(get_source("klettres"), "en/alpha/A", "en", "en", "/x/A.ogg", actor_group="kde-voices/en")
    assert (utt.id, utt.speaker, utt.language, utt.path, utt.entry, utt.group) == (
        "klettres/en/alpha/A", "klettres/en", "en", "/x/A.ogg", "", "kde-voices/en")


def test_decode_errors_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.ogg: no such file"):
        require_file(tmp_path / "nope.ogg")

    def broken():
        raise RuntimeError("bad frame")

    with pytest.raises(AudioError, match=r"^f.gsm: cannot be decoded as GSM \(RuntimeError: bad frame\)$"):
        decode_file("f.gsm", broken, "cannot be decoded as GSM")
    with pytest.raises(RuntimeError):  # only the listed errors become AudioError
        decode_file("f.gsm", broken, errors=(KeyError,))
    assert decode_file("f.gsm", lambda: 3) == 3


def test_iso_language():
    assert iso_language("pt_BR") == "pt"
    assert iso_language("en_GB") == "en"
    assert iso_language("sr@latin") == "sr"
    assert iso_language("nds") == "nds"
    assert iso_language("ml") == "ml"
