"""bench/gpu: a corpus's training half packed to travel, unpacked into a corpus the trainer reads."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # the data tests' synthetic corpus
from data_fakes import synthetic_inputs  # noqa: E402

from bench.gpu.pack import pack  # noqa: E402
from bench.gpu.unpack import unpack  # noqa: E402
from bench.gpu.weights import LIMIT_BYTES, slim  # noqa: E402
from speechsep.checkpoint import load_model, read_checkpoint, save_checkpoint  # noqa: E402
from speechsep.data import pitch as pitch_mod  # noqa: E402
from speechsep.data.corpus import CorpusConfig, build_corpus, load_utterances  # noqa: E402
from speechsep.data.datasets import DynamicMixing  # noqa: E402
from speechsep.registry import build  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    pytest.importorskip("librosa")
    root = tmp_path_factory.mktemp("gpu") / "corpus"
    utts, chunks, clips = synthetic_inputs(speakers=9, per_speaker=6)
    cfg = CorpusConfig(seed=0, counts={"train": 0, "valid": 2, "test": 2}, room_bank_size=5, train_hours=0.01)
    cfg.mixing.segment_seconds = 1.0
    build_corpus(root, cfg, lambda: (utts, chunks, {"skipped": []}), lambda: (clips, {}), processes=1,
                 log=lambda msg: None)
    return root


def test_pack_caps_each_voice_and_unpacks_into_a_trainable_corpus(corpus, tmp_path, monkeypatch):
    summary = pack(corpus, tmp_path / "packed", cap_seconds=2.0, rooms=3, log=lambda msg: None)
    original = load_utterances(corpus, 8000)
    train = original.speaker_pools("train")
    # every training voice travels, each cut to its first lines past 2 s (lines are 0.6-2.6 s long)
    assert summary["speakers"] == len(train) and summary["rooms"] == 3
    monkeypatch.setattr(pitch_mod, "speaker_pitch", lambda *a: pytest.fail("the pitch must come from the pack"))
    root = unpack(tmp_path / "packed", tmp_path / "unpacked", log=lambda msg: None)
    table = load_utterances(root, 8000)
    assert set(table.speakers) == set(train) and set(table.splits) == {"train"}
    for speaker, pool in table.speaker_pools("train").items():
        seconds = table.lengths[pool].sum() / 8000
        assert seconds < 2.0 + 2.6 and (seconds >= 2.0 or len(pool) == len(train[speaker]))
    # the Vorbis round trip keeps each line in place: tones come back aligned, within the codec's error
    index = {u: i for i, u in enumerate(original.ids)}
    for i in range(0, len(table), 3):
        clean, coded = original.load(index[table.ids[i]]), table.load(i)
        assert coded.shape == clean.shape
        assert 10 * np.log10((clean ** 2).sum() / ((coded - clean) ** 2).sum()) > 10.0
    data = DynamicMixing(root, sample_rate=8000, segment_seconds=1.0, mixing={"distinct_pitch_semitones": 2.0})
    assert len(data.rooms) == 3 and data.pitch is not None and set(data.pitch) >= set(table.speakers)
    mix, sources = data[0]
    assert mix.shape == (8000,) and sources.shape == (2, 8000) and mix.abs().max() > 0


def test_weights_come_back_alone_and_under_the_file_limit(tmp_path):
    model = build("tf-mask-tiny")
    train_config = {"init_from": "speechsep/pretrained/x/model.pt", "data": {"train": "demo:R:train"}}
    full = save_checkpoint(tmp_path / "last.pt", model, step=7, epoch=1, extra={"train_config": train_config})
    slim(full, tmp_path / "model.pt")
    assert (tmp_path / "model.pt").stat().st_size <= LIMIT_BYTES
    payload = read_checkpoint(tmp_path / "model.pt")
    assert "optimizer" not in payload and payload["step"] == 7
    # bundling chains the run to the bundle it continued through the training config's init_from
    assert payload["extra"]["train_config"] == train_config
    back = load_model(tmp_path / "model.pt")
    for a, b in zip(model.state_dict().values(), back.state_dict().values(), strict=True):
        assert a.shape == b.shape and bool((a == b).all())  # float32 when it fits: exact
