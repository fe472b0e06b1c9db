"""Hostile and broken functions against the real worker: an in-process Agent polling moto SQS,
running each function in a real Docker container, and the controller's Lambda handler as the caller.

Each test checks what the caller gets (status, errorMessage, output), that the same worker still
serves a normal run afterwards, and that the run left no container or temp folder behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
from nanogrid.local_front import LambdaContext, build_event
from nanogrid_controller import app as controller_app
from nanogrid_protocol import RunResult, RunStatus, keys, limits
from worker_agent.sandbox import LABEL_MANAGED, LABEL_REQUEST_ID, LABEL_WORKER_ID

pytestmark = pytest.mark.docker

API_KEY = "hostile-test-key"
RUN_AS_UID = 10001
# Lambda's limit on a synchronous response payload, which the controller's response must stay under.
LAMBDA_RESPONSE_LIMIT_BYTES = 6_291_456
ECHO_SOURCE = "def handler(event, context):\n    return {'echo': event}\n"
# Seconds to wait for leftovers of other runs to go before the module asserts there are none.
LEFTOVER_WAIT_S = 30
CGROUP_PARENTS = [Path("/sys/fs/cgroup/memory/nanogrid"), Path("/sys/fs/cgroup/nanogrid")]


# Worker ids of the test fixtures. A stack that a developer runs beside the tests (make up) has
# containers and sandbox processes of its own, which the leftover checks leave out.
TEST_WORKER_PREFIX = "test-worker-"


def _managed_containers(docker_client) -> list[dict]:
    """Same as `docker ps -a --filter label=org.nanogrid.managed=true`."""
    # One list call: containers.list() inspects each container and fails on one removed meanwhile.
    return docker_client.api.containers(all=True, filters={"label": f"{LABEL_MANAGED}=true"})


def managed_container_ids(docker_client) -> list[str]:
    """Managed containers of the test workers."""
    return [c["Id"] for c in _managed_containers(docker_client)
            if c["Labels"].get(LABEL_WORKER_ID, "").startswith(TEST_WORKER_PREFIX)]


def foreign_container_ids(docker_client) -> set[str]:
    return {c["Id"] for c in _managed_containers(docker_client)
            if not c["Labels"].get(LABEL_WORKER_ID, "").startswith(TEST_WORKER_PREFIX)}


def sandbox_uid_processes(foreign_ids: set[str] = frozenset()) -> list[int]:
    """Host pids of processes running as the sandbox uid, which only function code uses, except
    those inside the containers in foreign_ids."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        if str(RUN_AS_UID) not in uid_line.split()[1:2]:
            continue
        try:
            cgroups = (entry / "cgroup").read_text()
        except OSError:
            continue
        if not any(container_id in cgroups for container_id in foreign_ids):
            pids.append(int(entry.name))
    return pids


def run_cgroups() -> list[str]:
    return [str(child) for parent in CGROUP_PARENTS if parent.is_dir() for child in parent.iterdir() if child.is_dir()]


def settled(probe, timeout_s: float = LEFTOVER_WAIT_S) -> list:
    """Poll probe until it returns an empty list or the time is up; return its last value.

    Docker removes a killed container a moment after the call returns, and a test run that
    finished just before this module may still be removing its own.
    """
    deadline = time.monotonic() + timeout_s
    found = probe()
    while found and time.monotonic() < deadline:
        time.sleep(0.5)
        found = probe()
    return found


@pytest.fixture(scope="module", autouse=True)
def no_leftovers_around_module(docker_client):
    """Before and after the module: no managed container and no sandbox process; after it, no
    run cgroup that was not there before."""
    assert settled(lambda: managed_container_ids(docker_client)) == []
    cgroups_before = set(run_cgroups())
    yield
    assert settled(lambda: managed_container_ids(docker_client)) == []
    assert settled(lambda: sandbox_uid_processes(foreign_container_ids(docker_client))) == []
    assert settled(lambda: sorted(set(run_cgroups()) - cgroups_before)) == []


