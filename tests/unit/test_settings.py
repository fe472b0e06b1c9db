"""Settings parsing: every error names the variable, its value and what is expected."""

from pathlib import Path

import pytest
from nanogrid_controller.settings import ControllerSettings
from nanogrid_controller.settings import SettingsError as ControllerSettingsError
from worker_agent.errors import SettingsError
from worker_agent.settings import WorkerSettings

REQUIRED = {
    "NANOGRID_REDIS_URL": "redis://127.0.0.1:1/0",
    "NANOGRID_QUEUE_URL": "http://127.0.0.1:1/000000000000/jobs",
    "NANOGRID_CODE_BUCKET": "code",
}


def test_worker_settings_defaults():
    settings = WorkerSettings.from_env(dict(REQUIRED))

    assert settings.redis_url == REQUIRED["NANOGRID_REDIS_URL"]
    assert settings.concurrency == 2
    assert settings.poll_wait_s == 20
    assert settings.runtime_images == {"python3.11": "nanogrid/python:3.11"}


def test_worker_settings_reads_values():
    env = {
        **REQUIRED,
        "NANOGRID_CONCURRENCY": "8",
        "NANOGRID_CACHE_DIR": "/tmp/cache",
        "NANOGRID_POLL_WAIT_S": "1",
        "NANOGRID_RUNTIME_IMAGES": "python3.11=python:3.11-slim",
        "NANOGRID_WORKER_ID": "w1",
    }

    settings = WorkerSettings.from_env(env)

    assert settings.concurrency == 8
    assert settings.cache_dir == Path("/tmp/cache")
    assert settings.poll_wait_s == 1
    assert settings.runtime_images == {"python3.11": "python:3.11-slim"}
    assert settings.worker_id == "w1"


@pytest.mark.parametrize("key", sorted(REQUIRED))
def test_worker_settings_missing_required(key):
    env = {name: value for name, value in REQUIRED.items() if name != key}

    with pytest.raises(SettingsError) as excinfo:
        WorkerSettings.from_env(env)

    assert excinfo.value.key == key
    assert key in str(excinfo.value)
    assert "required" in str(excinfo.value)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("NANOGRID_CONCURRENCY", "four", "whole number"),
        ("NANOGRID_CONCURRENCY", "0", "from 1 to 64"),
        ("NANOGRID_POLL_WAIT_S", "21", "from 1 to 20"),
        ("NANOGRID_VISIBILITY_TIMEOUT_S", "1.5", "whole number"),
        ("NANOGRID_PIDS_LIMIT", "-1", "from 8 to 4096"),
        ("NANOGRID_RUNTIME_IMAGES", "python3.11", "NAME=IMAGE"),
        ("NANOGRID_RUNTIME_IMAGES", "node20=node:20", "unknown runtime 'node20'"),
        ("NANOGRID_CPUS", "lots", "number of CPUs"),
        ("NANOGRID_CPUS", "0", "from 0.01 to 64"),
    ],
)
def test_worker_settings_invalid_value(key, value, reason):
    with pytest.raises(SettingsError) as excinfo:
        WorkerSettings.from_env({**REQUIRED, key: value})

    message = str(excinfo.value)
    assert excinfo.value.key == key
    assert excinfo.value.value == value
    assert f"{key}={value!r}" in message
    assert reason in message


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("NANOGRID_RESULT_MARGIN_MS", "3s", "whole number of milliseconds"),
        ("NANOGRID_LAMBDA_SAFETY_MS", "-5", "0 or more"),
    ],
)
def test_controller_settings_invalid_value(key, value, reason):
    with pytest.raises(ControllerSettingsError) as excinfo:
        ControllerSettings.from_env({**REQUIRED, "NANOGRID_API_KEY": "k", key: value})

    assert f"{key}={value!r}" in str(excinfo.value)
    assert reason in str(excinfo.value)


def test_controller_settings_missing_queue():
    env = {name: value for name, value in REQUIRED.items() if name != "NANOGRID_QUEUE_URL"}
    env["NANOGRID_API_KEY"] = "k"

    with pytest.raises(ControllerSettingsError) as excinfo:
        ControllerSettings.from_env(env)

    assert "NANOGRID_QUEUE_URL" in str(excinfo.value)
