"""Fixtures for the fault tests: a Redis that can restart on its port, a TCP proxy that can
freeze or close, queues with short visibility timeouts, and worker and controller processes.

They build on the session's moto server and Docker engine from tests/conftest.py. Every process,
queue and container started here stops or goes at the end of its test.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis

from nanogrid.client import http_json  # noqa: F401 - the fault tests import it from here
from nanogrid.stack import REPO_ROOT, free_port
from tests.conftest import skip_or_fail, stop_process, wait_for_port

# The message the worker logs once per execution, with the requestId.
RUN_STARTED = "run started"
# A handler that sleeps inputData.sleepS seconds, to keep a run in flight while a fault hits.
SLEEP_SOURCE = (
    "import time\n"
    "def handler(event, context):\n"
    "    time.sleep(event.get('sleepS', 0))\n"
    "    return {'slept': event.get('sleepS', 0)}\n"
)


# -- Redis that restarts on the same port ----------------------------------------------------


class RestartableRedis:
    """A redis-server on a fixed loopback port. restart() saves an RDB snapshot at shutdown and
    loads it at start, as a Redis with persistence does, so stored results survive."""

    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            skip_or_fail("redis-server is not installed; install it with: apt-get install -y redis-server")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.process, "redis-server", self.log_path)

    def stop(self) -> None:
        """Shut down with an RDB save, the way a Redis with persistence stops."""
        if self.process is None or self.process.poll() is not None:
            return
        client = self.client()
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection before it replies.
        finally:
            client.close()
        self.process.wait(timeout=10)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)


@pytest.fixture
def fault_redis(tmp_path) -> RestartableRedis:
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    server = RestartableRedis(data_dir)
    server.start()
    yield server
    server.close()


# -- TCP proxy on loopback -------------------------------------------------------------------


class TcpProxy:
    """Forwards a loopback port to another. freeze() stops moving bytes on the open connections
    without closing them, which looks like a half-open connection to both ends; close_port()
    closes the listening socket and every connection, so new connections are refused."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def open_port(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()

    def close_port(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the
            # port listening until that call returns.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        self.drop_connections()

    def drop_connections(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream, _frozen in pairs:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def freeze(self) -> int:
        """Stop forwarding on every open connection; return how many were frozen."""
        with self._lock:
            for _client, _upstream, frozen in self._pairs:
                frozen.set()
            return len(self._pairs)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            frozen = threading.Event()
            with self._lock:
                self._pairs.append((client, upstream, frozen))
            threading.Thread(target=self._pump, args=(client, upstream, frozen), daemon=True).start()

    @staticmethod
    def _pump(client: socket.socket, upstream: socket.socket, frozen: threading.Event) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                if frozen.is_set():
                    # Read nothing and send nothing: both ends wait on a connection that looks alive.
                    time.sleep(0.1)
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            if not frozen.is_set():
                client.close()
                upstream.close()


@pytest.fixture
def tcp_proxy():
    proxies: list[TcpProxy] = []

    def start(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        proxy.open_port()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close_port()


# -- queues ----------------------------------------------------------------------------------


class FaultQueue:
    def __init__(self, url: str, dlq_url: str):
        self.url = url
        self.dlq_url = dlq_url


@pytest.fixture
def make_queue(sqs_client):
    """Create a job queue with its own DLQ; both go at the end of the test."""
    created: list[str] = []

    def make(visibility_timeout_s: int = 30, max_receive_count: int = 5) -> FaultQueue:
        name = f"nanogrid-fault-{uuid.uuid4().hex[:12]}"
        dlq_url = sqs_client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs_client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        url = sqs_client.create_queue(
            QueueName=name,
            Attributes={"VisibilityTimeout": str(visibility_timeout_s), "RedrivePolicy": json.dumps(redrive)},
        )["QueueUrl"]
        created.extend([url, dlq_url])
        return FaultQueue(url, dlq_url)

    yield make
    for url in created:
        sqs_client.delete_queue(QueueUrl=url)


# -- worker and controller processes ---------------------------------------------------------


class ServiceProcess:
    def __init__(self, name: str, process: subprocess.Popen, log_path: Path, worker_id: str | None = None, port: int | None = None):
        self.name = name
        self.process = process
        self.log_path = log_path
        self.worker_id = worker_id
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict):
                lines.append(entry)
        return lines

    def wait_for_log(self, message: str, timeout_s: float, **fields) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for entry in self.log_lines():
                if entry.get("message") == message and all(entry.get(k) == v for k, v in fields.items()):
                    return entry
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not log {message!r} with {fields} within {timeout_s} s; see {self.log_path}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)


class Services:
    """Starts worker agents and local HTTP fronts as processes, the way the local stack does."""

    def __init__(self, tmp_path: Path, runtime_image: str, code_bucket: str, docker_client):
        self._tmp_path = tmp_path
        self._runtime_image = runtime_image
        self._code_bucket = code_bucket
        self._docker = docker_client
        self.started: list[ServiceProcess] = []
        self._cache_dirs: list[Path] = []

    def _env(self, redis_url: str, queue_url: str, extra: dict[str, str]) -> dict[str, str]:
        return {
            **os.environ,
            "NANOGRID_REDIS_URL": redis_url,
            "NANOGRID_QUEUE_URL": queue_url,
            "NANOGRID_CODE_BUCKET": self._code_bucket,
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def _spawn(self, name: str, command: list[str], env: dict[str, str], **attrs) -> ServiceProcess:
        log_path = self._tmp_path / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True)
        service = ServiceProcess(name, process, log_path, **attrs)
        self.started.append(service)
        return service

    def worker(self, redis_url: str, queue_url: str, worker_id: str | None = None, env: dict[str, str] | None = None,
               **settings) -> ServiceProcess:
        """Start `python -m worker_agent`. settings are NANOGRID_* names without the prefix, in
        lower case; env adds other variables, such as AWS_ENDPOINT_URL_SQS."""
        worker_id = worker_id or f"fault-worker-{uuid.uuid4().hex[:8]}"
        # A short path: the worker binds Unix sockets under its cache folder, and a socket path
        # may hold at most 107 bytes on Linux.
        cache_dir = Path(tempfile.mkdtemp(prefix="ngf-", dir="/tmp"))
        self._cache_dirs.append(cache_dir)
        extra = {
            "NANOGRID_WORKER_ID": worker_id,
            "NANOGRID_CACHE_DIR": str(cache_dir),
            "NANOGRID_RUNTIME_IMAGES": f"python3.11={self._runtime_image}",
            "NANOGRID_POLL_WAIT_S": "1",
            "NANOGRID_CONCURRENCY": "2",
        }
        extra.update({f"NANOGRID_{key.upper()}": str(value) for key, value in settings.items()})
        extra.update(env or {})
        name = f"worker-{worker_id}-{len(self.started)}"
        service = self._spawn(name, [sys.executable, "-m", "worker_agent"], self._env(redis_url, queue_url, extra), worker_id=worker_id)
        service.wait_for_log("worker started", timeout_s=30)
        return service

    def front(self, redis_url: str, queue_url: str, **env) -> ServiceProcess:
        """Start the local HTTP front with the controller handler; env adds or overrides variables."""
        port = free_port()
        extra = {
            "NANOGRID_FRONT_HOST": "127.0.0.1",
            "NANOGRID_FRONT_PORT": str(port),
            "NANOGRID_ALLOW_ANONYMOUS": "1",
            "NANOGRID_API_KEY": "",
            "POWERTOOLS_SERVICE_NAME": "nanogrid-controller",
            **env,
        }
        service = self._spawn(f"front-{port}", [sys.executable, "-m", "nanogrid.local_front"], self._env(redis_url, queue_url, extra), port=port)
        wait_for_port(port, service.process, "local front", service.log_path)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.started):
            if service.process.poll() is None:
                service.process.kill()
                service.process.wait(timeout=10)
        worker_ids = {service.worker_id for service in self.started if service.worker_id}
        from worker_agent.sandbox import LABEL_WORKER_ID, remove_container

        for worker_id in worker_ids:
            for container in self._docker.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_WORKER_ID}={worker_id}"}):
                remove_container(container)
        for cache_dir in self._cache_dirs:
            shutil.rmtree(cache_dir, ignore_errors=True)