@pytest.fixture(params=["cold", "warm"])
def worker_settings(request, worker_settings):
    """The shared worker settings in each start mode: a new container per run (cold), or
    resident containers reused across runs of one function version (warm)."""
    if request.param == "cold":
        return dataclasses.replace(worker_settings, warm_idle_s=0)
    return dataclasses.replace(worker_settings, warm_idle_s=60)


class Caller:
    """Registers functions and runs them through the controller's Lambda handler, the way the
    local front calls it, while listening to every result notice on Redis pub/sub."""

    def __init__(self, redis_client):
        self._pubsub = redis_client.pubsub()
        self._pubsub.psubscribe(keys.run_channel("*"))
        self.notices: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message and message["type"] == "pmessage":
                self.notices.append(message["data"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"content-type": "application/json", "host": "127.0.0.1", "authorization": f"Bearer {API_KEY}"}
        data = json.dumps(body).encode() if body is not None else b""
        event = build_event(method, path, headers, data, "127.0.0.1")
        response = controller_app.lambda_handler(event, LambdaContext(29_000))
        return response["statusCode"], response["body"].encode("utf-8")

    def deploy(self, source: str, memory_mb: int = 128, timeout_ms: int = 10_000) -> str:
        function_id = f"hostile-{uuid.uuid4().hex[:12]}"
        upload = {"memoryMB": memory_mb, "timeoutMs": timeout_ms, "code": {"source": source}}
        status, body = self.call("PUT", f"/functions/{function_id}", upload)
        assert status == 201, body
        return function_id

    def run(self, source: str, input_data: dict | None = None, memory_mb: int = 128, timeout_ms: int = 10_000):
        """Deploy and run source; return (RunResult, HTTP body bytes, caller's seconds)."""
        function_id = self.deploy(source, memory_mb, timeout_ms)
        started = time.monotonic()
        status, body = self.call("POST", "/run", {"functionId": function_id, "inputData": input_data or {}})
        elapsed_s = time.monotonic() - started
        assert status == 200, body[:2000]
        return RunResult.model_validate_json(body), body, elapsed_s

    def notices_for(self, request_id: str, timeout_s: float = 5) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [n for n in self.notices if json.loads(n)["requestId"] == request_id]
            if found:
                return found
            time.sleep(0.05)
        return []


@pytest.fixture
def caller(monkeypatch, redis_url, redis_client, moto_url, queue_url, code_bucket, start_agent, worker_settings, docker_client):
    monkeypatch.setenv("NANOGRID_REDIS_URL", redis_url)
    monkeypatch.setenv("NANOGRID_QUEUE_URL", queue_url)
    monkeypatch.setenv("NANOGRID_CODE_BUCKET", code_bucket)
    monkeypatch.setenv("NANOGRID_API_KEY", API_KEY)
    monkeypatch.setattr(controller_app, "_services", None)
    agent = start_agent()
    caller = Caller(redis_client)
    yield caller
    caller.close()

    # The worker still serves a normal run after whatever the test ran.
    echo, _, _ = caller.run(ECHO_SOURCE, {"after": "hostile"})
    assert echo.status is RunStatus.SUCCESS
    assert echo.result == {"echo": {"after": "hostile"}}

    # Stopped first, because a worker may keep idle containers until it stops.
    agent.stop()
    filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_WORKER_ID}={worker_settings.worker_id}"]}
    assert docker_client.api.containers(all=True, filters=filters) == []
    for folder in ("runs", "resident"):
        work_dir = worker_settings.cache_dir / folder
        assert not work_dir.exists() or list(work_dir.iterdir()) == []


# -- memory ----------------------------------------------------------------------------------


def test_memory_main_process_oom(caller):
    source = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n"

    result, _, _ = caller.run(source, memory_mb=64)

    assert result.status is RunStatus.OOM
    assert "memory limit of 64 MB" in result.error_message
    assert "raise memoryMB" in result.error_message
    assert result.exit_code == 137


def test_memory_child_oom_main_exits_zero(caller):
    source = (
        "import subprocess, sys\n"
        "hog = 'blocks = []\\nwhile True:\\n    blocks.append(bytearray(16 * 1024 * 1024))\\n'\n"
        "child = subprocess.run([sys.executable, '-c', hog])\n"
        "print('child exit', child.returncode)\n"
    )

    result, _, _ = caller.run(source, memory_mb=64)

    assert result.stdout == "child exit -9\n"
    assert result.exit_code == 0
    assert result.status is RunStatus.OOM
    assert "memory limit of 64 MB" in result.error_message


