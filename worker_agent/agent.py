"""The worker's main loop: poll SQS, run each job in a sandbox, hand the result to Redis, delete.

A message is deleted only after its result is stored and published. If the worker dies first,
SQS delivers the message again after its visibility timeout, so no run is lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

import docker
import redis
from botocore.exceptions import BotoCoreError, ClientError
from nanogrid_protocol import JobMessage, RunResult, RunStatus, now_ms
from pydantic import ValidationError

from worker_agent import logs
from worker_agent.cgroups import sweep_stale_cgroups
from worker_agent.errors import ResultStoreError, WorkerError
from worker_agent.results import ResultStore
from worker_agent.runner import FunctionRunner
from worker_agent.sandbox import LABEL_MANAGED, LABEL_WORKER_ID, remove_container
from worker_agent.settings import WorkerSettings

logger = logging.getLogger(__name__)

# A job that failed on retryable platform faults this many times gets a final ERROR result,
# or fewer when the queue's redrive policy moves the message to the DLQ sooner.
MAX_RECEIVES = 5
# Backoff between tries to hand a result to Redis while the message stays in SQS.
STORE_RETRY_DELAYS_S = (0.2, 0.5, 1, 2, 5)
# Seconds to pause polling after SQS itself fails, so an outage does not spin the loop.
POLL_ERROR_PAUSE_S = 2
# Seconds to wait, after the stop grace period, for cut-short runs to give their messages back.
ABANDON_WAIT_S = 15


class Agent:
    def __init__(
        self,
        settings: WorkerSettings,
        sqs_client,
        results: ResultStore,
        runner: FunctionRunner,
        docker_client: docker.DockerClient,
    ):
        self._settings = settings
        self._sqs = sqs_client
        self._results = results
        self._runner = runner
        self._docker = docker_client
        self._pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="run")
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._stopping = threading.Event()
        # Set when the stop grace period ends with runs in flight: their containers are removed,
        # so what they return reports nothing about the function and must not become its result.
        self._abandoning = threading.Event()
        self._in_flight: set[Future] = set()
        self._max_receives = MAX_RECEIVES

    def run_forever(self) -> None:
        logger.info("worker started", extra={"queueUrl": self._settings.queue_url, "concurrency": self._settings.concurrency})
        self.remove_orphan_containers()
        removed = sweep_stale_cgroups()
        if removed:
            logger.info("removed per-run cgroups left by earlier runs", extra={"cgroups": removed})
        self._max_receives = self._read_max_receives()
        self._runner.start()

        while not self._stopping.is_set():
            free_slots = self._acquire_slots()
            messages = self._poll(free_slots)
            self._dispatch(messages, free_slots)

        self._finish_in_flight()
        self._runner.close()
        logger.info("worker stopped", extra={"pool": self._runner.pool_metrics()})

    def stop(self) -> None:
        """Stop taking messages; runs in flight finish. Safe to call from a signal handler."""
        self._stopping.set()

    # -- polling ---------------------------------------------------------------------------

    def _acquire_slots(self) -> int:
        """Block until at least one run slot is free, then take every free slot (at most 10,
        the most SQS returns in one receive)."""
        while not self._slots.acquire(timeout=0.5):
            if self._stopping.is_set():
                return 0
        slots = 1
        while slots < 10 and self._slots.acquire(blocking=False):
            slots += 1
        return slots

    def _poll(self, max_messages: int) -> list[dict]:
        if max_messages == 0 or self._stopping.is_set():
            return []
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._settings.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=self._settings.poll_wait_s,
                VisibilityTimeout=self._settings.visibility_timeout_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("SQS receive failed; retrying", extra={"error": str(exc)})
            self._stopping.wait(POLL_ERROR_PAUSE_S)
            return []
        return response.get("Messages", [])

    def _dispatch(self, messages: list[dict], slots_taken: int) -> None:
        for message in messages:
            if self._stopping.is_set():
                logger.info("stopping: returning a received message to the queue", extra={"messageId": message.get("MessageId")})
                self._release_message(message)
                self._slots.release()
                continue
            future = self._pool.submit(self._handle_message, message)
            self._in_flight.add(future)
            future.add_done_callback(self._in_flight.discard)
        for _ in range(slots_taken - len(messages)):
            self._slots.release()

    # -- one message -----------------------------------------------------------------------

    def _handle_message(self, message: dict) -> None:
        try:
            job = self._parse(message)
            if job is None:
                return
            with logs.run_context(requestId=job.request_id, functionId=job.function.function_id):
                self._run_job(job, message)
        except Exception:
            logger.exception("unexpected failure while handling a message; it stays in the queue")
        finally:
            self._slots.release()

    def _parse(self, message: dict) -> JobMessage | None:
        try:
            return JobMessage.model_validate_json(message["Body"])
        except ValidationError as exc:
            self._reject_poison(message, exc)
            return None

    def _run_job(self, job: JobMessage, message: dict) -> None:
        received_at_ms = now_ms()
        logger.info("job received", extra={"queuedMs": received_at_ms - job.enqueued_at_ms})

        lock = self._begin(job, message)
        if lock is None:
            return

        heartbeat = VisibilityHeartbeat(self._sqs, self._settings, message["ReceiptHandle"], lock)
        heartbeat.start()
        delivered = False
        try:
            result = self._execute(job, message)
            if result is None:
                return
            if self._abandoning.is_set():
                logger.warning("stop grace period over; returning the message to the queue without a result")
                self._release_message(message)
                return
            delivered = self._deliver(result)
            if not delivered:
                return
        finally:
            heartbeat.stop()
            # Once the result is stored, a redelivered copy finds it before it tries the lock,
            # so the lock may simply expire. A run that stored nothing releases it, so that the
            # next copy need not wait for the expiry.
            if not delivered:
                _release_quietly(lock)
        self._delete(message)
        logger.info(
            "job done",
            extra={"status": result.status.value, "durationMillis": result.duration_millis, "totalMs": now_ms() - received_at_ms},
        )

    def _begin(self, job: JobMessage, message: dict):
        """Return the run lock when this copy of the message is to run, else None.

        A copy whose run already finished publishes the stored result again and is deleted, so
        a redelivered message never runs the function twice. A copy that SQS delivered while
        another worker still runs it stays hidden in the queue. When Redis cannot be reached,
        the message stays for a later try.
        """
        try:
            start = self._results.begin_run(
                job.request_id, job.function.function_id, self._settings.worker_id, self._settings.visibility_timeout_s
            )
        except ResultStoreError as exc:
            logger.warning("cannot begin the run; leaving the message for a later try", extra={"error": str(exc)})
            return None
        if start.stored is not None:
            logger.info("result already stored; publishing it again instead of running the job twice")
            if self._deliver(start.stored):
                self._delete(message)
            return None
        if start.lock is None:
            logger.info("another worker is running this request; leaving this copy hidden in the queue")
            self._hide_message(message, self._settings.visibility_timeout_s)
        return start.lock

    def _execute(self, job: JobMessage, message: dict) -> RunResult | None:
        """Run the job, or return None to leave the message for a later try."""
        # One line per execution: the fault tests and bench/soak.py count these per requestId.
        logger.info("run started")
        try:
            return self._runner.run(job)
        except WorkerError as exc:
            receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if receives < self._max_receives:
                logger.warning("retryable platform fault; the message will be delivered again", extra={"error": str(exc), "receiveCount": receives})
                return None
            logger.error("platform fault on every try; giving up", extra={"error": str(exc), "receiveCount": receives})
            return RunResult(
                request_id=job.request_id,
                function_id=job.function.function_id,
                status=RunStatus.ERROR,
                error_message=f"the platform failed {receives} times to run this job; last error: {exc}",
                worker_id=self._settings.worker_id,
            )

    def _deliver(self, result: RunResult) -> bool:
        """Store and publish the result, retrying with backoff. On failure the message stays
        undeleted, so it is delivered again and the run's outcome is not lost."""
        for attempt, delay_s in enumerate((0, *STORE_RETRY_DELAYS_S), start=1):
            if delay_s:
                time.sleep(delay_s)
            try:
                self._results.store_and_publish(result)
                return True
            except ResultStoreError as exc:
                logger.warning("cannot hand the result to Redis", extra={"error": str(exc), "attempt": attempt})
        logger.error("result not stored; leaving the message in the queue for another try")
        return False

    def _delete(self, message: dict) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self._settings.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (BotoCoreError, ClientError) as exc:
            # The result is already stored, so a redelivered copy finds it and runs nothing.
            logger.warning("cannot delete the SQS message", extra={"error": str(exc)})

    def _release_message(self, message: dict) -> None:
        """Make a message that this worker will not run visible to other workers at once."""
        self._hide_message(message, 0)

    def _hide_message(self, message: dict, timeout_s: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._settings.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=timeout_s
            )
        except (BotoCoreError, ClientError) as exc:
            logger.warning("cannot change message visibility", extra={"error": str(exc), "visibilityTimeoutS": timeout_s})

    def _reject_poison(self, message: dict, error: ValidationError) -> None:
        """Reject a message that can never run with an ERROR result when its requestId can be read,
        then delete it so it does not circle the queue."""
        request_id, function_id = _read_ids(message.get("Body", ""))
        reason = _describe_invalid(error)
        with logs.run_context(requestId=request_id, functionId=function_id):
            logger.error("invalid job message; deleting it", extra={"error": reason})
            if request_id:
                result = RunResult(
                    request_id=request_id,
                    function_id=function_id or "",
                    status=RunStatus.ERROR,
                    error_message=f"the job message is invalid and was not run: {reason}",
                    worker_id=self._settings.worker_id,
                )
                if not self._deliver(result):
                    return
            self._delete(message)

    # -- start and stop --------------------------------------------------------------------

    def remove_orphan_containers(self) -> None:
        """Remove containers this worker id left behind, for example after a crash."""
        filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_WORKER_ID}={self._settings.worker_id}"]}
        for container in self._docker.containers.list(all=True, ignore_removed=True, filters=filters):
            logger.warning("removing leftover container", extra={"containerId": container.id[:12]})
            remove_container(container)

    def _read_max_receives(self) -> int:
        """Return the receive count at which a job failing on platform faults gets its final
        result: at most the queue's maxReceiveCount, because SQS moves the message to the DLQ
        on the receive after that one and the caller would never get a result."""
        try:
            attributes = self._sqs.get_queue_attributes(QueueUrl=self._settings.queue_url, AttributeNames=["RedrivePolicy"])
            policy = json.loads(attributes.get("Attributes", {}).get("RedrivePolicy") or "{}")
            max_receive_count = int(policy.get("maxReceiveCount", MAX_RECEIVES))
        except (BotoCoreError, ClientError, ValueError) as exc:
            logger.warning("cannot read the queue's redrive policy; giving up on platform faults after the default count",
                           extra={"error": str(exc), "maxReceives": MAX_RECEIVES})
            return MAX_RECEIVES
        return max(1, min(MAX_RECEIVES, max_receive_count))

    def _finish_in_flight(self) -> None:
        in_flight = set(self._in_flight)
        logger.info("stopping: waiting for runs in flight", extra={"runs": len(in_flight), "graceS": self._settings.stop_grace_s})
        _, unfinished = wait(in_flight, timeout=self._settings.stop_grace_s)
        if unfinished:
            # Their messages stay undeleted, so SQS delivers them again after the visibility timeout.
            logger.warning("grace period over; returning unfinished runs to the queue", extra={"runs": len(unfinished)})
            self._abandoning.set()
            self.remove_orphan_containers()
            # With their containers gone the runs end soon and give their messages back.
            wait(unfinished, timeout=ABANDON_WAIT_S)
        self._pool.shutdown(wait=False, cancel_futures=True)


