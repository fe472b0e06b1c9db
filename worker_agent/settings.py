"""Worker settings, read once from the environment into a frozen object."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from nanogrid_protocol.runtimes import PYTHON_3_11, RUNTIME_NAMES

from worker_agent.errors import SettingsError

ENV_REDIS_URL = "NANOGRID_REDIS_URL"
ENV_QUEUE_URL = "NANOGRID_QUEUE_URL"
ENV_CODE_BUCKET = "NANOGRID_CODE_BUCKET"
ENV_WORKER_ID = "NANOGRID_WORKER_ID"
ENV_CONCURRENCY = "NANOGRID_CONCURRENCY"
ENV_CACHE_DIR = "NANOGRID_CACHE_DIR"
ENV_RUNTIME_IMAGES = "NANOGRID_RUNTIME_IMAGES"
ENV_PIDS_LIMIT = "NANOGRID_PIDS_LIMIT"
ENV_TMP_SIZE_MB = "NANOGRID_TMP_SIZE_MB"
ENV_CPUS = "NANOGRID_CPUS"
ENV_WARM_IDLE_S = "NANOGRID_WARM_IDLE_S"
ENV_PREWARM_PER_RUNTIME = "NANOGRID_PREWARM_PER_RUNTIME"
ENV_MEMORY_BUDGET_MB = "NANOGRID_MEMORY_BUDGET_MB"
ENV_PREWARM_MEMORY_MB = "NANOGRID_PREWARM_MEMORY_MB"
ENV_POLL_WAIT_S = "NANOGRID_POLL_WAIT_S"
ENV_VISIBILITY_TIMEOUT_S = "NANOGRID_VISIBILITY_TIMEOUT_S"
ENV_STOP_GRACE_S = "NANOGRID_STOP_GRACE_S"

DEFAULT_RUNTIME_IMAGES = {PYTHON_3_11: "nanogrid/python:3.11"}
# SQS allows long polls of 1 to 20 s.
MAX_POLL_WAIT_S = 20


def default_worker_id() -> str:
    """Return the host name, which is stable across restarts, so a restarted worker finds and removes the
    containers it left behind. Set NANOGRID_WORKER_ID when one host runs several workers."""
    return socket.gethostname()


@dataclass(frozen=True)
class WorkerSettings:
    redis_url: str
    queue_url: str
    code_bucket: str
    worker_id: str = field(default_factory=default_worker_id)
    concurrency: int = 2
    cache_dir: Path = Path("/var/cache/nanogrid")
    runtime_images: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RUNTIME_IMAGES))
    pids_limit: int = 64
    tmp_size_mb: int = 64
    # CPUs one container may use, so a busy or forking function cannot starve the other runs.
    cpus: float = 1.0
    poll_wait_s: int = MAX_POLL_WAIT_S
    # Seconds a received message stays hidden from other workers while this one runs it.
    visibility_timeout_s: int = 60
    stop_grace_s: int = 30
    # Seconds an idle warm container is kept for the next run of its function version; 0 starts
    # a new container for every run and removes it afterwards.
    warm_idle_s: int = 300
    # Started containers per runtime that wait, holding no function yet, for a first run.
    prewarm_per_runtime: int = 1
    # Memory limits of all containers of this worker, busy or idle, added up; idle ones are
    # evicted, least recently used first, to stay under it.
    memory_budget_mb: int = 2048
    prewarm_memory_mb: int = 128

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WorkerSettings:
        env = dict(os.environ if env is None else env)
        values: dict = {
            "redis_url": _required(env, ENV_REDIS_URL),
            "queue_url": _required(env, ENV_QUEUE_URL),
            "code_bucket": _required(env, ENV_CODE_BUCKET),
        }
        if env.get(ENV_WORKER_ID):
            values["worker_id"] = env[ENV_WORKER_ID]
        if env.get(ENV_CACHE_DIR):
            values["cache_dir"] = Path(env[ENV_CACHE_DIR])
        if env.get(ENV_RUNTIME_IMAGES):
            values["runtime_images"] = parse_runtime_images(env[ENV_RUNTIME_IMAGES])
        int_settings = {
            ENV_CONCURRENCY: ("concurrency", 1, 64),
            ENV_PIDS_LIMIT: ("pids_limit", 8, 4096),
            ENV_TMP_SIZE_MB: ("tmp_size_mb", 1, 10_240),
            ENV_POLL_WAIT_S: ("poll_wait_s", 1, MAX_POLL_WAIT_S),
            ENV_VISIBILITY_TIMEOUT_S: ("visibility_timeout_s", 5, 43_200),
            ENV_STOP_GRACE_S: ("stop_grace_s", 0, 3600),
            ENV_WARM_IDLE_S: ("warm_idle_s", 0, 86_400),
            ENV_PREWARM_PER_RUNTIME: ("prewarm_per_runtime", 0, 64),
            ENV_MEMORY_BUDGET_MB: ("memory_budget_mb", 32, 1_048_576),
            ENV_PREWARM_MEMORY_MB: ("prewarm_memory_mb", 32, 4096),
        }
        if env.get(ENV_CPUS):
            values["cpus"] = _cpus(env[ENV_CPUS])
        for key, (name, low, high) in int_settings.items():
            if env.get(key):
                values[name] = _int_in_range(key, env[key], low, high)
        return cls(**values)


def parse_runtime_images(text: str) -> dict[str, str]:
    """Parse ``python3.11=IMAGE[,NAME=IMAGE...]`` over the defaults."""
    images = dict(DEFAULT_RUNTIME_IMAGES)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, image = item.partition("=")
        if not sep or not image:
            raise SettingsError(ENV_RUNTIME_IMAGES, text, "expected NAME=IMAGE pairs separated by commas")
        if name not in RUNTIME_NAMES:
            raise SettingsError(ENV_RUNTIME_IMAGES, text, f"unknown runtime {name!r}; known: {', '.join(RUNTIME_NAMES)}")
        images[name] = image
    return images


def _required(env: dict[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise SettingsError(key, value, "it is required")
    return value


def _cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(ENV_CPUS, text, "expected a number of CPUs such as 1 or 0.5") from None
    if not 0.01 <= value <= 64:
        raise SettingsError(ENV_CPUS, text, "expected a value from 0.01 to 64")
    return value


def _int_in_range(key: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(key, text, "expected a whole number") from None
    if not low <= value <= high:
        raise SettingsError(key, text, f"expected a value from {low} to {high}")
    return value