def test_memory_swap_equals_limit(caller):
    # cgroup v1 names the memory+swap limit memsw; cgroup v2 has a swap-only limit.
    source = """
import json, os
def read(path):
    return open(path).read().strip() if os.path.exists(path) else None
def handler(event, context):
    return {
        "v1Memory": read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
        "v1MemorySwap": read("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        "v2Memory": read("/sys/fs/cgroup/memory.max"),
        "v2Swap": read("/sys/fs/cgroup/memory.swap.max"),
    }
"""

    result, _, _ = caller.run(source, memory_mb=64)
    limits_seen = result.result

    assert result.status is RunStatus.SUCCESS, result.stderr
    if limits_seen["v1Memory"] is not None:
        assert limits_seen["v1Memory"] == str(64 * 1024 * 1024)
        assert limits_seen["v1MemorySwap"] == limits_seen["v1Memory"]
    else:
        assert limits_seen["v2Memory"] == str(64 * 1024 * 1024)
        assert limits_seen["v2Swap"] == "0"


# -- time ------------------------------------------------------------------------------------

TIMEOUT_SOURCES = {
    "busy_loop": "while True:\n    pass\n",
    "sleep": "import subprocess\nsubprocess.run(['sleep', '100'])\n",
    "ignores_sigterm": (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "while True:\n    time.sleep(0.1)\n"
    ),
}


@pytest.mark.parametrize("case", sorted(TIMEOUT_SOURCES))
def test_timeout_stops_run(caller, docker_client, case):
    result, _, elapsed_s = caller.run(TIMEOUT_SOURCES[case], timeout_ms=2000)

    assert result.status is RunStatus.TIMEOUT
    assert result.error_message == "the function ran longer than its timeout of 2000 ms and was stopped"
    assert 1900 <= result.duration_millis <= 2000
    # Container start and removal come on top of the 2 s, but not Docker's 10 s stop grace.
    assert elapsed_s < 8
    assert docker_client.api.containers(all=True, filters={"label": f"{LABEL_REQUEST_ID}={result.request_id}"}) == []


# -- processes -------------------------------------------------------------------------------

FORK_BOMB_SOURCE = """
import os, sys
while True:
    try:
        os.fork()
    except OSError as exc:
        print(f"fork failed: {exc.strerror}", file=sys.stderr)
        sys.exit(1)
"""
STEADY_SOURCE = """
import hashlib
def handler(event, context):
    digest = b""
    for _ in range(event["rounds"]):
        digest = hashlib.sha256(digest).digest()
    return {"digest": digest.hex()}
"""