@pytest.fixture
def services(tmp_path, runtime_image, code_bucket, docker_client, moto_url) -> Services:
    started = Services(tmp_path, runtime_image, code_bucket, docker_client)
    yield started
    started.stop_all()


def run_starts(workers: list[ServiceProcess]) -> Counter:
    """Executions per requestId, counted from the workers' "run started" log lines."""
    counts: Counter = Counter()
    for worker in workers:
        for entry in worker.log_lines():
            if entry.get("message") == RUN_STARTED:
                counts[entry.get("requestId")] += 1
    return counts


# -- HTTP ------------------------------------------------------------------------------------


def wait_for_final(front_url: str, request_id: str, timeout_s: float = 90) -> dict:
    """Poll GET /runs/{requestId} until it returns a final result."""
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while time.monotonic() < deadline:
        status, body = http_json("GET", f"{front_url}/runs/{request_id}")
        if status == 200 and body.get("status") not in ("QUEUED", "RUNNING"):
            return body
        time.sleep(0.25)
    raise AssertionError(f"run {request_id} had no final result within {timeout_s} s; last answer {body}")


def send_signal_to(service: ServiceProcess, signum: int = signal.SIGKILL) -> None:
    service.process.send_signal(signum)
    if signum == signal.SIGKILL:
        service.process.wait(timeout=10)
