"""Hand a run's state and result to Redis: store first, then publish, so no waiter can miss it.

A controller that subscribes after the publish still finds the stored key, and one that
subscribed before gets the notice. Both orders are covered, whatever the timing.
"""

from __future__ import annotations

import logging
import os
import random
import time

import redis
from nanogrid_protocol import ResultNotice, RunResult, RunState, RunStatus, keys, limits, now_ms

from worker_agent.errors import ResultStoreError

logger = logging.getLogger(__name__)

# Test hook for bench/soak.py and the fault tests: when set to N > 0, the worker stores each
# result, waits a random 0 to N ms and only then publishes, which widens the window in which a
# controller must find the result by reading its key. Leave it unset in production.
ENV_FAULT_PUBLISH_DELAY_MS = "NANOGRID_FAULT_PUBLISH_DELAY_MS"


class ResultStore:
    def __init__(self, redis_client: redis.Redis, ttl_s: int = limits.RESULT_TTL_S):
        self._redis = redis_client
        self._ttl_s = ttl_s
        self._publish_delay_ms = int(os.environ.get(ENV_FAULT_PUBLISH_DELAY_MS) or 0)

    def mark_running(self, request_id: str, function_id: str, worker_id: str) -> None:
        state = RunState(
            request_id=request_id,
            function_id=function_id,
            status=RunStatus.RUNNING,
            updated_at_ms=now_ms(),
            worker_id=worker_id,
        )
        try:
            self._redis.set(keys.run_state_key(request_id), state.to_json(), ex=self._ttl_s)
        except redis.RedisError as exc:
            # The state is a hint for GET /runs; the run goes on without it.
            logger.warning("cannot store RUNNING state", extra={"error": str(exc)})

    def acquire_run_lock(self, request_id: str, ttl_s: int):
        """Take the lock that marks a request as running here; return it, or None when another
        worker holds it. The holder renews it with reacquire() while the run goes on; if the
        holder dies, the lock expires after ttl_s and a redelivered copy may run."""
        lock = self._redis.lock(keys.run_lock_key(request_id), timeout=ttl_s, blocking=False, thread_local=False)
        try:
            return lock if lock.acquire() else None
        except redis.RedisError as exc:
            raise ResultStoreError(f"cannot take the run lock of {request_id}: {exc}") from exc

    def stored_result(self, request_id: str) -> RunResult | None:
        try:
            raw = self._redis.get(keys.run_result_key(request_id))
        except redis.RedisError as exc:
            raise ResultStoreError(f"cannot read result of {request_id}: {exc}") from exc
        return RunResult.model_validate_json(raw) if raw else None

    def store_and_publish(self, result: RunResult) -> int:
        """Store the result, then publish its notice. Return how many subscribers received it."""
        notice = ResultNotice(request_id=result.request_id, status=result.status)
        if self._publish_delay_ms > 0:
            return self._store_then_publish_late(result, notice)
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(keys.run_result_key(result.request_id), result.to_json(), ex=self._ttl_s)
                pipe.publish(keys.run_channel(result.request_id), notice.to_json())
                _, receivers = pipe.execute()
        except redis.RedisError as exc:
            raise ResultStoreError(f"cannot store result of {result.request_id}: {exc}") from exc

        if receivers:
            logger.info("result published", extra={"status": result.status.value, "subscribers": receivers})
        else:
            logger.warning(
                "result published to no subscriber; the caller reads it with GET /runs/{requestId}",
                extra={"status": result.status.value, "subscribers": 0},
            )
        return receivers

    def _store_then_publish_late(self, result: RunResult, notice: ResultNotice) -> int:
        """Store, pause a random time below the fault delay, then publish (test hook only)."""
        try:
            self._redis.set(keys.run_result_key(result.request_id), result.to_json(), ex=self._ttl_s)
            time.sleep(random.uniform(0, self._publish_delay_ms / 1000))
            return self._redis.publish(keys.run_channel(result.request_id), notice.to_json())
        except redis.RedisError as exc:
            raise ResultStoreError(f"cannot store result of {result.request_id}: {exc}") from exc
