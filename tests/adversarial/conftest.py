"""Fixtures for attacks on the worker: the controller's Lambda handler as the caller and an
in-process worker on the real Docker engine, in both start modes."""

from __future__ import annotations

import dataclasses

import pytest
from nanogrid_controller import app as controller_app
from nanogrid_protocol import RunStatus

from tests.integration.test_hostile_functions import API_KEY, ECHO_SOURCE, Caller

@pytest.fixture(params=["cold", "warm"])
def worker_settings(request, worker_settings):
    if request.param == "cold":
        return dataclasses.replace(worker_settings, warm_idle_s=0)
    return dataclasses.replace(worker_settings, warm_idle_s=60)


@pytest.fixture
def warm_worker_settings(worker_settings):
    if worker_settings.warm_idle_s <= 0:
        pytest.skip("a fresh container per run keeps nothing between runs")
    return worker_settings


@pytest.fixture
def caller(monkeypatch, redis_url, redis_client, moto_url, queue_url, code_bucket, start_agent, worker_settings):
    monkeypatch.setenv("NANOGRID_REDIS_URL", redis_url)
    monkeypatch.setenv("NANOGRID_QUEUE_URL", queue_url)
    monkeypatch.setenv("NANOGRID_CODE_BUCKET", code_bucket)
    monkeypatch.setenv("NANOGRID_API_KEY", API_KEY)
    monkeypatch.setattr(controller_app, "_services", None)
    start_agent()
    caller = Caller(redis_client)
    yield caller
    caller.close()

    # The worker still serves a normal run after whatever the test ran.
    echo, _, _ = caller.run(ECHO_SOURCE, {"after": "tampering"})
    assert echo.status is RunStatus.SUCCESS
    assert echo.result == {"echo": {"after": "tampering"}}
