"""The stack the benchmark measures, and the tools it measures with.

BenchStack starts nanogrid.stack.LocalStack (Redis, moto, the worker agent in warm mode and the
HTTP front) and, next to it, the floor: a second HTTP front running the same controller handler
on its own SQS queue, served by bench/noop_worker.py. Both share Redis, moto and the code bucket,
so one registered function runs through either path.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import docker
import docker.errors

from worker_agent.sandbox import LABEL_WORKER_ID, remove_container

from nanogrid.stack import BUCKET_NAME, LOCAL_AWS_ENV, REGION, LocalStack, StackConfig, StackError, free_port, wait_until_healthy

BENCH_DIR = Path(__file__).resolve().parent
FLOOR_QUEUE_NAME = "nanogrid-bench-floor"
# Jobs that the cold-start samples send and no worker reads.
COLD_INIT_QUEUE_NAME = "nanogrid-bench-cold-init"
PROCESS_STOP_TIMEOUT_S = 10


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@dataclass
class BenchConfig:
    worker_concurrency: int = 16
    # Memory limit of every container the bench function gets; prewarmed containers take only
    # functions of at least twice NANOGRID_TMP_SIZE_MB (64 MB by default).
    function_memory_mb: int = 128
    memory_budget_mb: int = 4096
    runtime_image: str = "nanogrid/python:3.11"
    state_dir: Path | None = None
    extra_worker_env: dict[str, str] = field(default_factory=dict)


class BenchStack:
    def __init__(self, config: BenchConfig):
        self.config = config
        self._own_state_dir = config.state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="nanogrid-bench-")) if config.state_dir is None else config.state_dir
        redis_port, moto_port, front_port, floor_port = distinct_free_ports(4)
        self.floor_port = floor_port
        self.stack_config = StackConfig(
            state_dir=self.state_dir,
            redis_port=redis_port,
            moto_port=moto_port,
            front_port=front_port,
            worker_concurrency=config.worker_concurrency,
            runtime_images=f"python3.11={config.runtime_image}",
            extra_worker_env={
                # A short long poll, so the worker stops within a second of SIGTERM.
                "NANOGRID_POLL_WAIT_S": "1",
                "NANOGRID_WARM_IDLE_S": "300",
                "NANOGRID_PREWARM_PER_RUNTIME": "1",
                "NANOGRID_MEMORY_BUDGET_MB": str(config.memory_budget_mb),
                **config.extra_worker_env,
            },
        )
        self.stack = LocalStack(self.stack_config)
        self.worker_id = f"local-worker-{front_port}"
        self.floor_queue_url = ""
        self.cold_init_queue_url = ""
        self._floor_processes: list[tuple[str, subprocess.Popen]] = []
        # The worker's pool counters, read from its log by stop().
        self.pool_metrics: dict | None = None

    @property
    def resident_dir(self) -> Path:
        """Where the worker keeps the folders of its resident containers (warm.ContainerPool)."""
        return self.state_dir / "worker-cache" / "resident"

    @property
    def product_url(self) -> str:
        return self.stack_config.front_url

    @property
    def floor_url(self) -> str:
        return f"http://127.0.0.1:{self.floor_port}"

    def start(self) -> None:
        try:
            self.stack.start()
            wait_until_healthy(self.product_url)
            sqs = self._sqs()
            self.floor_queue_url = sqs.create_queue(QueueName=FLOOR_QUEUE_NAME)["QueueUrl"]
            self.cold_init_queue_url = sqs.create_queue(QueueName=COLD_INIT_QUEUE_NAME)["QueueUrl"]
            floor_env = self.controller_env(self.floor_queue_url)
            self._spawn("noop-worker", [sys.executable, str(BENCH_DIR / "noop_worker.py")], {
                **floor_env, "NANOGRID_CONCURRENCY": str(self.config.worker_concurrency), "NANOGRID_POLL_WAIT_S": "1",
            })
            self._spawn("floor-controller", [sys.executable, "-m", "nanogrid.local_front"], {
                **floor_env, "NANOGRID_FRONT_HOST": "127.0.0.1", "NANOGRID_FRONT_PORT": str(self.floor_port),
            })
            wait_until_healthy(self.floor_url)
        except BaseException:
            self.stop()
            raise

    def controller_env(self, queue_url: str) -> dict[str, str]:
        """Return the environment that LocalStack gives its controller, with another queue."""
        return {
            **os.environ,
            **LOCAL_AWS_ENV,
            "AWS_ENDPOINT_URL": self.stack_config.moto_url,
            "NANOGRID_REDIS_URL": self.stack_config.redis_url,
            "NANOGRID_QUEUE_URL": queue_url,
            "NANOGRID_CODE_BUCKET": BUCKET_NAME,
            "NANOGRID_ALLOW_ANONYMOUS": "1",
            "POWERTOOLS_SERVICE_NAME": "nanogrid-controller",
            "PYTHONUNBUFFERED": "1",
        }

    def _sqs(self):
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        return session.client("sqs", endpoint_url=self.stack_config.moto_url)

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log_dir = self.stack_config.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=BENCH_DIR.parent, start_new_session=True)
        self._floor_processes.append((name, process))

    def pids(self) -> dict[str, int]:
        """Process ids of the product worker and controller, their floor counterparts, moto and Redis."""
        found = {name: process.pid for name, process in self._floor_processes if process.poll() is None}
        for pid in _child_pids(os.getpid()):
            command = _read_proc(pid, "cmdline").replace(b"\0", b" ")
            if b"-m worker_agent" in command:
                found["worker"] = pid
            elif b"-m nanogrid.local_front" in command and pid not in found.values():
                found["controller"] = pid
            elif b"moto.server" in command:
                found["moto"] = pid
            elif b"redis-server" in command:
                found["redis"] = pid
        return found

    def worker_pool_metrics(self) -> dict | None:
        """Return the pool counters the worker logged when it stopped, or None if it logged none."""
        log_path = self.stack_config.log_dir / "worker.log"
        if not log_path.is_file():
            return None
        metrics = None
        for line in log_path.read_text(errors="replace").splitlines():
            if '"worker stopped"' in line:
                try:
                    metrics = json.loads(line).get("pool")
                except ValueError:
                    continue
        return metrics

    def stop(self) -> list[str]:
        """Stop every process and remove every container this bench started; return the ids of
        containers the worker left behind and that were removed here."""
        for _name, process in reversed(self._floor_processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=PROCESS_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._floor_processes.clear()
        try:
            self.stack.stop()
            # Read the worker's log before its state folder is removed.
            self.pool_metrics = self.worker_pool_metrics()
            return remove_worker_containers(self.worker_id)
        finally:
            if self._own_state_dir:
                shutil.rmtree(self.state_dir, ignore_errors=True)


def remove_worker_containers(worker_id: str) -> list[str]:
    """Remove containers labelled with worker_id: a worker killed at its stop deadline leaves
    its warm containers behind."""
    try:
        client = docker.from_env(timeout=30)
    except docker.errors.DockerException:
        return []
    removed = []
    with closing(client):
        for container in client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_WORKER_ID}={worker_id}"}):
            remove_container(container)
            removed.append(container.id[:12])
    return removed


def _child_pids(parent_pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read_proc(int(entry), "stat")
        # The command name in brackets may contain spaces; the fields after it do not.
        fields = stat.rpartition(b")")[2].split()
        if len(fields) > 1 and int(fields[1]) == parent_pid:
            children.append(int(entry))
    return children


def _read_proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process from /proc/PID/status, in MiB."""
    for line in _read_proc(pid, "status").decode(errors="replace").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def cpu_ms(pid: int) -> float | None:
    """User and system CPU time a process has used, from /proc/PID/stat, in milliseconds."""
    stat = _read_proc(pid, "stat")
    if not stat:
        return None
    fields = stat.rpartition(b")")[2].split()
    # utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def machine_busy_ms() -> float:
    """CPU time all CPUs of the machine spent outside idle and iowait, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) * 1000 / os.sysconf("SC_CLK_TCK")


def container_cpu_ms(resident_dir: Path) -> dict[str, float]:
    """CPU time of each resident container of one worker, by container name, in milliseconds.

    Reads cpuacct.usage of the parent cgroup that worker_agent.cgroups gives each container
    (cgroup v1 with the cgroupfs driver); returns nothing on other layouts."""
    usage = {}
    for folder in resident_dir.glob("ng-*"):
        path = Path("/sys/fs/cgroup/cpuacct/nanogrid") / folder.name / "cpuacct.usage"
        try:
            usage[folder.name] = int(path.read_text()) / 1e6
        except (OSError, ValueError):
            continue
    return usage


class CpuMeter:
    """CPU time used by each named process, by the worker's resident containers and by the
    whole machine between start() and stop(), in milliseconds."""

    def __init__(self, pids: dict[str, int], resident_dir: Path | None = None):
        self._pids = pids
        self._resident_dir = resident_dir
        self._before: dict[str, float | None] = {}
        self._containers_before: dict[str, float] = {}

    def start(self) -> None:
        self._before = self._processes()
        self._containers_before = container_cpu_ms(self._resident_dir) if self._resident_dir else {}

    def stop(self) -> dict[str, float | None]:
        after = self._processes()
        used = {
            name: None if self._before.get(name) is None or after[name] is None else after[name] - self._before[name]
            for name in after
        }
        if self._resident_dir is not None:
            containers_after = container_cpu_ms(self._resident_dir)
            # Only containers alive at both ends count; the warm pool keeps them during a level.
            common = containers_after.keys() & self._containers_before.keys()
            used["containers"] = sum(containers_after[name] - self._containers_before[name] for name in common) if common else None
        return used

    def _processes(self) -> dict[str, float | None]:
        return {name: cpu_ms(pid) for name, pid in self._pids.items()} | {"machine": machine_busy_ms()}


# -- HTTP calls ------------------------------------------------------------------------------


class ApiCaller:
    """Calls to one front, each on a new connection, as nanogrid.client and curl make them."""

    def __init__(self, base_url: str, timeout_s: float = 60):
        host, _, port = base_url.removeprefix("http://").partition(":")
        self._host = host
        self._port = int(port)
        self._timeout_s = timeout_s

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        try:
            connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def run(self, function_id: str) -> tuple[float, dict]:
        """POST /run and wait; return the latency in milliseconds and the RunResult."""
        started = time.perf_counter()
        status, body = self.request("POST", "/run", {"functionId": function_id, "inputData": {}})
        latency_ms = (time.perf_counter() - started) * 1000
        if status != 200 or body.get("status") != "SUCCESS":
            raise BenchError(f"POST /run {function_id} returned {status}: {json.dumps(body)[:500]}")
        return latency_ms, body



class BenchError(Exception):
    """A measured call failed; the message names the call and its response."""


def put_function(base_url: str, function_id: str, source: str, memory_mb: int) -> str:
    """Register a single-file function; return its versionId."""
    status, body = ApiCaller(base_url).request("PUT", f"/functions/{function_id}", {
        "runtime": "python3.11", "memoryMB": memory_mb, "timeoutMs": 10_000, "code": {"source": source},
    })
    if status not in (200, 201):
        raise BenchError(f"PUT /functions/{function_id} returned {status}: {body}")
    return body["versionId"]


def run_concurrently(base_url: str, function_id: str, callers: int, runs_per_caller: int) -> dict:
    """Run callers threads that each POST /run runs_per_caller times, one after another; return
    the wall time, the completed runs and the latencies."""
    latencies: list[float] = []
    modes: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(callers + 1)

    def call_loop() -> None:
        caller = ApiCaller(base_url)
        barrier.wait()
        for _ in range(runs_per_caller):
            try:
                latency_ms, result = caller.run(function_id)
            except (BenchError, OSError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(str(exc))
                continue
            with lock:
                latencies.append(latency_ms)
                mode = result.get("startMode") or "none"
                modes[mode] = modes.get(mode, 0) + 1

    threads = [threading.Thread(target=call_loop, daemon=True) for _ in range(callers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    return {"wall_s": wall_s, "runs": len(latencies), "latencies_ms": latencies, "start_modes": modes, "errors": errors}


# -- statistics ------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: list[float]) -> dict:
    """Count, median, p95, p99, min and max in milliseconds; None for each figure of no values."""
    if not values:
        return {"count": 0, "median_ms": None, "p95_ms": None, "p99_ms": None, "min_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "median_ms": percentile(values, 0.5),
        "p95_ms": percentile(values, 0.95),
        "p99_ms": percentile(values, 0.99),
        "min_ms": min(values),
        "max_ms": max(values),
    }


__all__ = [
    "ApiCaller", "BenchConfig", "BenchError", "BenchStack", "CpuMeter", "StackError", "percentile", "put_function",
    "remove_worker_containers", "rss_mb", "run_concurrently", "summarize",
]
