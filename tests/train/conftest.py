import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The training tests use models of a few thousand weights: a second thread only adds
    # synchronisation, which costs 10-100x when the machine is shared.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
