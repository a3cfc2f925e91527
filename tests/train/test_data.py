import pytest
import torch

from speechsep.train.data import CroppedExamples, EpochSampler, check_example


def test_epoch_order_depends_only_on_seed_and_epoch_and_ranks_partition_it():
    full = EpochSampler(10, seed=5, epoch=3).order()
    assert full == EpochSampler(10, seed=5, epoch=3).order() and sorted(full) == list(range(10))
    assert full != EpochSampler(10, seed=5, epoch=4).order()
    r0 = EpochSampler(10, seed=5, epoch=3, rank=0, world=2).order()
    r1 = EpochSampler(10, seed=5, epoch=3, rank=1, world=2).order()
    # batch s of rank r holds full[2 * b * s + r :: 2] for per-rank batch b: the union is the single-process batch
    assert r0 == full[0::2] and r1 == full[1::2]
    resumed = EpochSampler(10, seed=5, epoch=3, start=4)
    assert [i for i, _ in resumed] == full[4:] and len(resumed) == 6
    uneven = EpochSampler(5, seed=0, epoch=0, rank=1, world=2)
    assert len(uneven) == 2 and len(list(uneven)) == 2
    assert len(list(EpochSampler(5, seed=0, epoch=0, rank=0, world=2, even=False))) == 3


class _Ramp(torch.utils.data.Dataset):
    def __init__(self):
        self.epoch = None

    def __len__(self):
        return 3

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        t = torch.arange(100 + 50 * i, dtype=torch.float32) + 1000 * (self.epoch or 0)
        return t, torch.stack([t, -t])


def test_crops_are_a_function_of_seed_epoch_index_and_short_items_are_padded():
    crops = CroppedExamples(_Ramp(), 80, seed=1)
    a, b = crops[(2, 0)], crops[(2, 0)]
    assert torch.equal(a[0], b[0]) and a[0].shape == (80,) and a[1].shape == (2, 80)
    assert torch.equal(a[1][0], a[0]) and torch.equal(a[1][1], -a[0])
    offsets = {int(crops[(2, e)][0][0]) % 1000 for e in range(8)}
    assert len(offsets) > 1  # different epochs, different crops
    assert int(crops[(2, 5)][0][0]) // 1000 == 5  # set_epoch reached the dataset
    padded = CroppedExamples(_Ramp(), 120, seed=1)[(0, 0)]
    assert padded[0].shape == (120,) and torch.all(padded[0][100:] == 0)


def test_bad_items_raise_with_shapes():
    with pytest.raises(ValueError, match=r"\(10,\) and \(2, 9\)"):
        check_example((torch.zeros(10), torch.zeros(2, 9)), "example 0")
