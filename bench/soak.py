"""Soak test: drive many runs through a local stack while faults hit it, and count what was lost.

    python bench/soak.py [--runs N]   (default: SOAK_RUNS from the environment, else 2000)

It starts nanogrid.stack.LocalStack on free loopback ports (Redis, moto, one worker, the HTTP
front), adds a second worker process, and sends N runs of a function that returns at once from
several client threads. Meanwhile, at random moments, it SIGKILLs and restarts the second worker
and restarts Redis (SHUTDOWN SAVE, then a new redis-server that loads the snapshot, as a Redis
with persistence would). Both workers delay every publish by a random 0 to 200 ms after the
store through the test hook NANOGRID_FAULT_PUBLISH_DELAY_MS.

Each run is a client that behaves as documented in docs/reliability.md: POST /run with an
Idempotency-Key, retry the same request on a 5xx or a broken connection, and poll
GET /runs/{requestId} after a 202. It prints one line

    runs=N results=N lost=0 duplicated_executions=0 errors=K

and writes details to bench/results/soak-latest.json. lost counts runs without a final result
at the end. duplicated_executions counts requestIds with more than one "run started" worker log
line, except where the first execution's worker was SIGKILLed before it finished that run; those
are reported as rerun_after_worker_kill, the documented at-least-once case. errors counts HTTP
errors the clients retried plus final results other than SUCCESS. The exit code is 1 when lost
or duplicated_executions is not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from nanogrid.client import http_json
from nanogrid.stack import BUCKET_NAME, LOCAL_AWS_ENV, REPO_ROOT, LocalStack, StackConfig, free_port, wait_until_healthy

DEFAULT_RUNS = 2000
CLIENT_THREADS = 8
FUNCTION_ID = "soak-echo"
FUNCTION_SOURCE = "def handler(event, context):\n    return event\n"
# Short, so a run lost with a killed worker comes back within seconds.
VISIBILITY_TIMEOUT_S = 10
PUBLISH_DELAY_MS = 200
# Seconds between two injected faults, drawn at random from this range. The first fault comes
# sooner, so that a short soak on warm containers, done in a few seconds, still meets one.
FIRST_FAULT_AFTER_S = (0.5, 1.5)
FAULT_INTERVAL_S = (4.0, 10.0)
# A run without a final result this long after its first POST counts as lost.
RUN_DEADLINE_S = 180
RESULTS_PATH = REPO_ROOT / "bench" / "results" / "soak-latest.json"


class ExtraWorker:
    """A second worker process that the fault injector kills and restarts; one log file per start."""

    def __init__(self, stack: LocalStack, worker_id: str):
        self._stack = stack
        self.worker_id = worker_id
        self.process: subprocess.Popen | None = None
        self.starts = 0
        # Log files of the processes that were SIGKILLed.
        self.killed_logs: list[Path] = []
        self.log_path: Path | None = None

    def start(self) -> None:
        config = self._stack.config
        self.starts += 1
        self.log_path = config.log_dir / f"{self.worker_id}.{self.starts}.log"
        env = {
            **os.environ,
            **LOCAL_AWS_ENV,
            "AWS_ENDPOINT_URL": config.moto_url,
            "NANOGRID_REDIS_URL": config.redis_url,
            "NANOGRID_QUEUE_URL": self._stack.queue_url,
            "NANOGRID_CODE_BUCKET": BUCKET_NAME,
            "NANOGRID_WORKER_ID": self.worker_id,
            "NANOGRID_CONCURRENCY": str(config.worker_concurrency),
            "NANOGRID_CACHE_DIR": str(config.state_dir / f"cache-{self.worker_id}"),
            "NANOGRID_VISIBILITY_TIMEOUT_S": str(config.visibility_timeout_s),
            "PYTHONUNBUFFERED": "1",
            **config.extra_worker_env,
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "worker_agent"], stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=REPO_ROOT, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            self.killed_logs.append(self.log_path)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RedisRestarter:
    """Restarts the stack's redis-server on its port, keeping the data through an RDB snapshot."""

    def __init__(self, config: StackConfig):
        self._config = config
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def restart(self, down_s: float) -> None:
        client = redis.Redis.from_url(self._config.redis_url, socket_connect_timeout=2, socket_timeout=10)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # SHUTDOWN closes the connection before it replies.
        finally:
            client.close()
        self._wait_port_closed()
        time.sleep(down_s)
        log = open(self._config.log_dir / "redis-restarted.log", "ab")
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--bind", self._config.host, "--port", str(self._config.redis_port),
             "--save", "", "--appendonly", "no", "--dir", str(self._config.state_dir / "redis")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.restarts += 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self._config.redis_url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not come back on port {self._config.redis_port} within 10 s")

    def _wait_port_closed(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self._config.redis_url, socket_connect_timeout=0.5).ping()
            except redis.RedisError:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class FaultInjector(threading.Thread):
    def __init__(self, worker: ExtraWorker, redis_restarter: RedisRestarter, rng: random.Random):
        super().__init__(name="fault-injector", daemon=True)
        self._worker = worker
        self._redis = redis_restarter
        self._rng = rng
        self._stopping = threading.Event()
        self.events: list[dict] = []
        self._started_at = time.monotonic()

    def run(self) -> None:
        # Event times count from the start of the injector, which starts with the first run.
        self._started_at = time.monotonic()
        pause_s = self._rng.uniform(*FIRST_FAULT_AFTER_S)
        while not self._stopping.wait(pause_s):
            pause_s = self._rng.uniform(*FAULT_INTERVAL_S)
            at_s = round(time.monotonic() - self._started_at, 3)
            if self._rng.random() < 0.5:
                self._worker.kill()
                time.sleep(self._rng.uniform(0.2, 2.0))
                self._worker.start()
                self.events.append({"fault": "worker-killed", "atS": at_s})
            else:
                down_s = self._rng.uniform(0.1, 1.5)
                self._redis.restart(down_s)
                self.events.append({"fault": "redis-restarted", "atS": at_s, "downS": round(down_s, 3)})

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)


