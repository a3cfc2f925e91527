"""Fixtures for the serve tests: the toy causal model and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib

import pytest
from serve_testkit import ToyCausalSeparator, running_server, toy_model

from speechsep.serve.app import create_app
from speechsep.serve.sessions import ServeLimits

__all__ = ["ToyCausalSeparator"]


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
