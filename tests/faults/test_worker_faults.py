"""Worker faults against real Redis, moto SQS and S3, Docker and worker processes: a worker
killed or stopped mid-run, a slow run past its visibility timeout, a failed delete and poison
messages. Executions are counted from the workers' "run started" log lines."""

from __future__ import annotations

import json
import signal
import time

import pytest
from nanogrid_protocol import RunStatus, keys
from worker_agent.sandbox import LABEL_MANAGED, LABEL_WORKER_ID

from nanogrid.stack import free_port
from tests.faults.conftest import SLEEP_SOURCE, RUN_STARTED, http_json, run_starts, send_signal_to, wait_for_final
from tests.integration.helpers import make_job, queue_message_count, register_function, wait_for_stored_result

pytestmark = pytest.mark.docker


def sleeper(s3_client, code_bucket, timeout_ms: int = 30_000):
    return register_function(s3_client, code_bucket, "fault-sleeper", SLEEP_SOURCE, timeout_ms=timeout_ms)


def worker_containers(docker_client, worker_id: str) -> list:
    filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_WORKER_ID}={worker_id}"]}
    return docker_client.containers.list(all=True, ignore_removed=True, filters=filters)


def visible_count(sqs_client, queue_url: str) -> int:
    attributes = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


# -- 1. worker killed mid-run ----------------------------------------------------------------


def test_killed_worker_run_finishes_elsewhere(services, fault_redis, make_queue, s3_client, code_bucket, docker_client):
    sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=6)
    first = services.worker(fault_redis.url, queue.url, visibility_timeout_s=6)
    front = services.front(fault_redis.url, queue.url)

    status, accepted = http_json("POST", f"{front.url}/run?async=true", {"functionId": "fault-sleeper", "inputData": {"sleepS": 5}})
    request_id = accepted["requestId"]
    first.wait_for_log(RUN_STARTED, timeout_s=30, requestId=request_id)
    time.sleep(1)
    send_signal_to(first, signal.SIGKILL)
    # The container outlives its worker, because dockerd owns it.
    left_behind = len(worker_containers(docker_client, first.worker_id))
    second = services.worker(fault_redis.url, queue.url, visibility_timeout_s=6)
    final = wait_for_final(front.url, request_id, timeout_s=60)
    time.sleep(1)

    assert status == 202
    assert left_behind >= 1
    assert final["status"] == "SUCCESS"
    assert final["result"] == {"slept": 5}
    assert final["workerId"] == second.worker_id
    assert run_starts([first, second])[request_id] == 2
    assert http_json("GET", f"{front.url}/runs/{request_id}")[1] == final


def test_restarted_worker_removes_its_containers(services, fault_redis, make_queue, s3_client, code_bucket, docker_client):
    sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=6)
    first = services.worker(fault_redis.url, queue.url, visibility_timeout_s=6)
    front = services.front(fault_redis.url, queue.url)

    _, accepted = http_json("POST", f"{front.url}/run?async=true", {"functionId": "fault-sleeper", "inputData": {"sleepS": 5}})
    request_id = accepted["requestId"]
    first.wait_for_log(RUN_STARTED, timeout_s=30, requestId=request_id)
    send_signal_to(first, signal.SIGKILL)
    left_behind = {c.id[:12] for c in worker_containers(docker_client, first.worker_id)}
    restarted = services.worker(fault_redis.url, queue.url, worker_id=first.worker_id, visibility_timeout_s=6)
    final = wait_for_final(front.url, request_id, timeout_s=60)
    removed = {entry["containerId"] for entry in restarted.log_lines() if entry.get("message") == "removing leftover container"}

    # A warm container's runtime exits once the dead worker's socket closes, and Docker then
    # removes it (auto_remove); the restarted worker removes whatever is still there.
    assert left_behind
    assert removed <= left_behind
    assert not {c.id[:12] for c in worker_containers(docker_client, first.worker_id)} & left_behind
    assert final["status"] == "SUCCESS"
    assert final["workerId"] == first.worker_id