class Driver:
    """Runs one request the way a well-behaved client does, and records what it saw."""

    def __init__(self, front_url: str):
        self._front_url = front_url
        self._lock = threading.Lock()
        self.http_errors: Counter = Counter()
        self.outcomes: dict[int, dict] = {}

    def run(self, index: int) -> None:
        headers = {"Idempotency-Key": f"soak-{index}"}
        body = {"functionId": FUNCTION_ID, "inputData": {"i": index}}
        deadline = time.monotonic() + RUN_DEADLINE_S
        outcome: dict = {"index": index, "requestId": None, "status": None, "retries": 0}
        while time.monotonic() < deadline:
            try:
                status, answer = http_json("POST", f"{self._front_url}/run", body, headers)
            except (urllib.error.URLError, OSError) as exc:
                status, answer = 0, {"code": type(exc).__name__}
            if status == 200:
                outcome.update(requestId=answer["requestId"], status=answer["status"], correct=answer.get("result") == {"i": index})
                break
            if status == 202:
                outcome["requestId"] = answer["requestId"]
                final = self._poll(answer["requestId"], deadline)
                if final is not None:
                    outcome.update(status=final["status"], correct=final.get("result") == {"i": index})
                break
            outcome["retries"] += 1
            with self._lock:
                self.http_errors[f"{status} {answer.get('code', '')}".strip()] += 1
            time.sleep(0.5)
        with self._lock:
            self.outcomes[index] = outcome

    def _poll(self, request_id: str, deadline: float) -> dict | None:
        while time.monotonic() < deadline:
            try:
                status, answer = http_json("GET", f"{self._front_url}/runs/{request_id}")
            except (urllib.error.URLError, OSError):
                status, answer = 0, {}
            if status == 200:
                return answer
            time.sleep(0.5)
        return None


def read_log(path: Path) -> list[dict]:
    entries = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def count_executions(log_paths: list[Path], killed_logs: list[Path]) -> tuple[Counter, dict[str, int]]:
    """Return executions per requestId, and per requestId the executions cut short by a SIGKILL:
    a "run started" line in the log of a killed process with no "job done" line after it."""
    starts: Counter = Counter()
    cut_short: Counter = Counter()
    for path in log_paths:
        entries = read_log(path)
        started = Counter(e.get("requestId") for e in entries if e.get("message") == "run started")
        done = Counter(e.get("requestId") for e in entries if e.get("message") == "job done")
        starts.update(started)
        if path in killed_logs:
            for request_id, count in started.items():
                cut_short[request_id] += max(0, count - done[request_id])
    return starts, dict(cut_short)


