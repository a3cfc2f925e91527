"""The export tests reuse the serve tests' toy causal model (loaded by path: test folders are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_KIT = Path(__file__).resolve().parents[1] / "serve" / "serve_testkit.py"


def _testkit():
    if "serve_testkit" not in sys.modules:
        spec = importlib.util.spec_from_file_location("serve_testkit", _KIT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["serve_testkit"] = module
        spec.loader.exec_module(module)
    return sys.modules["serve_testkit"]


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Exported steps are hundreds of tiny ops: on a loaded 2-core machine a second thread only waits."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def testkit():
    return _testkit()