# -- 2. slow run, short visibility -----------------------------------------------------------


def test_slow_run_outlasting_visibility_runs_once(services, fault_redis, make_queue, s3_client, code_bucket):
    sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=5)
    workers = [services.worker(fault_redis.url, queue.url, visibility_timeout_s=5) for _ in range(2)]
    front = services.front(fault_redis.url, queue.url)

    status, final = http_json("POST", f"{front.url}/run", {"functionId": "fault-sleeper", "inputData": {"sleepS": 8}})
    # Two more visibility periods in which a redelivered copy would have started a second run.
    time.sleep(10)

    assert status == 200
    assert final["status"] == "SUCCESS"
    assert run_starts(workers)[final["requestId"]] == 1


def test_redelivered_copy_runs_once(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=5)
    workers = [services.worker(fault_redis.url, queue.url, visibility_timeout_s=5) for _ in range(2)]
    redis_client = fault_redis.client()
    job = make_job(function, {"sleepS": 6})
    subscriber = redis_client.pubsub()
    subscriber.subscribe(keys.run_channel(job.request_id))

    # The same body twice is what SQS does when it redelivers: one copy meets the run lock while
    # the run goes on, and comes back after the result is stored.
    sqs_client.send_message(QueueUrl=queue.url, MessageBody=job.to_json())
    time.sleep(1)
    sqs_client.send_message(QueueUrl=queue.url, MessageBody=job.to_json())
    result = wait_for_stored_result(redis_client, job.request_id, timeout_s=30)
    deadline = time.monotonic() + 30
    while queue_message_count(sqs_client, queue.url) and time.monotonic() < deadline:
        time.sleep(0.2)
    notices = []
    while (message := subscriber.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            notices.append(json.loads(message["data"]))
    subscriber.close()
    logged = [entry["message"] for worker in workers for entry in worker.log_lines() if entry.get("requestId") == job.request_id]

    assert result.status is RunStatus.SUCCESS
    assert run_starts(workers)[job.request_id] == 1
    assert "another worker is running this request; leaving this copy hidden in the queue" in logged
    assert "result already stored; publishing it again instead of running the job twice" in logged
    assert len(notices) == 2
    assert queue_message_count(sqs_client, queue.url) == 0


# -- 3. delete fails -------------------------------------------------------------------------


def test_failed_delete_leaves_one_run(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client, tcp_proxy, moto_url):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=5)
    proxy = tcp_proxy(int(moto_url.rsplit(":", 1)[1]))
    # Only SQS goes through the proxy (botocore reads AWS_ENDPOINT_URL_SQS first); S3 and Redis stay reachable.
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=5, env={"AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{proxy.port}"})
    redis_client = fault_redis.client()
    job = make_job(function, {"sleepS": 3})

    sqs_client.send_message(QueueUrl=queue.url, MessageBody=job.to_json())
    worker.wait_for_log(RUN_STARTED, timeout_s=30, requestId=job.request_id)
    proxy.close_port()
    failed = worker.wait_for_log("cannot delete the SQS message", timeout_s=60, requestId=job.request_id)
    stored = wait_for_stored_result(redis_client, job.request_id, timeout_s=5)
    proxy.open_port()
    # The undeleted message comes back after its visibility timeout and meets the stored result.
    worker.wait_for_log("result already stored; publishing it again instead of running the job twice", timeout_s=30, requestId=job.request_id)
    deadline = time.monotonic() + 20
    while queue_message_count(sqs_client, queue.url) and time.monotonic() < deadline:
        time.sleep(0.2)
    later = make_job(function, {"sleepS": 0})
    sqs_client.send_message(QueueUrl=queue.url, MessageBody=later.to_json())
    later_result = wait_for_stored_result(redis_client, later.request_id, timeout_s=30)

    assert failed["level"] == "WARNING"
    assert stored.status is RunStatus.SUCCESS
    assert run_starts([worker])[job.request_id] == 1
    assert queue_message_count(sqs_client, queue.url) == 0
    assert later_result.status is RunStatus.SUCCESS
    assert worker.process.poll() is None


