"""Range edges of every worker and controller setting that sets a limit: the edge values are
accepted, one step past them is rejected with a message naming the range."""

import pytest
from nanogrid_controller.settings import ControllerSettings
from nanogrid_controller.settings import SettingsError as ControllerSettingsError
from worker_agent.errors import SettingsError
from worker_agent.settings import WorkerSettings

REQUIRED = {
    "NANOGRID_REDIS_URL": "redis://127.0.0.1:1/0",
    "NANOGRID_QUEUE_URL": "http://127.0.0.1:1/000000000000/q",
    "NANOGRID_CODE_BUCKET": "bucket",
}

# Environment variable, attribute, lowest and highest accepted value.
WORKER_RANGES = [
    ("NANOGRID_CONCURRENCY", "concurrency", 1, 64),
    ("NANOGRID_PIDS_LIMIT", "pids_limit", 8, 4096),
    ("NANOGRID_TMP_SIZE_MB", "tmp_size_mb", 1, 10_240),
    ("NANOGRID_POLL_WAIT_S", "poll_wait_s", 1, 20),
    ("NANOGRID_VISIBILITY_TIMEOUT_S", "visibility_timeout_s", 5, 43_200),
    ("NANOGRID_STOP_GRACE_S", "stop_grace_s", 0, 3600),
    ("NANOGRID_WARM_IDLE_S", "warm_idle_s", 0, 86_400),
    ("NANOGRID_PREWARM_PER_RUNTIME", "prewarm_per_runtime", 0, 64),
    ("NANOGRID_MEMORY_BUDGET_MB", "memory_budget_mb", 32, 1_048_576),
    ("NANOGRID_PREWARM_MEMORY_MB", "prewarm_memory_mb", 32, 4096),
]


@pytest.mark.parametrize(("key", "name", "low", "high"), WORKER_RANGES, ids=[row[0] for row in WORKER_RANGES])
def test_worker_range_edges_accepted(key, name, low, high):
    at_low = WorkerSettings.from_env({**REQUIRED, key: str(low)})
    at_high = WorkerSettings.from_env({**REQUIRED, key: str(high)})

    assert getattr(at_low, name) == low
    assert getattr(at_high, name) == high


@pytest.mark.parametrize(("key", "name", "low", "high"), WORKER_RANGES, ids=[row[0] for row in WORKER_RANGES])
def test_worker_range_outside_rejected(key, name, low, high):
    messages = []
    for value in (low - 1, high + 1):
        with pytest.raises(SettingsError) as excinfo:
            WorkerSettings.from_env({**REQUIRED, key: str(value)})
        messages.append(str(excinfo.value))

    for message in messages:
        assert key in message
        assert f"from {low} to {high}" in message


def test_worker_defaults_match_docs():
    settings = WorkerSettings.from_env(REQUIRED)

    assert settings.concurrency == 2
    assert settings.pids_limit == 64
    assert settings.tmp_size_mb == 64
    assert settings.cpus == 1.0
    assert settings.poll_wait_s == 20
    assert settings.visibility_timeout_s == 60
    assert settings.stop_grace_s == 30
    assert settings.warm_idle_s == 300
    assert settings.prewarm_per_runtime == 1
    assert settings.memory_budget_mb == 2048
    assert settings.prewarm_memory_mb == 128


@pytest.mark.parametrize(("value", "accepted"), [("0.01", True), ("64", True), ("0.009", False), ("64.5", False)])
def test_worker_cpus_range(value, accepted):
    if accepted:
        assert WorkerSettings.from_env({**REQUIRED, "NANOGRID_CPUS": value}).cpus == float(value)
        return
    with pytest.raises(SettingsError) as excinfo:
        WorkerSettings.from_env({**REQUIRED, "NANOGRID_CPUS": value})

    assert "from 0.01 to 64" in str(excinfo.value)


def test_controller_margin_defaults():
    settings = ControllerSettings.from_env({**REQUIRED, "NANOGRID_API_KEY": "k"})

    assert settings.result_margin_ms == 3000
    assert settings.lambda_safety_ms == 1000


@pytest.mark.parametrize("key", ["NANOGRID_RESULT_MARGIN_MS", "NANOGRID_LAMBDA_SAFETY_MS"])
def test_controller_margin_zero_accepted_negative_rejected(key):
    settings = ControllerSettings.from_env({**REQUIRED, "NANOGRID_API_KEY": "k", key: "0"})
    with pytest.raises(ControllerSettingsError) as excinfo:
        ControllerSettings.from_env({**REQUIRED, "NANOGRID_API_KEY": "k", key: "-1"})

    assert getattr(settings, key.removeprefix("NANOGRID_").lower()) == 0
    assert "0 or more" in str(excinfo.value)
