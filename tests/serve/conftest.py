"""Fixtures for the serve tests: the toy causal model and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib

import pytest
import torch
from serve_testkit import ToyCausalSeparator, running_server, toy_model

from speechsep.serve.app import create_app
from speechsep.serve.sessions import ServeLimits

__all__ = ["ToyCausalSeparator"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread, as ``speechsep serve`` runs its steps (``--torch-threads 1``): a streaming step
    is many small ops, and two OpenMP threads on a busy 2-core machine wait on each other (measured here:
    a 2 s tfacm-lite forward took 14.6 s with 2 threads under load, 0.49 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model() -> ToyCausalSeparator:
    return toy_model()


@pytest.fixture
def serve(model):
    """``serve(**limits)`` -> base URL of a live server around the toy model (closed after the test)."""
    with contextlib.ExitStack() as stack:

        def start(model_=None, **limits):
            app = create_app(model_ or model, model_name="toy", limits=ServeLimits(**limits), compute_threads=2)
            return stack.enter_context(running_server(app))

        yield start