def remove_containers(worker_ids: list[str]) -> None:
    """Remove what a killed worker left behind and a stopped one did not clean up."""
    import docker

    from worker_agent.sandbox import LABEL_WORKER_ID, remove_container

    client = docker.from_env()
    for worker_id in worker_ids:
        for container in client.containers.list(all=True, ignore_removed=True, filters={"label": f"{LABEL_WORKER_ID}={worker_id}"}):
            remove_container(container)
    client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("SOAK_RUNS") or DEFAULT_RUNS),
                        help="number of runs to send (default: SOAK_RUNS, else 2000)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault schedule (default: random)")
    parser.add_argument("--results", type=Path, default=RESULTS_PATH, help="where to write the JSON details")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    # A short folder: the worker binds Unix sockets under its cache folder (at most 107 bytes).
    state_dir = Path(tempfile.mkdtemp(prefix="ngsoak-", dir="/tmp"))
    config = StackConfig(
        state_dir=state_dir, redis_port=free_port(), moto_port=free_port(), front_port=free_port(),
        worker_concurrency=4, visibility_timeout_s=VISIBILITY_TIMEOUT_S,
        extra_worker_env={"NANOGRID_FAULT_PUBLISH_DELAY_MS": str(PUBLISH_DELAY_MS)},
    )
    stack = LocalStack(config)
    extra = ExtraWorker(stack, "soak-worker-2")
    redis_restarter = RedisRestarter(config)
    injector = FaultInjector(extra, redis_restarter, random.Random(seed))
    driver = Driver(config.front_url)
    started = time.monotonic()
    try:
        stack.start()
        wait_until_healthy(config.front_url)
        extra.start()
        status, answer = http_json("PUT", f"{config.front_url}/functions/{FUNCTION_ID}",
                                   {"timeoutMs": 5000, "code": {"source": FUNCTION_SOURCE}})
        if status not in (200, 201):
            raise RuntimeError(f"cannot register {FUNCTION_ID}: HTTP {status} {answer}")
        injector.start()
        with ThreadPoolExecutor(max_workers=CLIENT_THREADS, thread_name_prefix="client") as clients:
            list(clients.map(driver.run, range(args.runs)))
        injector.stop()
        elapsed_s = time.monotonic() - started
    finally:
        if injector.is_alive():
            injector.stop()
        extra.stop()
        stack.stop()
        redis_restarter.stop()
        remove_containers([f"local-worker-{config.front_port}", extra.worker_id])

    log_paths = sorted(config.log_dir.glob("*worker*.log"))
    starts, cut_short = count_executions(log_paths, extra.killed_logs)
    outcomes = [driver.outcomes.get(i, {"index": i, "status": None}) for i in range(args.runs)]
    finals = [o for o in outcomes if o.get("status") is not None]
    lost = [o for o in outcomes if o.get("status") is None]
    duplicated = {rid: n for rid, n in starts.items() if n - cut_short.get(rid, 0) > 1}
    reruns = {rid: n for rid, n in starts.items() if n > 1 and rid not in duplicated}
    not_success = [o for o in finals if o["status"] != "SUCCESS" or not o.get("correct")]
    errors = sum(driver.http_errors.values()) + len(not_success)

    print(f"runs={args.runs} results={len(finals)} lost={len(lost)} duplicated_executions={len(duplicated)} errors={errors}")
    details = {
        "runs": args.runs,
        "results": len(finals),
        "lost": len(lost),
        "duplicatedExecutions": len(duplicated),
        "errors": errors,
        "elapsedS": round(elapsed_s, 1),
        "runsPerS": round(args.runs / elapsed_s, 2),
        "seed": seed,
        "clientThreads": CLIENT_THREADS,
        "workers": 2,
        "workerConcurrency": config.worker_concurrency,
        "visibilityTimeoutS": VISIBILITY_TIMEOUT_S,
        "publishDelayMs": PUBLISH_DELAY_MS,
        "cpus": os.cpu_count(),
        "faults": injector.events,
        "httpErrorsRetried": dict(driver.http_errors),
        "notSuccess": not_success[:50],
        "lostRuns": lost[:50],
        "duplicated": duplicated,
        "rerunAfterWorkerKill": reruns,
        "stateDir": str(state_dir),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(details, indent=2) + "\n")
    if lost or duplicated:
        print(f"logs kept in {config.log_dir}", file=sys.stderr)
        return 1
    shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