# -- 4. poison messages ----------------------------------------------------------------------


def test_poison_bodies_end_and_worker_goes_on(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=5, max_receive_count=2)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=5)
    front = services.front(fault_redis.url, queue.url)
    future_job = json.loads(make_job(function).to_json())
    future_job["schemaVersion"] = 99

    sqs_client.send_message(QueueUrl=queue.url, MessageBody="this is not JSON")
    sqs_client.send_message(QueueUrl=queue.url, MessageBody=json.dumps(future_job))
    future_result = wait_for_final(front.url, future_job["requestId"], timeout_s=30)
    deadline = time.monotonic() + 20
    while queue_message_count(sqs_client, queue.url) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = (queue_message_count(sqs_client, queue.url), queue_message_count(sqs_client, queue.dlq_url))
    status, after = http_json("POST", f"{front.url}/run", {"functionId": "fault-sleeper", "inputData": {"sleepS": 0}})
    rejected = [entry for entry in worker.log_lines() if entry.get("message") == "invalid job message; deleting it"]

    assert future_result["status"] == "ERROR"
    assert "schemaVersion" in future_result["errorMessage"]
    assert len(rejected) == 2
    assert left == (0, 0)
    assert status == 200
    assert after["status"] == "SUCCESS"
    assert run_starts([worker]) == {after["requestId"]: 1}


def test_missing_code_object_ends_in_error(services, fault_redis, make_queue, s3_client, code_bucket):
    function = register_function(s3_client, code_bucket, "fault-gone", "def handler(event, context):\n    return 1\n")
    s3_client.delete_object(Bucket=code_bucket, Key=keys.code_object_key(function.code_sha256))
    queue = make_queue(visibility_timeout_s=5)
    services.worker(fault_redis.url, queue.url, visibility_timeout_s=5)
    front = services.front(fault_redis.url, queue.url)

    status, result = http_json("POST", f"{front.url}/run", {"functionId": "fault-gone"})

    assert status == 200
    assert result["status"] == "ERROR"
    assert function.code_sha256 in result["errorMessage"]


def test_retryable_fault_ends_before_dlq(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client):
    function = register_function(s3_client, code_bucket, "fault-no-s3", "def handler(event, context):\n    return 1\n")
    queue = make_queue(visibility_timeout_s=5, max_receive_count=2)
    # S3 at a closed loopback port: every code download fails with a retryable error.
    closed = f"http://127.0.0.1:{free_port()}"
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=5, env={"AWS_ENDPOINT_URL_S3": closed})
    job = make_job(function)

    sqs_client.send_message(QueueUrl=queue.url, MessageBody=job.to_json())
    result = wait_for_stored_result(fault_redis.client(), job.request_id, timeout_s=40)
    deadline = time.monotonic() + 10
    while queue_message_count(sqs_client, queue.url) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert result.status is RunStatus.ERROR
    assert "failed 2 times" in result.error_message
    assert run_starts([worker])[job.request_id] == 2
    assert queue_message_count(sqs_client, queue.url) == 0
    assert queue_message_count(sqs_client, queue.dlq_url) == 0


def test_unstorable_poison_moves_to_dlq(services, make_queue, s3_client, code_bucket, sqs_client):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=5, max_receive_count=2)
    # Redis at a closed loopback port: the ERROR result cannot be stored, so the message stays.
    worker = services.worker(f"redis://127.0.0.1:{free_port()}/0", queue.url, visibility_timeout_s=5)
    body = json.loads(make_job(function).to_json())
    body["schemaVersion"] = 99

    sqs_client.send_message(QueueUrl=queue.url, MessageBody=json.dumps(body))
    deadline = time.monotonic() + 60
    while queue_message_count(sqs_client, queue.dlq_url) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    rejected = [e for e in worker.log_lines() if e.get("message") == "invalid job message; deleting it"]

    assert queue_message_count(sqs_client, queue.dlq_url) == 1
    assert queue_message_count(sqs_client, queue.url) == 0
    assert len(rejected) == 2
    assert all(e.get("requestId") == body["requestId"] for e in rejected)
    assert worker.process.poll() is None


