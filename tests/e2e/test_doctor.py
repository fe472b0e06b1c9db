"""`nanogrid doctor` against a real local stack: all green, then a wrong Redis port."""

import argparse
import io

import pytest

from nanogrid import doctor
from nanogrid.stack import LOCAL_AWS_ENV, LocalStack, StackConfig, free_port, wait_until_healthy

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server_binary, docker_client, runtime_image):
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    redis_port, moto_port, front_port = sorted(ports)
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("doctor-stack"), redis_port=redis_port, moto_port=moto_port,
        front_port=front_port, worker_concurrency=2, api_key="doctor-key",
        runtime_images=f"python3.11={runtime_image}", extra_worker_env={"NANOGRID_POLL_WAIT_S": "1"},
    )
    local_stack = LocalStack(config)
    local_stack.start()
    try:
        wait_until_healthy(config.front_url)
        yield local_stack
    finally:
        local_stack.stop()


def run_doctor(monkeypatch, stack, redis_url: str) -> tuple[int, list[str]]:
    for name, value in LOCAL_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.config.moto_url)
    monkeypatch.setenv("NANOGRID_REDIS_URL", redis_url)
    monkeypatch.setenv("NANOGRID_QUEUE_URL", stack.queue_url)
    out = io.StringIO()
    code = doctor.run(argparse.Namespace(url=stack.config.front_url, api_key=stack.config.api_key), out=out)
    print(out.getvalue())
    return code, out.getvalue().splitlines()


def test_doctor_all_green(monkeypatch, stack):
    code, lines = run_doctor(monkeypatch, stack, stack.config.redis_url)
    verdicts = [line for line in lines if line.startswith("[")]

    assert code == 0
    assert [line.split("]")[0] + "]" for line in verdicts] == ["[ OK ]"] * 6
    assert [line.split("] ")[1].split(":")[0] for line in verdicts] == ["settings", "Redis", "SQS", "pub/sub", "API", "run"]
    assert "1 subscriber(s)" in verdicts[3]
    assert "queue and dispatch" in verdicts[5]


def test_doctor_wrong_redis_port(monkeypatch, stack):
    code, lines = run_doctor(monkeypatch, stack, f"redis://127.0.0.1:{free_port()}/0")
    first_failure = next(line for line in lines if line.startswith("[FAIL]"))

    assert code == 1
    assert first_failure.startswith("[FAIL] Redis:")
    assert "refused" in first_failure
    assert any("security group" in line for line in lines)
    assert any(line.startswith("[SKIP] run") for line in lines)
