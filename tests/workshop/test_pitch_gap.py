"""The pitch-gap workshop tool: eval scores binned by how far apart the two voices are in pitch."""

import math

import pytest


def test_pitch_gap_bins_mixtures_by_the_semitones_between_their_voices(tmp_path):
    from bench.learn.pitch_gap import by_pitch_gap, mixture_speakers

    (tmp_path / "manifest.csv").write_text("split,condition,id,s1_speaker,s2_speaker\n"
                                           "test,clean,a,low,near\ntest,clean,b,low,octave\n"
                                           "test,clean,c,near,octave\ntest,clean,d,low,unknown\n")
    pitch = {"low": 100.0, "near": 110.0, "octave": 200.0, "unknown": math.nan}
    bins = by_pitch_gap({"a": 1.0, "b": 9.0, "c": 5.0, "d": 3.0}, mixture_speakers(tmp_path), pitch)
    # a: 1.65 semitones; b: 12.0; c: 10.35; d: no pitch, left out
    assert [(b["bin"], b["n"]) for b in bins] == [("0-2", 1), ("2-4", 0), ("4-7", 0), ("7-12", 1), (">= 12", 1)]
    assert [b["mean"] for b in bins if b["n"]] == [1.0, 5.0, 9.0]
    with pytest.raises(ValueError, match="not in the corpus's manifest"):
        by_pitch_gap({"zz": 1.0}, mixture_speakers(tmp_path), pitch)
    with pytest.raises(ValueError, match="no manifest.csv"):
        mixture_speakers(tmp_path / "nowhere")
