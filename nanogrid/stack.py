"""The local stack: Redis, moto (SQS and S3), the worker agent and the local HTTP front, on loopback.

Every part is a real process. `nanogrid up` runs one in the foreground; the end-to-end tests
start one on free ports and stop it afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3

REPO_ROOT = Path(__file__).resolve().parent.parent
QUEUE_NAME = "nanogrid-jobs"
DEAD_LETTER_QUEUE_NAME = "nanogrid-jobs-dlq"
BUCKET_NAME = "nanogrid-code"
REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
START_TIMEOUT_S = 30


class StackError(Exception):
    """A part of the local stack failed to start. The message names the part and what to do."""


@dataclass
class StackConfig:
    state_dir: Path = REPO_ROOT / ".nanogrid"
    host: str = "127.0.0.1"
    redis_port: int = 6399
    moto_port: int = 5055
    front_port: int = 8080
    worker_concurrency: int = 4
    visibility_timeout_s: int = 60
    max_receive_count: int = 5
    runtime_images: str = ""
    api_key: str = ""
    extra_worker_env: dict[str, str] = field(default_factory=dict)

    @property
    def front_url(self) -> str:
        return f"http://{self.host}:{self.front_port}"

    @property
    def moto_url(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalStack:
    def __init__(self, config: StackConfig):
        self.config = config
        self.queue_url = ""
        self._processes: list[tuple[str, subprocess.Popen]] = []

    # -- start -----------------------------------------------------------------------------

    def start(self) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_redis()
            self._start_moto()
            self._create_queue_and_bucket()
            self._start_worker()
            self._start_front()
        except BaseException:
            self.stop()
            raise

    def _start_redis(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise StackError("redis-server is not installed; install it with: apt-get install -y redis-server")
        data_dir = self.config.state_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("redis", [
            redis_server, "--bind", self.config.host, "--port", str(self.config.redis_port),
            "--save", "", "--appendonly", "no", "--dir", str(data_dir),
        ])
        self._wait_for_port("redis", self.config.redis_port)

    def _start_moto(self) -> None:
        self._spawn("moto", [sys.executable, "-m", "moto.server", "-H", self.config.host, "-p", str(self.config.moto_port)])
        self._wait_for_port("moto", self.config.moto_port)

    def _create_queue_and_bucket(self) -> None:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        sqs = session.client("sqs", endpoint_url=self.config.moto_url)
        s3 = session.client("s3", endpoint_url=self.config.moto_url)
        dlq_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.config.max_receive_count)}
        self.queue_url = sqs.create_queue(
            QueueName=QUEUE_NAME,
            Attributes={
                "VisibilityTimeout": str(self.config.visibility_timeout_s),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        s3.create_bucket(Bucket=BUCKET_NAME)

    def _start_worker(self) -> None:
        env = {
            **self._service_env(),
            "NANOGRID_WORKER_ID": f"local-worker-{self.config.front_port}",
            "NANOGRID_CONCURRENCY": str(self.config.worker_concurrency),
            "NANOGRID_CACHE_DIR": str(self.config.state_dir / "worker-cache"),
            "NANOGRID_VISIBILITY_TIMEOUT_S": str(self.config.visibility_timeout_s),
            # The worker checks for a stop only between SQS receives. A 20 s long poll outlasts
            # the 15 s that stop() grants before SIGKILL, so the local worker polls for 5 s.
            "NANOGRID_POLL_WAIT_S": "5",
            **self.config.extra_worker_env,
        }
        if self.config.runtime_images:
            env["NANOGRID_RUNTIME_IMAGES"] = self.config.runtime_images
        self._spawn("worker", [sys.executable, "-m", "worker_agent"], env=env)

    def _start_front(self) -> None:
        env = {
            **self._service_env(),
            "NANOGRID_FRONT_HOST": self.config.host,
            "NANOGRID_FRONT_PORT": str(self.config.front_port),
            "NANOGRID_API_KEY": self.config.api_key,
            # Without a key the front serves anyone who can reach it, so only on loopback.
            "NANOGRID_ALLOW_ANONYMOUS": "1" if not self.config.api_key and self.config.host.startswith("127.") else "0",
            "POWERTOOLS_SERVICE_NAME": "nanogrid-controller",
        }
        self._spawn("controller", [sys.executable, "-m", "nanogrid.local_front"], env=env)
        self._wait_for_port("controller", self.config.front_port)

    def _service_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **LOCAL_AWS_ENV,
            "AWS_ENDPOINT_URL": self.config.moto_url,
            "NANOGRID_REDIS_URL": self.config.redis_url,
            "NANOGRID_QUEUE_URL": self.queue_url,
            "NANOGRID_CODE_BUCKET": BUCKET_NAME,
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.config.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True
        )
        log.close()
        self._processes.append((name, process))

    def _wait_for_port(self, name: str, port: int) -> None:
        process = dict(self._processes)[name]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise StackError(f"{name} exited with code {process.returncode} at start; see {self.config.log_dir / (name + '.log')}")
            try:
                with socket.create_connection((self.config.host, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise StackError(f"{name} did not listen on {self.config.host}:{port} within {START_TIMEOUT_S} s")

    # -- use -------------------------------------------------------------------------------

    def register_examples(self, examples_dir: Path = REPO_ROOT / "examples") -> list[str]:
        """Register every folder of examples_dir that has a main.py, through the HTTP API."""
        from nanogrid.client import Client, read_function_folder

        client = Client(self.config.front_url, self.config.api_key)
        registered = []
        for folder in sorted(examples_dir.iterdir()):
            if (folder / "main.py").is_file():
                function_id, upload = read_function_folder(folder)
                client.put_function(function_id, upload)
                registered.append(function_id)
        return registered

    def processes_alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self._processes}

    # -- stop ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process, newest first: SIGTERM, then SIGKILL after a grace period."""
        for name, process in reversed(self._processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15 if name == "worker" else 5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()


def wait_until_healthy(url: str, timeout_s: float = START_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
            time.sleep(0.2)
    raise StackError(f"{url}/health did not respond within {timeout_s} s: {last_error}")
