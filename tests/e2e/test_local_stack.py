"""The whole local stack over real HTTP: redis-server, moto, the worker process and the front."""

import json

import pytest
from nanogrid.client import Client
from nanogrid.stack import LocalStack, StackConfig, free_port, wait_until_healthy

pytestmark = pytest.mark.docker

WORD_COUNT_TEXT = "the cat and the hat\nThe end"


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server_binary, docker_client, runtime_image):
    redis_port, moto_port, front_port = distinct_free_ports(3)
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("stack"),
        redis_port=redis_port,
        moto_port=moto_port,
        front_port=front_port,
        worker_concurrency=2,
        runtime_images=f"python3.11={runtime_image}",
        # Short polls, so the worker stops within a second of SIGTERM.
        extra_worker_env={"NANOGRID_POLL_WAIT_S": "1"},
    )
    local_stack = LocalStack(config)
    local_stack.start()
    try:
        wait_until_healthy(config.front_url)
        local_stack.register_examples()
        yield local_stack
    finally:
        local_stack.stop()


@pytest.fixture(scope="module")
def client(stack) -> Client:
    return Client(stack.config.front_url, stack.config.api_key)


def test_stack_processes_alive(stack):
    assert stack.processes_alive() == {"redis": True, "moto": True, "worker": True, "controller": True}


def test_stack_lists_examples(client):
    response = client.list_functions()
    ids = [function["functionId"] for function in response.body["functions"]]

    assert response.status == 200
    assert ids == ["hello-python", "primes", "word-count"]


def test_hello_python(client):
    response = client.run("hello-python")
    body = response.body

    assert response.status == 200
    assert body["status"] == "SUCCESS"
    assert body["stdout"] == "Hello from NanoGrid Plus!\n"
    assert body["stderr"] == ""
    assert body["exitCode"] == 0
    assert body["durationMillis"] > 0
    assert body["peakMemoryMB"] > 0


def test_word_count(client):
    response = client.run("word-count", {"text": WORD_COUNT_TEXT, "top": 2})
    body = response.body

    assert response.status == 200
    assert body["status"] == "SUCCESS"
    assert body["result"] == {
        "words": 7,
        "distinctWords": 5,
        "lines": 2,
        "top": [{"word": "the", "count": 3}, {"word": "cat", "count": 1}],
    }
    assert body["stdout"] == "counted 7 words, 5 distinct\n"


@pytest.mark.parametrize(("n", "count", "largest"), [(100, 25, 97), (1_000_000, 78_498, 999_983)])
def test_primes(client, n, count, largest):
    response = client.run("primes", {"n": n})
    body = response.body

    assert response.status == 200
    assert body["status"] == "SUCCESS"
    assert body["result"]["n"] == n
    assert body["result"]["count"] == count
    assert body["result"]["largest"] == largest


def test_logs_share_request_id(stack, client):
    response = client.run("hello-python")
    request_id = response.body["requestId"]

    matches: dict[str, list[dict]] = {}
    for log_file in sorted(stack.config.log_dir.glob("*.log")):
        for line in log_file.read_text(errors="replace").splitlines():
            if request_id in line:
                matches.setdefault(log_file.name, []).append(json.loads(line))

    assert response.status == 200
    assert set(matches) >= {"controller.log", "worker.log"}
    for name in ("controller.log", "worker.log"):
        assert all(entry.get("requestId") == request_id for entry in matches[name]), matches[name]
