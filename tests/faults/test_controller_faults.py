"""Controller-side faults against real Redis, moto, Docker, a worker process and the local HTTP
front: Redis restarts, a half-open subscription, SQS unreachable and client retries."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

# app.py creates the parent Logger that the child loggers of waiter.py write through.
import nanogrid_controller.app  # noqa: F401
from nanogrid.stack import free_port
from nanogrid_controller.waiter import KEY_POLL_INTERVAL_S, ResultWaiter
from nanogrid_protocol import RunResult, RunStatus, keys
from worker_agent.results import ResultStore

from tests.faults.conftest import SLEEP_SOURCE, RUN_STARTED, http_json, run_starts
from tests.integration.helpers import register_function

pytestmark = pytest.mark.docker


@pytest.fixture
def sleeper(s3_client, code_bucket):
    return register_function(s3_client, code_bucket, "fault-sleeper", SLEEP_SOURCE, timeout_ms=20_000)


def post_run(front, sleep_s: float, headers: dict | None = None, timeout_s: float = 40):
    return http_json("POST", f"{front.url}/run", {"functionId": "fault-sleeper", "inputData": {"sleepS": sleep_s}}, headers, timeout_s)


def connections_received(server) -> int:
    client = server.client()
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


# -- 5. Redis restarts -----------------------------------------------------------------------


def test_redis_restart_between_requests(services, fault_redis, make_queue, sleeper):
    queue = make_queue(visibility_timeout_s=10)
    services.worker(fault_redis.url, queue.url, visibility_timeout_s=10)
    front = services.front(fault_redis.url, queue.url)

    first_status, first = post_run(front, 0)
    fault_redis.restart(down_s=1)
    second_status, second = post_run(front, 0)

    assert first_status == 200
    assert first["status"] == "SUCCESS"
    assert second_status == 200
    assert second["status"] == "SUCCESS"


def test_redis_restart_during_wait(services, fault_redis, make_queue, sleeper):
    queue = make_queue(visibility_timeout_s=10)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=10)
    front = services.front(fault_redis.url, queue.url)
    outcome: dict = {}

    caller = threading.Thread(target=lambda: outcome.update(zip(("status", "body"), post_run(front, 4))))
    caller.start()
    request_id = _wait_for_run_started(worker)
    fault_redis.stop()
    time.sleep(2)
    fault_redis.start()
    caller.join(timeout=40)
    # The counter starts at 0 with the new server, so it counts only reconnections.
    reconnections = connections_received(fault_redis) - 1

    assert outcome["status"] == 200
    assert outcome["body"]["requestId"] == request_id
    assert outcome["body"]["status"] == "SUCCESS"
    # Controller and worker reconnect a handful of times, not in a loop.
    assert reconnections <= 12


def test_worker_without_redis_keeps_result(services, fault_redis, make_queue, sleeper):
    queue = make_queue(visibility_timeout_s=10)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=10)
    front = services.front(fault_redis.url, queue.url)

    _, accepted = http_json("POST", f"{front.url}/run?async=true", {"functionId": "fault-sleeper", "inputData": {"sleepS": 2}})
    request_id = accepted["requestId"]
    worker.wait_for_log(RUN_STARTED, timeout_s=30, requestId=request_id)
    fault_redis.stop()
    worker.wait_for_log("cannot hand the result to Redis", timeout_s=30, requestId=request_id, attempt=3)
    fault_redis.start()
    deadline = time.monotonic() + 60
    status, body = 0, {}
    while time.monotonic() < deadline and not (status == 200 and body.get("status") == "SUCCESS"):
        status, body = http_json("GET", f"{front.url}/runs/{request_id}")
        time.sleep(0.5)
    attempts = [e["attempt"] for e in worker.log_lines() if e.get("message") == "cannot hand the result to Redis"]

    assert body.get("status") == "SUCCESS"
    assert run_starts([worker])[request_id] == 1
    # Backoff: a few tries spread over seconds, not a tight loop.
    assert 3 <= len(attempts) <= 6


def _wait_for_run_started(worker, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in worker.log_lines():
            if entry.get("message") == RUN_STARTED:
                return entry["requestId"]
        time.sleep(0.1)
    raise AssertionError(f"no run started within {timeout_s} s; see {worker.log_path}")


# -- 6. half-open subscription ---------------------------------------------------------------


def test_killed_subscription_still_returns_result(services, fault_redis, make_queue, sleeper):
    queue = make_queue(visibility_timeout_s=10)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=10)
    front = services.front(fault_redis.url, queue.url)
    outcome: dict = {}

    caller = threading.Thread(target=lambda: outcome.update(zip(("status", "body"), post_run(front, 3))))
    caller.start()
    _wait_for_run_started(worker)
    killed = fault_redis.client().execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    caller.join(timeout=30)

    assert killed == 1
    assert outcome["status"] == 200
    assert outcome["body"]["status"] == "SUCCESS"


def test_frozen_subscription_found_by_key_poll(fault_redis, tcp_proxy):
    proxy = tcp_proxy(fault_redis.port)
    proxied = redis.Redis(host="127.0.0.1", port=proxy.port, socket_connect_timeout=2, socket_timeout=5)
    store = ResultStore(fault_redis.client(), ttl_s=60)
    request_id = str(uuid.uuid4())
    result = RunResult(request_id=request_id, function_id="fault-sleeper", status=RunStatus.SUCCESS)

    with ResultWaiter(proxied, request_id) as waiter:
        # Only the subscription's connection is open yet; from here on it carries no byte.
        frozen = proxy.freeze()
        threading.Timer(0.5, store.store_and_publish, args=(result,)).start()
        started = time.monotonic()
        received = waiter.wait(20_000)
        elapsed_s = time.monotonic() - started
    subscribers = fault_redis.client().pubsub_numsub(keys.run_channel(request_id))

    assert frozen == 1
    assert received == result
    assert elapsed_s < KEY_POLL_INTERVAL_S + 1
    # The frozen connection still counts as a subscriber on the server until it is closed.
    assert subscribers[0][0] == keys.run_channel(request_id).encode()


# -- 7. SQS unreachable from the controller --------------------------------------------------


def test_sqs_down_fails_fast_without_subscription(services, fault_redis, make_queue, sleeper):
    queue = make_queue()
    front = services.front(fault_redis.url, queue.url, AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{free_port()}")

    started = time.monotonic()
    status, body = post_run(front, 0)
    elapsed_s = time.monotonic() - started
    client = fault_redis.client()
    channels = client.pubsub_channels("nanogrid:run:*")
    pubsub_clients = [c for c in client.client_list() if int(c.get("sub", 0)) or int(c.get("psub", 0))]

    assert status == 503
    assert body["code"] == "DEPENDENCY_UNAVAILABLE"
    assert body["dependency"] == "SQS"
    assert elapsed_s < 10
    assert channels == []
    assert pubsub_clients == []


# -- 9. duplicate request --------------------------------------------------------------------


def test_idempotent_retry_returns_first_run(services, fault_redis, make_queue, sleeper):
    queue = make_queue(visibility_timeout_s=10)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=10)
    front = services.front(fault_redis.url, queue.url)
    headers = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    outcomes: list = []

    # The retry arrives while the first call still waits, as after a client-side timeout.
    first = threading.Thread(target=lambda: outcomes.append(post_run(front, 2, headers)))
    first.start()
    time.sleep(0.5)
    retry_status, retry = post_run(front, 2, headers)
    first.join(timeout=30)
    later_status, later = post_run(front, 2, headers)
    first_status, first_body = outcomes[0]

    assert first_status == 200
    assert retry_status == 200
    assert later_status == 200
    assert retry == first_body
    assert later == first_body
    assert run_starts([worker]) == {first_body["requestId"]: 1}


def test_idempotent_retry_after_sqs_outage(services, fault_redis, make_queue, sleeper, tcp_proxy, moto_url):
    queue = make_queue(visibility_timeout_s=10)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=10)
    proxy = tcp_proxy(int(moto_url.rsplit(":", 1)[1]))
    front = services.front(fault_redis.url, queue.url, AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{proxy.port}")
    headers = {"Idempotency-Key": f"order-{uuid.uuid4()}"}

    proxy.close_port()
    failed_status, failed = post_run(front, 0, headers)
    proxy.open_port()
    retry_status, retry = post_run(front, 0, headers)

    assert failed_status == 503
    assert failed["dependency"] == "SQS"
    # The failed call queued nothing, so its key must not pin the retry to a run that never ran.
    assert retry_status == 200
    assert retry["status"] == "SUCCESS"
    assert run_starts([worker]) == {retry["requestId"]: 1}
