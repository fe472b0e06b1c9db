"""Wait for one run's result without a window in which it can be missed.

Order of the hand-off: the waiter subscribes to the run's channel and has Redis confirm it
before the job is sent, so a notice published at any later moment reaches it. The worker
stores the result under a key before publishing, so the key is read once right after the
job is sent and once more at the deadline. A result that lands while the connection is
broken is still found in the key.
"""

from __future__ import annotations

import time

import redis
from aws_lambda_powertools import Logger
from nanogrid_protocol import RunResult, keys

from nanogrid_controller.errors import DependencyUnavailable

# The same service as the parent Logger in app.py: without it, a child takes its name from
# POWERTOOLS_SERVICE_NAME and, where that is unset, raises OrphanedChildLoggerError.
logger = Logger(service="nanogrid-controller", child=True)

SUBSCRIBE_CONFIRM_TIMEOUT_S = 2.0
# After a Redis error, pause this long before subscribing again, so an outage is not a busy loop.
RECONNECT_PAUSE_S = 0.2
# The key is also read this often while waiting. A subscription whose connection died without
# an error (a half-open TCP connection) then costs at most this long, not the whole wait.
KEY_POLL_INTERVAL_S = 2.0


class ResultWaiter:
    def __init__(self, redis_client: redis.Redis, request_id: str):
        self._redis = redis_client
        self._request_id = request_id
        self._channel = keys.run_channel(request_id)
        self._pubsub: redis.client.PubSub | None = None

    def __enter__(self) -> ResultWaiter:
        try:
            self._subscribe()
        except redis.RedisError as exc:
            self._close()
            raise DependencyUnavailable("Redis", f"cannot subscribe to {self._channel}: {exc}") from exc
        return self

    def __exit__(self, *exc_info) -> None:
        self._close()

    def wait(self, timeout_ms: int) -> RunResult | None:
        """Return the result once it is stored, or None when ``timeout_ms`` runs out first."""
        deadline = time.monotonic() + timeout_ms / 1000

        result = self._read_stored()
        next_poll = time.monotonic() + KEY_POLL_INTERVAL_S
        while result is None and (remaining_s := deadline - time.monotonic()) > 0:
            try:
                message = self._next_message(min(remaining_s, max(0.0, next_poll - time.monotonic())))
            except redis.RedisError as exc:
                logger.warning("lost the result subscription; subscribing again", extra={"error": str(exc)})
                self._resubscribe(deadline)
                result = self._read_stored()
                continue
            # get_message may return None before the timeout, or a non-data message: only a
            # published notice or the poll interval is a reason to read the key, and only the
            # deadline ends the wait.
            if message is not None and message.get("type") == "message":
                result = self._read_stored()
            elif time.monotonic() >= next_poll:
                result = self._read_stored()
                next_poll = time.monotonic() + KEY_POLL_INTERVAL_S

        if result is None:
            result = self._read_stored()
        return result

    def _next_message(self, timeout_s: float) -> dict | None:
        if self._pubsub is None:
            # No subscription after a failed resubscribe: wait by the key poll alone.
            time.sleep(timeout_s)
            return None
        return self._pubsub.get_message(timeout=timeout_s)

    def _subscribe(self) -> None:
        self._pubsub = self._redis.pubsub()
        self._pubsub.subscribe(self._channel)
        confirm_deadline = time.monotonic() + SUBSCRIBE_CONFIRM_TIMEOUT_S
        while (remaining_s := confirm_deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=remaining_s)
            if message is not None and message.get("type") == "subscribe":
                return
        raise redis.TimeoutError(f"no confirmation of SUBSCRIBE {self._channel} within {SUBSCRIBE_CONFIRM_TIMEOUT_S} s")

    def _resubscribe(self, deadline: float) -> None:
        self._close()
        time.sleep(max(0.0, min(RECONNECT_PAUSE_S, deadline - time.monotonic())))
        try:
            self._subscribe()
        except redis.RedisError as exc:
            logger.warning("cannot subscribe again; reading the stored result instead", extra={"error": str(exc)})
            self._close()

    def _read_stored(self) -> RunResult | None:
        try:
            raw = self._redis.get(keys.run_result_key(self._request_id))
        except redis.RedisError as exc:
            logger.warning("cannot read the stored result", extra={"error": str(exc)})
            return None
        return RunResult.model_validate_json(raw) if raw else None

    def _close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None
