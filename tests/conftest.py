"""Shared fixtures: a real redis-server, moto in server mode (SQS and S3) and the Docker engine.

Each service starts once per session on a free loopback port and stops at the end. A missing
redis-server binary or Docker engine skips the tests that need it, except under CI=true, where
it fails them, because CI installs both.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
import redis

from nanogrid.stack import BUCKET_NAME, LOCAL_AWS_ENV, REGION, free_port

RUNTIME_IMAGE = os.environ.get("NANOGRID_TEST_RUNTIME_IMAGE", "nanogrid/python:3.11")
SERVICE_START_TIMEOUT_S = 30
IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose dependency is missing. Under CI=true, fail it instead, because CI provides it."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def wait_for_port(port: int, process: subprocess.Popen, name: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} at start; see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {SERVICE_START_TIMEOUT_S} s; see {log_path}")


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("redis-server is not installed; install it with: apt-get install -y redis-server")
    return binary


@pytest.fixture(scope="session")
def redis_url(redis_server_binary, tmp_path_factory) -> str:
    """URL of a redis-server started for this session, without persistence."""
    binary = redis_server_binary
    port = free_port()
    data_dir = tmp_path_factory.mktemp("redis")
    log_path = data_dir / "redis.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, "redis-server", log_path)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


@pytest.fixture
def redis_client(redis_url) -> redis.Redis:
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=10)
    yield client
    client.close()


# -- moto (SQS and S3) -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory) -> str:
    """URL of a moto server started for this session.

    The fake credentials and AWS_ENDPOINT_URL go into os.environ for the whole session,
    because the controller and the worker build their boto3 clients from the environment.
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LOCAL_AWS_ENV.items():
            patch.setenv(name, value)
        patch.setenv("AWS_ENDPOINT_URL", url)
        try:
            wait_for_port(port, process, "moto server", log_path)
            yield url
        finally:
            stop_process(process)


@pytest.fixture(scope="session")
def aws_session(moto_url) -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture(scope="session")
def sqs_client(aws_session, moto_url):
    return aws_session.client("sqs", endpoint_url=moto_url)


@pytest.fixture(scope="session")
def s3_client(aws_session, moto_url):
    return aws_session.client("s3", endpoint_url=moto_url)


@pytest.fixture(scope="session")
def code_bucket(s3_client) -> str:
    s3_client.create_bucket(Bucket=BUCKET_NAME)
    return BUCKET_NAME


@pytest.fixture(scope="session")
def dead_letter_queue_arn(sqs_client) -> str:
    url = sqs_client.create_queue(QueueName="nanogrid-test-dlq")["QueueUrl"]
    return sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture
def queue_url(sqs_client, dead_letter_queue_arn) -> str:
    """A job queue for this test alone, with a redrive policy to the session's DLQ.

    A queue per test keeps a message one test leaves behind from reaching another test's worker.
    """
    redrive = {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": "5"}
    url = sqs_client.create_queue(
        QueueName=f"nanogrid-test-{uuid.uuid4().hex[:12]}",
        Attributes={"VisibilityTimeout": "30", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    yield url
    sqs_client.delete_queue(QueueUrl=url)


# -- Docker ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_client():
    import docker
    import docker.errors
    import requests.exceptions

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        skip_or_fail(f"Docker engine not reachable: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def runtime_image(docker_client) -> str:
    """Name of the python3.11 runtime image, checked to exist in the engine."""
    import docker.errors

    try:
        docker_client.images.get(RUNTIME_IMAGE)
    except docker.errors.ImageNotFound:
        skip_or_fail(f"runtime image {RUNTIME_IMAGE} not found; build it with scripts/build-runtime-image.sh")
    return RUNTIME_IMAGE


# -- worker agent ----------------------------------------------------------------------------


@pytest.fixture
def worker_cache_dir():
    """A short cache folder: the warm pool binds Unix sockets below it, and a socket path may
    have at most 107 bytes on Linux, which a folder below pytest's tmp_path can exceed."""
    folder = Path(tempfile.mkdtemp(prefix="ngw-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def worker_settings(redis_url, queue_url, code_bucket, runtime_image, worker_cache_dir):
    from worker_agent.settings import WorkerSettings

    cache_dir = worker_cache_dir
    return WorkerSettings(
        redis_url=redis_url,
        queue_url=queue_url,
        code_bucket=code_bucket,
        worker_id=f"test-worker-{uuid.uuid4().hex[:8]}",
        concurrency=2,
        cache_dir=cache_dir,
        runtime_images={"python3.11": runtime_image},
        # Short polls, so the agent notices stop() within a second.
        poll_wait_s=1,
        visibility_timeout_s=30,
        stop_grace_s=20,
    )


class RunningAgent:
    """An Agent running run_forever() in a thread."""

    def __init__(self, agent, thread: threading.Thread):
        self.agent = agent
        self.thread = thread

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(timeout=60)


@pytest.fixture
def start_agent(worker_settings, moto_url, docker_client):
    """Start an in-process worker agent on the test's queue; it stops at the end of the test.

    build_agent makes the same clients as the worker process, from the environment that
    moto_url sets up.
    """
    from worker_agent.__main__ import build_agent
    from worker_agent.sandbox import LABEL_MANAGED, LABEL_WORKER_ID

    started: list[RunningAgent] = []

    def start() -> RunningAgent:
        agent = build_agent(worker_settings)
        thread = threading.Thread(target=agent.run_forever, name="test-agent", daemon=True)
        thread.start()
        running = RunningAgent(agent, thread)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
    for running in started:
        assert not running.thread.is_alive(), "the worker agent did not stop within 60 s"
    filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_WORKER_ID}={worker_settings.worker_id}"]}
    assert docker_client.containers.list(all=True, ignore_removed=True, filters=filters) == [], "the stopped agent left containers"