def test_dlq_move_happens_on_receive(make_queue, sqs_client):
    queue = make_queue(visibility_timeout_s=1, max_receive_count=1)

    sqs_client.send_message(QueueUrl=queue.url, MessageBody="{}")
    first = sqs_client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1).get("Messages", [])
    time.sleep(2)
    # Past its visibility timeout and past maxReceiveCount, the message is still in the job queue.
    before_receive = (queue_message_count(sqs_client, queue.url), queue_message_count(sqs_client, queue.dlq_url))
    second = sqs_client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1).get("Messages", [])
    after_receive = (queue_message_count(sqs_client, queue.url), queue_message_count(sqs_client, queue.dlq_url))

    assert len(first) == 1
    assert before_receive == (1, 0)
    assert second == []
    assert after_receive == (0, 1)


# -- 8. graceful stop ------------------------------------------------------------------------


def test_sigterm_finishes_runs_and_exits_zero(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=30)
    # A 5 s long poll is still open when SIGTERM arrives, so it may return a message to give back.
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=30, poll_wait_s=5, stop_grace_s=20)
    redis_client = fault_redis.client()
    running = make_job(function, {"sleepS": 4})
    waiting = make_job(function, {"sleepS": 0})

    sqs_client.send_message(QueueUrl=queue.url, MessageBody=running.to_json())
    worker.wait_for_log(RUN_STARTED, timeout_s=30, requestId=running.request_id)
    worker.signal(signal.SIGTERM)
    time.sleep(0.3)
    sqs_client.send_message(QueueUrl=queue.url, MessageBody=waiting.to_json())
    exit_code = worker.process.wait(timeout=40)
    # Visible at once: this worker's 30 s visibility would otherwise hide it from this receive.
    returned = sqs_client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=2).get("Messages", [])
    result = wait_for_stored_result(redis_client, running.request_id, timeout_s=1)

    assert exit_code == 0
    assert result.status is RunStatus.SUCCESS
    assert [json.loads(m["Body"])["requestId"] for m in returned] == [waiting.request_id]
    assert run_starts([worker]) == {running.request_id: 1}


def test_second_sigterm_exits_at_once(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=30)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=30, stop_grace_s=60)
    job = make_job(function, {"sleepS": 30})

    sqs_client.send_message(QueueUrl=queue.url, MessageBody=job.to_json())
    worker.wait_for_log(RUN_STARTED, timeout_s=30, requestId=job.request_id)
    worker.signal(signal.SIGTERM)
    worker.wait_for_log("stop signal received; finishing runs in flight", timeout_s=5)
    started = time.monotonic()
    worker.signal(signal.SIGTERM)
    exit_code = worker.process.wait(timeout=10)
    elapsed_s = time.monotonic() - started

    assert exit_code == 1
    assert elapsed_s < 2


def test_grace_over_stores_no_result(services, fault_redis, make_queue, s3_client, code_bucket, sqs_client):
    function = sleeper(s3_client, code_bucket)
    queue = make_queue(visibility_timeout_s=30)
    worker = services.worker(fault_redis.url, queue.url, visibility_timeout_s=30, stop_grace_s=2)
    redis_client = fault_redis.client()
    job = make_job(function, {"sleepS": 20})

    sqs_client.send_message(QueueUrl=queue.url, MessageBody=job.to_json())
    worker.wait_for_log(RUN_STARTED, timeout_s=30, requestId=job.request_id)
    worker.signal(signal.SIGTERM)
    exit_code = worker.process.wait(timeout=30)
    # The run was cut short by the stop, not by the function: no result, and the message
    # goes back to the queue for another worker.
    returned = sqs_client.receive_message(QueueUrl=queue.url, WaitTimeSeconds=2).get("Messages", [])

    assert exit_code == 0
    assert redis_client.get(keys.run_result_key(job.request_id)) is None
    assert [json.loads(m["Body"])["requestId"] for m in returned] == [job.request_id]
