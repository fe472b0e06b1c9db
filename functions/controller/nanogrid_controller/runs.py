"""Start runs and read them back: the logic behind POST /run and GET /runs/{requestId}."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import redis
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from nanogrid_protocol import (
    FunctionVersion,
    InputRef,
    JobMessage,
    RunRequest,
    RunResult,
    RunState,
    RunStatus,
    keys,
    limits,
    now_ms,
)

from nanogrid_controller.errors import (
    ControllerError,
    DependencyUnavailable,
    IdempotencyKeyReused,
    PayloadTooLarge,
    RunNotFound,
)
from nanogrid_controller.registry import FunctionRegistry
from nanogrid_controller.settings import ControllerSettings
from nanogrid_controller.waiter import ResultWaiter

# The same service as the parent Logger in app.py: without it, a child takes its name from
# POWERTOOLS_SERVICE_NAME and, where that is unset, raises OrphanedChildLoggerError.
logger = Logger(service="nanogrid-controller", child=True)

# Delete KEYS[1] only while its record names the requestId ARGV[1] (a JSON string), so a
# binding that expired and was taken over by another request stays.
# Pauses between tries to release a key after a failed start; None marks the last try.
RELEASE_RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, None)
RELEASE_IDEMPOTENCY_KEY_LUA = """
local record = redis.call('GET', KEYS[1])
if record and string.find(record, '"requestId": ' .. ARGV[1], 1, true) then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RunService:
    def __init__(
        self, settings: ControllerSettings, redis_client: redis.Redis, sqs_client, s3_client, registry: FunctionRegistry
    ):
        self._settings = settings
        self._redis = redis_client
        self._sqs = sqs_client
        self._s3 = s3_client
        self._registry = registry

    def start(
        self, request: RunRequest, remaining_ms: int, wait: bool = True, idempotency_key: str | None = None
    ) -> RunResult | RunState:
        """Queue a run and wait for its result. Return the result, or the run's state when the
        wait ends first; the run goes on either way.

        A request that repeats an earlier Idempotency-Key gets the earlier run instead of a new one.
        """
        function = self._registry.get(request.function_id)
        wait_ms = self.wait_budget_ms(request, function.timeout_ms, remaining_ms)
        request_id = str(uuid.uuid4())
        if idempotency_key is not None:
            first_request_id = self._claim_idempotency_key(idempotency_key, request, request_id)
            if first_request_id != request_id:
                logger.thread_safe_append_keys(requestId=first_request_id, functionId=function.function_id)
                logger.info("Idempotency-Key seen before; returning its run")
                return self._await_existing(first_request_id, function.function_id, wait_ms if wait else 0)
        logger.thread_safe_append_keys(requestId=request_id, functionId=function.function_id)

        try:
            job = self._build_job(request_id, function, request.input_data)

            if not wait:
                self._store_queued(job)
                self._send(job)
                return self._state(request_id, function.function_id)

            with ResultWaiter(self._redis, request_id) as waiter:
                self._store_queued(job)
                self._send(job)
                result = waiter.wait(wait_ms)
        except ControllerError:
            # Nothing was queued, because every step that raises comes before or is the send.
            # A retry with the same key must start a run, not wait for this one.
            if idempotency_key is not None:
                self._release_idempotency_key(idempotency_key, request, request_id)
            raise

        if result is not None:
            logger.info("run finished", extra={"status": result.status.value, "durationMillis": result.duration_millis})
            return result
        state = self._state(request_id, function.function_id)
        logger.info("wait ended before the run finished", extra={"waitMs": wait_ms, "status": state.status.value})
        return state

    def _claim_idempotency_key(self, idempotency_key: str, request: RunRequest, request_id: str) -> str:
        """Bind the key to request_id unless it is bound already; return the bound requestId."""
        key_sha256 = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
        body_sha256 = hashlib.sha256(request.to_json().encode("utf-8")).hexdigest()
        redis_key = keys.idempotency_key(request.function_id, key_sha256)
        record = json.dumps({"requestId": request_id, "bodySha256": body_sha256})
        try:
            if self._redis.set(redis_key, record, nx=True, ex=limits.RESULT_TTL_S):
                return request_id
            existing = json.loads(self._redis.get(redis_key) or "null")
        except redis.RedisError as exc:
            raise DependencyUnavailable("Redis", str(exc)) from exc
        if existing is None:
            # The key expired between SET NX and GET; this request takes it over.
            return self._claim_idempotency_key(idempotency_key, request, request_id)
        if existing["bodySha256"] != body_sha256:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used before with a different request body; use a new key for a new request",
                requestId=existing["requestId"],
            )
        return existing["requestId"]

    def _release_idempotency_key(self, idempotency_key: str, request: RunRequest, request_id: str) -> None:
        """Delete the key's binding if it still points at request_id."""
        key_sha256 = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
        redis_key = keys.idempotency_key(request.function_id, key_sha256)
        # The failure that brought us here is often Redis itself, restarting, so try a few times.
        for delay_s in RELEASE_RETRY_DELAYS_S:
            try:
                self._redis.eval(RELEASE_IDEMPOTENCY_KEY_LUA, 1, redis_key, json.dumps(request_id))
                return
            except redis.RedisError as exc:
                logger.warning("cannot release the Idempotency-Key of a run that was not queued",
                               extra={"error": str(exc), "retryInS": delay_s})
                if delay_s is not None:
                    time.sleep(delay_s)
        # NOTE: the binding then stays until it expires, and a retry with this key gets a run
        # that was never queued (202, then QUEUED until RESULT_TTL_S).

    def _await_existing(self, request_id: str, function_id: str, wait_ms: int) -> RunResult | RunState:
        with ResultWaiter(self._redis, request_id) as waiter:
            result = waiter.wait(wait_ms)
        return result if result is not None else self._state(request_id, function_id)

    def wait_budget_ms(self, request: RunRequest, function_timeout_ms: int, remaining_ms: int) -> int:
        """Return the smallest of the caller's timeoutMs, the function's timeout plus a margin, and the
        Lambda's remaining time minus a safety margin; never below zero."""
        budget = min(
            function_timeout_ms + self._settings.result_margin_ms,
            remaining_ms - self._settings.lambda_safety_ms,
        )
        if request.timeout_ms is not None:
            budget = min(budget, request.timeout_ms)
        return max(0, budget)

    def get(self, request_id: str) -> RunResult | RunState:
        try:
            raw_result, raw_state = self._redis.mget(keys.run_result_key(request_id), keys.run_state_key(request_id))
        except redis.RedisError as exc:
            raise DependencyUnavailable("Redis", str(exc)) from exc
        if raw_result:
            return RunResult.model_validate_json(raw_result)
        if raw_state:
            return RunState.model_validate_json(raw_state)
        raise RunNotFound(request_id)

    def _build_job(self, request_id: str, function: FunctionVersion, input_data: dict) -> JobMessage:
        """Build the job message, moving inputData to S3 when the message would exceed what SQS
        takes (claim check)."""
        input_json = json.dumps(input_data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(input_json) > limits.MAX_INPUT_BYTES:
            raise PayloadTooLarge(
                f"inputData is {len(input_json)} bytes as UTF-8 JSON, more than the limit of "
                f"{limits.MAX_INPUT_BYTES} bytes; store large data elsewhere and pass its location",
                sizeBytes=len(input_json),
                limitBytes=limits.MAX_INPUT_BYTES,
            )

        job = JobMessage(request_id=request_id, function=function, input_data=input_data, enqueued_at_ms=now_ms())
        if len(job.to_json().encode("utf-8")) <= limits.MAX_SQS_MESSAGE_BYTES:
            return job

        key = keys.input_object_key(request_id)
        try:
            self._s3.put_object(Bucket=self._settings.code_bucket, Key=key, Body=input_json, ContentType="application/json")
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable("S3", str(exc)) from exc
        logger.info("inputData stored in S3 for the job", extra={"sizeBytes": len(input_json), "key": key})
        input_ref = InputRef(key=key, sha256=hashlib.sha256(input_json).hexdigest(), size_bytes=len(input_json))
        return JobMessage(request_id=request_id, function=function, input_ref=input_ref, enqueued_at_ms=job.enqueued_at_ms)

    def _store_queued(self, job: JobMessage) -> None:
        state = RunState(
            request_id=job.request_id,
            function_id=job.function.function_id,
            status=RunStatus.QUEUED,
            updated_at_ms=job.enqueued_at_ms,
        )
        try:
            # NX: never move a run that a worker already marked RUNNING back to QUEUED.
            self._redis.set(keys.run_state_key(job.request_id), state.to_json(), ex=limits.RESULT_TTL_S, nx=True)
        except redis.RedisError as exc:
            raise DependencyUnavailable("Redis", str(exc)) from exc

    def _send(self, job: JobMessage) -> None:
        try:
            response = self._sqs.send_message(QueueUrl=self._settings.queue_url, MessageBody=job.to_json())
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable("SQS", str(exc)) from exc
        logger.info("job queued", extra={"messageId": response.get("MessageId")})

    def _state(self, request_id: str, function_id: str) -> RunState:
        try:
            raw = self._redis.get(keys.run_state_key(request_id))
        except redis.RedisError:
            raw = None
        if raw:
            return RunState.model_validate_json(raw)
        return RunState(request_id=request_id, function_id=function_id, status=RunStatus.QUEUED, updated_at_ms=now_ms())
