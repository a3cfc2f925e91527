import numpy as np
import pyroomacoustics as pra
import pytest

from speechsep.data.rooms import RoomBank, RoomDistribution, sample_room, simulate_room


def test_room_draws_stay_in_the_paper_ranges():
    dist = RoomDistribution()
    rng = np.random.default_rng(1)
    for _ in range(200):
        r = sample_room(rng, dist)
        assert 3 <= r.dims[0] <= 10 and 3 <= r.dims[1] <= 10 and 2.5 <= r.dims[2] <= 4
        assert 0.1 <= r.rt60 <= 0.5
        for p in (r.mic, *r.sources):
            assert np.all(p[:2] >= dist.wall_margin) and np.all(p[:2] <= r.dims[:2] - dist.wall_margin)
            assert 0 < p[2] < r.dims[2]
        assert np.all(np.linalg.norm(r.sources - r.mic, axis=1) >= dist.min_source_distance)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_rt60_and_direct_path(seed):
    sr = 8000
    room = sample_room(np.random.default_rng(seed), RoomDistribution())
    reverb, direct = simulate_room(room, sr)
    assert reverb.shape[0] == direct.shape[0] == 2
    measured = pra.experimental.measure_rt60(reverb[0], fs=sr, decay_db=30)
    assert 0.7 * room.rt60 < measured < 1.4 * room.rt60
    for k in range(2):
        # the direct path peaks at distance / c (plus pyroomacoustics' fractional-delay offset),
        # and the reverberant response's first arrival is the same sample
        delay = np.linalg.norm(room.sources[k] - room.mic) / pra.constants.get("c") * sr
        expected = delay + pra.constants.get("frac_delay_length") // 2
        assert abs(int(np.argmax(np.abs(direct[k]))) - expected) <= 1
        assert int(np.argmax(np.abs(direct[k]))) == int(np.argmax(np.abs(reverb[k, : direct.shape[1]])))


def test_same_room_gives_same_response():
    room = sample_room(np.random.default_rng(5), RoomDistribution())
    a, b = simulate_room(room, 8000), simulate_room(room, 8000)
    np.testing.assert_array_equal(a[0], b[0])


def test_bank_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rooms = [sample_room(rng, RoomDistribution()) for _ in range(3)]
    bank = RoomBank.from_rooms(8000, rooms, [simulate_room(r, 8000) for r in rooms])
    bank.save(tmp_path / "rooms.npz")
    back = RoomBank.load(tmp_path / "rooms.npz")
    assert len(back) == 3
    for i, r in enumerate(rooms):
        rev, d = back.responses(i)
        np.testing.assert_array_equal(rev, simulate_room(r, 8000)[0])
        assert back.rt60[i] == pytest.approx(r.rt60)