def test_fork_bomb_contained(caller):
    import hashlib

    rounds = 200_000
    expected = b""
    for _ in range(rounds):
        expected = hashlib.sha256(expected).digest()
    # Memory to spare, so the pids limit stops the bomb before the memory limit does.
    bomb_id = caller.deploy(FORK_BOMB_SOURCE, memory_mb=512, timeout_ms=5000)
    steady_id = caller.deploy(STEADY_SOURCE, timeout_ms=30_000)
    responses: dict[str, tuple[int, bytes, float]] = {}

    def call(name: str, function_id: str, input_data: dict) -> None:
        started = time.monotonic()
        status, body = caller.call("POST", "/run", {"functionId": function_id, "inputData": input_data})
        responses[name] = (status, body, time.monotonic() - started)

    threads = [
        threading.Thread(target=call, args=("bomb", bomb_id, {})),
        threading.Thread(target=call, args=("steady", steady_id, {"rounds": rounds})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    bomb_status, bomb_body, _ = responses["bomb"]
    steady_status, steady_body, steady_s = responses["steady"]
    bomb = RunResult.model_validate_json(bomb_body)
    steady = RunResult.model_validate_json(steady_body)

    assert bomb_status == 200
    assert bomb.status in (RunStatus.FAILED, RunStatus.TIMEOUT)
    assert "fork failed: Resource temporarily unavailable" in bomb.stderr
    assert steady_status == 200
    assert steady.status is RunStatus.SUCCESS, steady.stderr
    assert steady.result == {"digest": expected.hex()}
    # Loose: the bomb may take one of the machine's two cores for a while.
    assert steady_s < 30


# -- output ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size_mb", [10, 50])
def test_output_large_stdout_capped(caller, size_mb):
    source = (
        "import sys\n"
        f"for _ in range({size_mb}):\n"
        "    sys.stdout.buffer.write(b'x' * (1024 * 1024))\n"
        "print('stderr stays', file=sys.stderr)\n"
    )

    result, _, _ = caller.run(source)
    notices = caller.notices_for(result.request_id)

    assert result.status is RunStatus.SUCCESS, result.stderr
    assert len(result.stdout) == limits.MAX_OUTPUT_BYTES
    assert set(result.stdout) == {"x"}
    assert result.stdout_truncated is True
    assert result.stderr == "stderr stays\n"
    assert result.stderr_truncated is False
    assert len(notices) == 1
    assert json.loads(notices[0]) == {"requestId": result.request_id, "status": "SUCCESS"}
    assert len(notices[0]) < 200


def test_output_long_line_without_newline(caller):
    source = "import sys\nsys.stdout.write('y' * 100 * 1024)\n"

    result, _, _ = caller.run(source)

    assert result.status is RunStatus.SUCCESS
    assert result.stdout == "y" * 100 * 1024
    assert result.stdout_truncated is False


def test_output_interleaved_streams_separate(caller):
    source = (
        "import sys\n"
        "for i in range(200):\n"
        "    print(f'out {i}', flush=True)\n"
        "    print(f'err {i}', file=sys.stderr, flush=True)\n"
    )

    result, _, _ = caller.run(source)

    assert result.status is RunStatus.SUCCESS
    assert result.stdout == "".join(f"out {i}\n" for i in range(200))
    assert result.stderr == "".join(f"err {i}\n" for i in range(200))


def test_output_invalid_utf8_replaced(caller):
    source = (
        "import sys\n"
        "sys.stdout.buffer.write(b'ok \\xff\\xfe end \\xe2\\x82')\n"
        "sys.stderr.buffer.write(b'\\xc3\\x28 err')\n"
    )

    result, _, _ = caller.run(source)

    assert result.status is RunStatus.SUCCESS
    assert result.stdout == "ok \ufffd\ufffd end \ufffd"
    assert result.stderr == "\ufffd( err"


def test_output_control_chars_fit_response(caller, redis_client):
    # Each control byte becomes a six-byte \u00XX escape in JSON, so 1 MiB on each stream
    # would be about 12 MiB of result JSON without the worker's second cut.
    source = (
        "import sys\n"
        "sys.stdout.buffer.write(b'\\x01' * (1024 * 1024))\n"
        "sys.stderr.buffer.write(b'\\x02' * (1024 * 1024))\n"
    )

    result, http_body, _ = caller.run(source)
    stored = redis_client.get(keys.run_result_key(result.request_id))

    assert result.status is RunStatus.SUCCESS
    assert result.stdout_truncated is True
    assert result.stderr_truncated is True
    assert len(result.stdout) > 100_000
    assert len(result.stderr) > 100_000
    assert set(result.stdout) == {"\x01"}
    assert len(stored) <= limits.MAX_RUN_RESULT_JSON_BYTES
    assert len(http_body) < LAMBDA_RESPONSE_LIMIT_BYTES


# -- filesystem ------------------------------------------------------------------------------


def test_filesystem_tmp_writable(caller):
    source = """
def handler(event, context):
    with open("/tmp/data.bin", "wb") as f:
        f.write(b"z" * 1024 * 1024)
    with open("/tmp/data.bin", "rb") as f:
        return {"size": len(f.read())}
"""

    result, _, _ = caller.run(source)

    assert result.status is RunStatus.SUCCESS, result.stderr
    assert result.result == {"size": 1024 * 1024}


def test_filesystem_elsewhere_read_only(caller):
    paths = ["/probe", "/etc/probe", "/var/task/probe", "/opt/nanogrid/probe", "/var/nanogrid/io/probe", "/usr/local/lib/probe"]
    source = (
        "import sys\n"
        f"for path in {paths!r}:\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "        print(path, 'written')\n"
        "    except OSError as exc:\n"
        "        print(path, exc.strerror, file=sys.stderr)\n"
        "open('/var/task/last-probe', 'w')\n"
    )

    result, _, _ = caller.run(source)
    lines = result.stderr.splitlines()

    assert result.stdout == ""
    for path in paths:
        assert f"{path} Read-only file system" in lines
    assert result.status is RunStatus.FAILED
    assert "OSError: [Errno 30] Read-only file system: '/var/task/last-probe'" in result.stderr


def test_filesystem_tmp_full(caller):
    source = """
with open("/tmp/fill.bin", "wb") as f:
    while True:
        f.write(b"f" * 1024 * 1024)
        f.flush()
"""

    result, _, _ = caller.run(source, memory_mb=128)

    assert result.status is RunStatus.FAILED
    assert "No space left on device" in result.stderr
    assert "see stderr" in result.error_message


# -- network, environment and privileges -----------------------------------------------------


def test_network_connect_fails(caller, redis_url, moto_url):
    # The targets are the worker's own Redis and moto on the host's loopback: reachable from the
    # worker, not from inside the container. No address outside loopback is tried.
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    moto_port = int(moto_url.rsplit(":", 1)[1])
    source = f"""
import errno, os, socket
def handler(event, context):
    attempts = {{}}
    for family, host, port in [(socket.AF_INET, "127.0.0.1", {redis_port}), (socket.AF_INET, "127.0.0.1", {moto_port}),
                               (socket.AF_INET6, "::1", {redis_port})]:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect((host, port))
            attempts[f"{{host}}:{{port}}"] = "connected"
        except OSError as exc:
            attempts[f"{{host}}:{{port}}"] = errno.errorcode.get(exc.errno, str(exc))
        finally:
            sock.close()
    with open("/proc/net/route") as f:
        routes = f.read().splitlines()[1:]
    return {{"attempts": attempts, "interfaces": sorted(os.listdir("/sys/class/net")), "routes": routes}}
"""

    result, _, _ = caller.run(source)
    facts = result.result

    assert result.status is RunStatus.SUCCESS, result.stderr
    assert set(facts["attempts"].values()) <= {"ECONNREFUSED", "EADDRNOTAVAIL", "ENETUNREACH"}
    assert len(facts["attempts"]) == 3
    assert facts["interfaces"] == ["lo"]
    assert facts["routes"] == []


def test_environment_hides_worker_secrets(monkeypatch, redis_url, redis_client, moto_url, queue_url, code_bucket, worker_settings, start_agent, docker_client, runtime_image):
    marker = f"worker-secret-{uuid.uuid4().hex}"
    # Set before the agent starts, as a worker process would have them from its environment.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", marker)
    monkeypatch.setenv("NANOGRID_TEST_WORKER_MARKER", marker)
    monkeypatch.setenv("NANOGRID_REDIS_URL", redis_url)
    monkeypatch.setenv("NANOGRID_QUEUE_URL", queue_url)
    monkeypatch.setenv("NANOGRID_CODE_BUCKET", code_bucket)
    monkeypatch.setenv("NANOGRID_API_KEY", API_KEY)
    monkeypatch.setattr(controller_app, "_services", None)
    start_agent()
    caller = Caller(redis_client)
    source = "import os\ndef handler(event, context):\n    return dict(os.environ)\n"

    try:
        result, _, _ = caller.run(source)
    finally:
        caller.close()
    function_env = result.result
    image_env = dict(item.split("=", 1) for item in docker_client.images.get(runtime_image).attrs["Config"]["Env"])
    expected_names = set(image_env) | {
        "HOME", "HOSTNAME", "PATH", "NANOGRID_CONTROL_SOCKET", "NANOGRID_REQUEST_ID", "NANOGRID_FUNCTION_ID", "NANOGRID_VERSION_ID",
        "NANOGRID_MEMORY_MB", "NANOGRID_DEADLINE_MS", "NANOGRID_MAX_RESULT_BYTES",
    }

    assert os.environ["AWS_SECRET_ACCESS_KEY"] == marker
    assert result.status is RunStatus.SUCCESS, result.stderr
    assert marker not in json.dumps(function_env)
    assert "AWS_SECRET_ACCESS_KEY" not in function_env
    assert "NANOGRID_TEST_WORKER_MARKER" not in function_env
    assert not [name for name in function_env if name.startswith("AWS_")]
    assert set(function_env) <= expected_names
    assert redis_url not in json.dumps(function_env)


def test_privileges_dropped(caller):
    source = """
import os
def handler(event, context):
    fields = {}
    for line in open("/proc/self/status"):
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
            "CapEff": fields["CapEff"], "CapPrm": fields["CapPrm"], "NoNewPrivs": fields["NoNewPrivs"]}
"""

    result, _, _ = caller.run(source)
    facts = result.result

    assert result.status is RunStatus.SUCCESS, result.stderr
    assert facts["uid"] == RUN_AS_UID
    assert facts["euid"] == RUN_AS_UID
    assert facts["gid"] == RUN_AS_UID
    assert int(facts["CapEff"], 16) == 0
    assert int(facts["CapPrm"], 16) == 0
    assert facts["NoNewPrivs"] == "1"


# -- broken code -----------------------------------------------------------------------------

BROKEN_SOURCES = {
    "syntax_error": ("def handler(event, context:\n    return 1\n", ['File "/var/task/main.py", line 1', "SyntaxError"]),
    "missing_module": (
        "import nanogrid_no_such_module\n",
        ["Traceback (most recent call last):", 'File "/var/task/main.py", line 1',
         "ModuleNotFoundError: No module named 'nanogrid_no_such_module'"],
    ),
    "handler_raises": (
        "def handler(event, context):\n    raise ValueError('bad input from test')\n",
        ["Traceback (most recent call last):", 'File "/var/task/main.py", line 2, in handler',
         "ValueError: bad input from test"],
    ),
    "non_json_result": (
        "def handler(event, context):\n    return {1, 2}\n",
        ["Traceback (most recent call last):", "TypeError: Object of type set is not JSON serializable",
         "not JSON serialisable"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_SOURCES))
def test_broken_code_failed(caller, case):
    source, expected_lines = BROKEN_SOURCES[case]

    result, _, _ = caller.run(source)

    assert result.status is RunStatus.FAILED
    assert result.exit_code == 1
    assert result.error_message == "the function exited with code 1; see stderr"
    for expected in expected_lines:
        assert expected in result.stderr
    assert result.result is None


def test_handler_result_over_limit(caller):
    source = f"def handler(event, context):\n    return 'r' * {limits.MAX_RESULT_BYTES}\n"

    result, _, _ = caller.run(source)

    # The JSON string adds two quotes, so the value is two bytes over the limit.
    assert result.status is RunStatus.FAILED
    assert result.result is None
    assert f"more than the limit of {limits.MAX_RESULT_BYTES} bytes" in result.stderr
    assert result.error_message == "the function exited with code 1; see stderr"


def test_cpu_quota_one_cpu(caller, worker_settings):
    # cgroup v1 splits the quota into period and quota files; cgroup v2 writes "quota period".
    source = """
import os
def read(path):
    return open(path).read().strip() if os.path.exists(path) else None
def handler(event, context):
    return {
        "v1Quota": read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") or read("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"),
        "v1Period": read("/sys/fs/cgroup/cpu/cpu.cfs_period_us") or read("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"),
        "v2Max": read("/sys/fs/cgroup/cpu.max"),
    }
"""

    result, _, _ = caller.run(source)
    quota = result.result

    assert result.status is RunStatus.SUCCESS, result.stderr
    if quota["v1Quota"] is not None:
        assert int(quota["v1Quota"]) / int(quota["v1Period"]) == worker_settings.cpus
    else:
        max_us, period_us = quota["v2Max"].split()
        assert int(max_us) / int(period_us) == worker_settings.cpus
