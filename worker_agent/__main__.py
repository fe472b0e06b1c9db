"""Start the worker agent: ``python -m worker_agent`` or ``nanogrid-worker``."""

from __future__ import annotations

import logging
import os
import signal
import sys

import boto3
import docker
import redis
from botocore.config import Config

from worker_agent import logs
from worker_agent.agent import Agent
from worker_agent.code_cache import CodeCache
from worker_agent.errors import SettingsError
from worker_agent.inputs import InputLoader
from worker_agent.results import ResultStore
from worker_agent.runner import RUNTIME_COMMANDS, FunctionRunner
from worker_agent.sandbox import LABEL_WORKER_ID, Sandbox
from worker_agent.warm import ContainerPool, PoolSettings
from worker_agent.settings import WorkerSettings

logger = logging.getLogger("worker_agent")


def build_agent(settings: WorkerSettings) -> Agent:
    # The read timeout must outlast the long poll, or botocore cuts every empty receive short.
    sqs_config = Config(
        connect_timeout=5,
        read_timeout=settings.poll_wait_s + 10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    sqs = boto3.client("sqs", config=sqs_config)
    s3 = boto3.client("s3", config=Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard"}))
    redis_client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=30
    )
    docker_client = docker.from_env(timeout=60)

    code_cache = CodeCache(s3, settings.code_bucket, settings.cache_dir)
    sandbox = Sandbox(docker_client, settings.cache_dir / "runs")
    runner = FunctionRunner(settings, code_cache, InputLoader(s3, settings.code_bucket), sandbox, build_pool(settings, docker_client))
    return Agent(settings, sqs, ResultStore(redis_client), runner, docker_client)


def build_pool(settings: WorkerSettings, docker_client) -> ContainerPool | None:
    if settings.warm_idle_s == 0:
        return None
    pool_settings = PoolSettings(
        idle_s=settings.warm_idle_s,
        prewarm_per_runtime=settings.prewarm_per_runtime,
        memory_budget_mb=settings.memory_budget_mb,
        prewarm_memory_mb=settings.prewarm_memory_mb,
        tmp_size_mb=settings.tmp_size_mb,
        cpus=settings.cpus,
        pids_limit=settings.pids_limit,
        worker_labels={LABEL_WORKER_ID: settings.worker_id},
    )
    commands = {name: runtime.resident_command for name, runtime in RUNTIME_COMMANDS.items()}
    return ContainerPool(docker_client, settings.cache_dir / "resident", pool_settings, settings.runtime_images, commands)


def main() -> int:
    try:
        settings = WorkerSettings.from_env()
    except SettingsError as exc:
        print(f"nanogrid-worker: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.worker_id, os.environ.get("NANOGRID_LOG_LEVEL", "INFO"))

    agent = build_agent(settings)

    def on_signal(signum, _frame):
        if agent_stopping[0]:
            logger.warning("second stop signal; exiting now", extra={"signal": signum})
            os._exit(1)
        agent_stopping[0] = True
        logger.info("stop signal received; finishing runs in flight", extra={"signal": signum})
        agent.stop()

    agent_stopping = [False]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
