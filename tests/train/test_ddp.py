import dataclasses
import socket

import pytest
import torch
import torch.multiprocessing as mp
from train_fixtures import ToneMixtures, ddp_worker, tiny_config

from speechsep.checkpoint import read_checkpoint
from speechsep.registry import build
from speechsep.train import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    single = tiny_config(max_epochs=2)  # batch 4: 3 steps an epoch on 12 examples
    train(single, tmp_path / "single", device="cpu", train_data=ToneMixtures(12), valid_data=ToneMixtures(2, seed=1),
          progress=False)
    per_process = dataclasses.replace(single, data=dataclasses.replace(single.data, batch_size=2))
    mp.spawn(ddp_worker, args=(2, _free_port(), per_process, str(tmp_path / "ddp")), nprocs=2, join=True)

    a = read_checkpoint(tmp_path / "single" / "last.pt")
    b = read_checkpoint(tmp_path / "ddp" / "last.pt")
    assert a["step"] == b["step"] == 6 and b["extra"]["world"] == 2
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, atol=1e-6, rtol=0, msg=key)
    # Training moved the weights: the comparison is not between two untouched initialisations.
    torch.manual_seed(single.seed)
    init = build(single.model.name, **single.model.overrides).state_dict()
    assert max(float((init[k] - v).abs().max()) for k, v in a["state_dict"].items()) > 1e-3