class VisibilityHeartbeat:
    """Extends a message's visibility while its run goes on, so no other worker takes it."""

    def __init__(self, sqs_client, settings: WorkerSettings, receipt_handle: str, run_lock=None):
        self._sqs = sqs_client
        self._run_lock = run_lock
        self._queue_url = settings.queue_url
        self._timeout_s = settings.visibility_timeout_s
        self._receipt_handle = receipt_handle
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
        self._context = logs.current_ids()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        with logs.run_context(**self._context):
            while not self._stopped.wait(self._timeout_s / 3):
                try:
                    self._sqs.change_message_visibility(
                        QueueUrl=self._queue_url, ReceiptHandle=self._receipt_handle, VisibilityTimeout=self._timeout_s
                    )
                except (BotoCoreError, ClientError) as exc:
                    logger.warning("cannot extend message visibility", extra={"error": str(exc)})
                if self._run_lock is not None:
                    try:
                        self._run_lock.reacquire()
                    except redis.exceptions.LockError as exc:
                        logger.warning("run lock lost; another copy may start", extra={"error": str(exc)})
                    except redis.RedisError as exc:
                        logger.warning("cannot renew the run lock", extra={"error": str(exc)})


def _release_quietly(lock) -> None:
    try:
        lock.release()
    except (redis.exceptions.LockError, redis.RedisError) as exc:
        # The lock expires by itself; a failed release only delays a redelivered copy.
        logger.warning("cannot release the run lock", extra={"error": str(exc)})


def _describe_invalid(error: ValidationError) -> str:
    """Name the first invalid field and why, such as "schemaVersion: Input should be 1"."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else first["msg"]


def _read_ids(body: str) -> tuple[str | None, str | None]:
    """Best-effort requestId and functionId from a body that failed validation."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    request_id = data.get("requestId") if isinstance(data.get("requestId"), str) else None
    function = data.get("function") if isinstance(data.get("function"), dict) else {}
    function_id = function.get("functionId") if isinstance(function.get("functionId"), str) else None
    return request_id, function_id
