"""Sandbox against the real Docker engine and the runtime image."""

import json
import textwrap
import uuid
from pathlib import Path

import pytest
from worker_agent.runner import BOOTSTRAP_DIR, RUNTIME_COMMANDS
from worker_agent.sandbox import LABEL_MANAGED, LABEL_WORKER_ID, Sandbox, SandboxSpec

pytestmark = pytest.mark.docker

RUN_AS_UID = 10001


@pytest.fixture
def sandbox(docker_client, runtime_image, tmp_path) -> Sandbox:
    return Sandbox(docker_client, tmp_path / "runs")


@pytest.fixture
def worker_label() -> str:
    return f"sandbox-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def run_code(sandbox, runtime_image, tmp_path, worker_label):
    """Run ``source`` as main.py in a container; return the SandboxOutcome."""

    def run(source: str, event: dict | None = None, timeout_ms: int = 10_000, memory_mb: int = 128):
        code_dir = Path(tmp_path / f"code-{uuid.uuid4().hex[:8]}")
        code_dir.mkdir()
        code_dir.chmod(0o755)
        main = code_dir / "main.py"
        main.write_text(textwrap.dedent(source))
        main.chmod(0o644)
        spec = SandboxSpec(
            image=runtime_image,
            command=RUNTIME_COMMANDS["python3.11"].command,
            code_dir=code_dir,
            bootstrap_dir=BOOTSTRAP_DIR,
            memory_mb=memory_mb,
            timeout_ms=timeout_ms,
            pids_limit=64,
            tmp_size_mb=16,
            cpus=1.0,
            max_output_bytes=64 * 1024,
            max_report_bytes=64 * 1024,
            labels={LABEL_WORKER_ID: worker_label},
        )
        return sandbox.run(spec, json.dumps(event or {}).encode())

    return run


def test_sandbox_hello_script(run_code):
    outcome = run_code('print("hello")\n')

    assert outcome.exit_code == 0
    assert outcome.stdout == b"hello\n"
    assert outcome.stderr == b""
    assert outcome.report is None
    assert outcome.timed_out is False
    assert outcome.oom_killed is False


def test_sandbox_handler_return_value(run_code):
    source = """
        def handler(event, context):
            return {"sum": event["a"] + event["b"], "requestId": context.aws_request_id}
    """

    outcome = run_code(source, event={"a": 2, "b": 40})

    assert outcome.exit_code == 0
    assert json.loads(outcome.report) == {"sum": 42, "requestId": ""}


def test_sandbox_script_reads_stdin(run_code):
    source = """
        import json, sys
        event = json.load(sys.stdin)
        print("name=" + event["name"])
    """

    outcome = run_code(source, event={"name": "grid"})

    assert outcome.exit_code == 0
    assert outcome.stdout == b"name=grid\n"


def test_sandbox_stdout_stderr_separate(run_code):
    source = """
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
    """

    outcome = run_code(source)

    assert outcome.stdout == b"to stdout\n"
    assert outcome.stderr == b"to stderr\n"


def test_sandbox_exit_code(run_code):
    outcome = run_code("import sys\nsys.exit(3)\n")

    assert outcome.exit_code == 3
    assert outcome.timed_out is False


def test_sandbox_handler_exception(run_code):
    outcome = run_code("def handler(event, context):\n    raise ValueError('bad input')\n")

    assert outcome.exit_code == 1
    assert b"ValueError: bad input" in outcome.stderr
    assert outcome.report is None


def test_sandbox_measures_duration_and_memory(run_code):
    source = """
        import time
        block = bytearray(24 * 1024 * 1024)
        time.sleep(0.05)
    """

    outcome = run_code(source)

    assert outcome.exit_code == 0
    assert outcome.duration_ms > 0
    assert outcome.peak_memory_bytes is not None
    assert outcome.peak_memory_bytes >= 24 * 1024 * 1024


def test_sandbox_timeout_kills(run_code):
    outcome = run_code("import time\ntime.sleep(30)\n", timeout_ms=1000)

    assert outcome.timed_out is True
    assert outcome.duration_ms <= 1000
    assert outcome.exit_code == 137


def test_sandbox_memory_limit_kills(run_code):
    source = """
        blocks = []
        while True:
            blocks.append(bytearray(8 * 1024 * 1024))
    """

    outcome = run_code(source, memory_mb=48)

    assert outcome.timed_out is False
    assert outcome.oom_killed or outcome.oom_kill_count > 0
    assert outcome.exit_code == 137


def test_sandbox_isolation(run_code):
    source = """
        import errno, json, os
        facts = {"uid": os.getuid(), "gid": os.getgid(), "interfaces": sorted(os.listdir("/sys/class/net"))}
        try:
            open("/etc/nanogrid-probe", "w")
            facts["rootWrite"] = "ok"
        except OSError as exc:
            facts["rootWrite"] = errno.errorcode[exc.errno]
        with open("/tmp/probe", "w") as f:
            f.write("x")
        facts["tmpWrite"] = "ok"
        with open("/proc/net/route") as f:
            facts["routes"] = f.read().splitlines()[1:]
        print(json.dumps(facts))
    """

    outcome = run_code(source)
    facts = json.loads(outcome.stdout)

    assert outcome.exit_code == 0, outcome.stderr
    assert facts["uid"] == RUN_AS_UID
    assert facts["gid"] == RUN_AS_UID
    assert facts["interfaces"] == ["lo"]
    assert facts["rootWrite"] == "EROFS"
    assert facts["tmpWrite"] == "ok"
    # No route at all, so no packet can leave; nothing is sent to find that out.
    assert facts["routes"] == []


def test_sandbox_removes_containers(run_code, docker_client, worker_label):
    run_code('print("one")\n')
    run_code("import sys\nsys.exit(1)\n")

    filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_WORKER_ID}={worker_label}"]}
    left = docker_client.containers.list(all=True, ignore_removed=True, filters=filters)

    assert left == []
