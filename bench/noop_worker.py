"""No-op worker for the benchmark floor: receive each job and store a SUCCESS result at once.

It polls SQS and hands results to Redis the way worker_agent.agent does (free run slots, long
poll, ResultStore.store_and_publish, then delete), but runs no container, takes no run lock and
sends no visibility heartbeat. A run through it costs the SQS send, the long-poll receive, the
Redis hand-off and the HTTP front, which is what bench/run.py calls the floor.

Environment: NANOGRID_QUEUE_URL, NANOGRID_REDIS_URL, NANOGRID_CONCURRENCY (default 16),
NANOGRID_POLL_WAIT_S (default 1), plus the AWS variables that boto3 reads. SIGTERM stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from nanogrid_protocol import JobMessage, RunResult, RunStatus, now_ms
from pydantic import ValidationError

from worker_agent import logs
from worker_agent.errors import ResultStoreError
from worker_agent.results import ResultStore

logger = logging.getLogger(__name__)

# SQS returns at most 10 messages per receive.
MAX_MESSAGES_PER_RECEIVE = 10


class NoopWorker:
    def __init__(self, sqs_client, results: ResultStore, queue_url: str, concurrency: int, poll_wait_s: int):
        self._sqs = sqs_client
        self._results = results
        self._queue_url = queue_url
        self._poll_wait_s = poll_wait_s
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="noop")
        self._slots = threading.BoundedSemaphore(concurrency)
        self._stopping = threading.Event()

    def run_forever(self) -> None:
        logger.info("no-op worker started", extra={"queueUrl": self._queue_url})
        while not self._stopping.is_set():
            slots_taken = self._take_slots()
            messages = self._receive(slots_taken)
            for message in messages:
                self._executor.submit(self._handle, message)
            for _ in range(slots_taken - len(messages)):
                self._slots.release()
        self._executor.shutdown(wait=True)
        logger.info("no-op worker stopped")

    def stop(self) -> None:
        self._stopping.set()

    def _take_slots(self) -> int:
        while not self._slots.acquire(timeout=0.5):
            if self._stopping.is_set():
                return 0
        taken = 1
        while taken < MAX_MESSAGES_PER_RECEIVE and self._slots.acquire(blocking=False):
            taken += 1
        return taken

    def _receive(self, max_messages: int) -> list[dict]:
        if max_messages == 0 or self._stopping.is_set():
            return []
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=self._poll_wait_s
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("SQS receive failed; retrying in 1 s", extra={"error": str(exc)})
            self._stopping.wait(1)
            return []
        return response.get("Messages", [])

    def _handle(self, message: dict) -> None:
        try:
            job = JobMessage.model_validate_json(message["Body"])
            started_at_ms = now_ms()
            result = RunResult(
                request_id=job.request_id,
                function_id=job.function.function_id,
                status=RunStatus.SUCCESS,
                exit_code=0,
                version_id=job.function.version_id,
                worker_id="bench-noop-worker",
                started_at_ms=started_at_ms,
                finished_at_ms=now_ms(),
            )
            self._results.store_and_publish(result)
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (ValidationError, ResultStoreError, BotoCoreError, ClientError) as exc:
            logger.error("no-op run failed; the message stays in the queue", extra={"error": str(exc)})
        finally:
            self._slots.release()


def main() -> int:
    queue_url = os.environ["NANOGRID_QUEUE_URL"]
    redis_url = os.environ["NANOGRID_REDIS_URL"]
    concurrency = int(os.environ.get("NANOGRID_CONCURRENCY", "16"))
    poll_wait_s = int(os.environ.get("NANOGRID_POLL_WAIT_S", "1"))
    logs.configure("bench-noop-worker", os.environ.get("NANOGRID_LOG_LEVEL", "INFO"))

    # The same client settings as worker_agent.__main__, so the floor pays the same per call.
    sqs = boto3.client("sqs", config=Config(connect_timeout=5, read_timeout=poll_wait_s + 10,
                                            retries={"max_attempts": 3, "mode": "standard"}))
    redis_client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=30)
    worker = NoopWorker(sqs, ResultStore(redis_client), queue_url, concurrency, poll_wait_s)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: worker.stop())
    signal.signal(signal.SIGINT, lambda _signum, _frame: worker.stop())
    worker.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
