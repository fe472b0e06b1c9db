"""No lost results: the worker's store-then-publish meets the controller's subscribe-then-wait
in every order, against real Redis with injected delays.

A result counts as lost when the wait returns None. It counts as late when the wait returns it
but only after LATE_S, which means the notice was missed and a key read found it instead.
"""

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

# app.py creates the parent Logger that the child loggers of runs.py and waiter.py write through.
import nanogrid_controller.app  # noqa: F401
from nanogrid_controller.registry import FunctionRegistry
from nanogrid_controller.runs import RunService
from nanogrid_controller.settings import ControllerSettings
from nanogrid_controller.waiter import ResultWaiter
from nanogrid_protocol import JobMessage, RunRequest, RunResult, RunStatus
from worker_agent.results import ResultStore

from tests.integration.helpers import register_function

RUNS_PER_ORDER = 200
WAIT_TIMEOUT_MS = 5_000
# Below the waiter's KEY_POLL_INTERVAL_S, so a late result means the notice was missed.
LATE_S = 1.0
# A broken hand-off makes every run late by KEY_POLL_INTERVAL_S, so the loop stops
# after this many late runs instead of taking minutes to fail.
MAX_LATE_RUNS = 5
SERVICE_RUNS = 100
SERVICE_CALLERS = 4


def make_result(request_id: str) -> RunResult:
    return RunResult(request_id=request_id, function_id="handoff", status=RunStatus.SUCCESS, stdout=request_id)


def wait_once(redis_client, store: ResultStore, order: str, rng: random.Random) -> tuple[bool, float]:
    """Hand one result over in the given order; return (delivered, seconds the wait took)."""
    request_id = str(uuid.uuid4())
    result = make_result(request_id)
    publisher = None

    if order == "before-subscribe":
        store.store_and_publish(result)
    with ResultWaiter(redis_client, request_id) as waiter:
        if order == "before-wait":
            store.store_and_publish(result)
        elif order == "during-wait":
            delay_s = rng.uniform(0.001, 0.02)
            publisher = threading.Timer(delay_s, store.store_and_publish, args=(result,))
            publisher.start()
        started = time.monotonic()
        received = waiter.wait(WAIT_TIMEOUT_MS)
        elapsed_s = time.monotonic() - started
    if publisher is not None:
        publisher.join()
    return received == result, elapsed_s


def hand_over(redis_client, orders: list[str], seed: int) -> list[tuple[bool, float]]:
    """Run wait_once for each order; stop early once MAX_LATE_RUNS are late."""
    store = ResultStore(redis_client, ttl_s=60)
    rng = random.Random(seed)
    outcomes = []
    for order in orders:
        outcomes.append(wait_once(redis_client, store, order, rng))
        if sum(elapsed_s > LATE_S for _, elapsed_s in outcomes) >= MAX_LATE_RUNS:
            break
    return outcomes


def test_handoff_publish_before_wait(redis_client):
    orders = ["before-subscribe", "before-wait"] * (RUNS_PER_ORDER // 2)

    outcomes = hand_over(redis_client, orders, seed=1)
    lost = sum(not delivered for delivered, _ in outcomes)
    late = sum(elapsed_s > LATE_S for _, elapsed_s in outcomes)
    print(f"publish before wait: {lost} of {len(outcomes)} lost, {late} late")

    assert late == 0
    assert len(outcomes) == RUNS_PER_ORDER
    assert lost == 0
    assert late == 0


def test_handoff_publish_during_wait(redis_client):
    outcomes = hand_over(redis_client, ["during-wait"] * RUNS_PER_ORDER, seed=2)
    lost = sum(not delivered for delivered, _ in outcomes)
    late = sum(elapsed_s > LATE_S for _, elapsed_s in outcomes)
    print(f"publish during wait: {lost} of {len(outcomes)} lost, {late} late")

    assert late == 0
    assert len(outcomes) == RUNS_PER_ORDER
    assert lost == 0


class FakeWorker:
    """Receives jobs from SQS and publishes a result for each after a random delay, as a
    worker would, without Docker."""

    def __init__(self, sqs_client, queue_url: str, store: ResultStore, max_delay_s: float):
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._store = store
        self._max_delay_s = max_delay_s
        self._rng = random.Random(3)
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-run")
        self._thread = threading.Thread(target=self._poll, name="fake-worker", daemon=True)
        self._handled_lock = threading.Lock()
        self.handled = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and finish the jobs received; a second call does nothing more."""
        self._stopping.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            response = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in response.get("Messages", []):
                self._pool.submit(self._handle, message, self._rng.uniform(0, self._max_delay_s))

    def _handle(self, message: dict, delay_s: float) -> None:
        job = JobMessage.model_validate_json(message["Body"])
        time.sleep(delay_s)
        self._store.store_and_publish(make_result(job.request_id))
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        with self._handled_lock:
            self.handled += 1


@pytest.fixture
def fake_worker(sqs_client, queue_url, redis_client):
    worker = FakeWorker(sqs_client, queue_url, ResultStore(redis_client, ttl_s=60), max_delay_s=0.05)
    worker.start()
    yield worker
    worker.stop()


def test_handoff_through_run_service(redis_url, redis_client, sqs_client, s3_client, code_bucket, queue_url, fake_worker):
    function = register_function(s3_client, code_bucket, "handoff", "print('unused')\n", timeout_ms=5_000)
    settings = ControllerSettings(redis_url=redis_url, queue_url=queue_url, code_bucket=code_bucket, api_key="unused")
    service = RunService(
        settings,
        redis_client=redis_client,
        sqs_client=sqs_client,
        s3_client=s3_client,
        registry=FunctionRegistry(s3_client, code_bucket),
    )

    def start_one(_index: int):
        outcome = service.start(RunRequest(function_id=function.function_id), remaining_ms=29_000)
        return isinstance(outcome, RunResult) and outcome.stdout == outcome.request_id

    with ThreadPoolExecutor(max_workers=SERVICE_CALLERS) as callers:
        delivered = list(callers.map(start_one, range(SERVICE_RUNS)))
    # Stop first: a job counts as handled only after its message is deleted.
    fake_worker.stop()
    lost = delivered.count(False)
    print(f"RunService.start with a fake worker: {lost} of {SERVICE_RUNS} lost")

    assert lost == 0
    assert fake_worker.handled == SERVICE_RUNS
