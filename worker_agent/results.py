"""Hand a run's state and result to Redis: store first, then publish, so no waiter can miss it.

A controller that subscribes after the publish still finds the stored key, and one that
subscribed before gets the notice. Both orders are covered, whatever the timing.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
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


BEGIN_RUN = 0
BEGIN_STORED = 1
BEGIN_BUSY = 2
# KEYS: result, lock, state. ARGV: lock token, lock TTL in ms, RUNNING state JSON, state TTL in s.
_BEGIN_RUN_SCRIPT = """
local stored = redis.call('GET', KEYS[1])
if stored then return {1, stored} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
return {0}
"""


@dataclass(frozen=True)
class RunStart:
    """Outcome of begin_run: a stored result to publish again, the run lock to run under, or
    neither, when another worker holds the lock."""

    stored: RunResult | None
    lock: object | None


class ResultStore:
    def __init__(self, redis_client: redis.Redis, ttl_s: int = limits.RESULT_TTL_S):
        self._redis = redis_client
        self._ttl_s = ttl_s
        self._begin_run_script = redis_client.register_script(_BEGIN_RUN_SCRIPT)
        self._publish_delay_ms = int(os.environ.get(ENV_FAULT_PUBLISH_DELAY_MS) or 0)

    def begin_run(self, request_id: str, function_id: str, worker_id: str, lock_ttl_s: int) -> RunStart:
        """Check for a stored result, take the run lock and mark the run RUNNING, in one round
        trip. Only a copy that finds no result and gets the lock marks the run."""
        token = uuid.uuid4().hex
        state = RunState(
            request_id=request_id,
            function_id=function_id,
            status=RunStatus.RUNNING,
            updated_at_ms=now_ms(),
            worker_id=worker_id,
        )
        try:
            reply = self._begin_run_script(
                keys=[keys.run_result_key(request_id), keys.run_lock_key(request_id), keys.run_state_key(request_id)],
                args=[token, lock_ttl_s * 1000, state.to_json(), self._ttl_s],
            )
        except redis.RedisError as exc:
            raise ResultStoreError(f"cannot begin the run of {request_id}: {exc}") from exc

        if reply[0] == BEGIN_STORED:
            return RunStart(stored=RunResult.model_validate_json(reply[1]), lock=None)
        if reply[0] == BEGIN_BUSY:
            return RunStart(stored=None, lock=None)
        lock = self._redis.lock(keys.run_lock_key(request_id), timeout=lock_ttl_s, blocking=False, thread_local=False)
        # The script took the lock with this token; redis-py's Lock renews and releases by it.
        lock.local.token = token.encode()
        return RunStart(stored=None, lock=lock)

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
