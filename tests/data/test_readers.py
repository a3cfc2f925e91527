import shutil

import numpy as np
import pytest
import torch
from data_fakes import tone, write_wav

from speechsep.audio import AudioError
from speechsep.data import collate, open_dataset
from speechsep.data.readers import folder_items, librimix_items, scan_items, wham_items, whamr_items


def test_wham_reads_noisy_and_clean(wham_tree):
    items = wham_items(wham_tree, "tt")
    assert [i.id for i in items] == ["mix0", "mix1", "mix2"]
    assert items[0].mixture.parent.name == "mix_both"
    assert [p.parent.name for p in items[0].sources] == ["s1", "s2"]
    assert wham_items(wham_tree, "tt", noisy=False)[0].mixture.parent.name == "mix_clean"


def test_wham_names_the_first_missing_path(wham_tree):
    with pytest.raises(FileNotFoundError, match=r"wav8k/max is missing"):
        wham_items(wham_tree, "tt", mode="max")
    shutil.rmtree(wham_tree / "wav8k/min/tt/s2")
    with pytest.raises(FileNotFoundError, match=r"tt/s2 is missing"):
        wham_items(wham_tree, "tt")


def test_wham_names_a_missing_source_file(wham_tree):
    (wham_tree / "wav8k/min/tt/s1/mix1.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"s1/mix1.wav is missing"):
        wham_items(wham_tree, "tt")


def test_wham_dataset_items_and_sum(wham_tree):
    ds = open_dataset(f"wham:{wham_tree}:tt", sample_rate=8000)
    mix, src = ds[1]
    assert mix.shape == (800,) and src.shape == (2, 800) and mix.dtype == src.dtype == torch.float32
    noise = torch.from_numpy(np.asarray(tone(50, 800, seed=21), dtype=np.float32))
    torch.testing.assert_close(mix, src.sum(0) + noise, atol=1e-6, rtol=0)


def test_whamr_targets_selectable(whamr_tree):
    reverb = whamr_items(whamr_tree, "cv", mode="max", sample_rate=16000)
    anechoic = whamr_items(whamr_tree, "cv", mode="max", sample_rate=16000, target="anechoic")
    assert [p.parent.name for p in reverb[0].sources] == ["s1_reverb", "s2_reverb"]
    assert [p.parent.name for p in anechoic[0].sources] == ["s1_anechoic", "s2_anechoic"]
    assert reverb[0].mixture.parent.name == anechoic[0].mixture.parent.name == "mix_both_reverb"
    ds = open_dataset(f"whamr:{whamr_tree}:cv:max:16k:anechoic", sample_rate=16000)
    assert ds.items[0].sources[0].parent.name == "s1_anechoic"
    with pytest.raises(FileNotFoundError, match="wav8k is missing"):
        whamr_items(whamr_tree, "cv", mode="max", sample_rate=8000)


def test_librimix_reroots_foreign_paths(librimix_tree):
    items = librimix_items(librimix_tree, "test")
    assert len(items) == 2
    assert items[0].mixture == librimix_tree / "Libri2Mix/wav8k/min/test/mix_both" / f"{items[0].id}.wav"
    assert all(p.exists() for i in items for p in (i.mixture, *i.sources))
    with pytest.raises(FileNotFoundError, match=r"mixture_test_mix_clean.csv is missing"):
        librimix_items(librimix_tree, "test", noisy=False)
    with pytest.raises(FileNotFoundError, match=r"Libri3Mix is missing"):
        librimix_items(librimix_tree, "test", num_speakers=3)
    (librimix_tree / "Libri2Mix/wav8k/min/test/s2" / f"{items[1].id}.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"s2/.*\.wav is missing"):
        librimix_items(librimix_tree, "test")


def test_folder_layout_and_corrupt_file(tmp_path):
    for i in range(2):
        for d in ("mix", "a", "b"):
            write_wav(tmp_path / d / f"x{i}.wav", tone(100, 400, seed=i))
    (tmp_path / "b" / "x1.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    items = folder_items(tmp_path / "mix", [tmp_path / "a", tmp_path / "b"])
    assert len(items) == 2
    problems = scan_items(items)
    assert [p.rsplit("/", 2)[-2:] for p, _ in problems] == [["b", "x1.wav"]]
    ds = open_dataset(f"folder:{tmp_path / 'mix'}:{tmp_path / 'a'},{tmp_path / 'b'}", sample_rate=8000)
    assert ds[0][1].shape == (2, 400)
    with pytest.raises(AudioError, match=r"b/x1.wav"):
        ds[1]


def test_length_and_rate_mismatch_names_both_paths(tmp_path):
    write_wav(tmp_path / "mix" / "m.wav", tone(100, 400))
    write_wav(tmp_path / "s1" / "m.wav", tone(100, 399))
    write_wav(tmp_path / "s2" / "m.wav", tone(100, 800), 16000)
    ds = open_dataset(f"folder:{tmp_path / 'mix'}:{tmp_path / 's1'},{tmp_path / 's2'}", sample_rate=8000)
    with pytest.raises(ValueError, match=r"mix/m.wav has 400 samples at 8000 Hz, .*s1/m.wav has 399"):
        ds[0]
    assert len(scan_items(ds.items)) == 2  # both mismatching sources are reported


def test_resampling_is_logged_once(wham_tree, caplog):
    ds = open_dataset(f"wham:{wham_tree}:tt:8k", sample_rate=16000)
    with caplog.at_level("INFO", logger="speechsep.data.datasets"):
        for i in range(3):
            mix, src = ds[i]
    assert mix.shape == (1600,) and src.shape == (2, 1600)
    assert sum("resampling 8000 Hz -> 16000 Hz" in r.message for r in caplog.records) == 1


def test_random_crops_are_seeded_per_epoch(wham_tree):
    ds = open_dataset(f"wham:{wham_tree}:tt", sample_rate=8000, segment_seconds=0.05, train=True, seed=3)
    a = ds[0][0]
    assert a.shape == (400,)
    torch.testing.assert_close(ds[0][0], a)
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], a)
    fixed = open_dataset(f"wham:{wham_tree}:tt", sample_rate=8000, segment_seconds=0.05)
    full = open_dataset(f"wham:{wham_tree}:tt", sample_rate=8000)
    torch.testing.assert_close(fixed[0][0], full[0][0][:400])
    padded = open_dataset(f"wham:{wham_tree}:tt", sample_rate=8000, segment_seconds=0.2, train=True)
    assert padded[0][0].shape == (1600,) and torch.all(padded[0][0][800:] == 0)


def test_collate_shapes_and_padding():
    batch = [(torch.ones(5), torch.ones(2, 5)), (torch.ones(3), 2 * torch.ones(2, 3))]
    mix, src = collate(batch)
    assert mix.shape == (2, 5) and src.shape == (2, 2, 5)
    assert torch.equal(src[1, :, 3:], torch.zeros(2, 2)) and torch.equal(src[1, :, :3], 2 * torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        collate([(torch.ones(5), torch.ones(2, 4))])


@pytest.mark.parametrize("spec, message", [
    ("wham:/x", "must be KIND:ROOT:SPLIT"),
    ("wham:/x:tt:loud", "unknown or repeated option 'loud'"),
    ("wham:/x:tt:min:max", "unknown or repeated option 'max'"),
    ("wham:/x:tt:anechoic", "does not apply"),
    ("nope:/x:tt", "unknown dataset kind 'nope'"),
])
def test_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        open_dataset(spec, sample_rate=8000)
