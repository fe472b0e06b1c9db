"""JSON log lines that carry the worker id and, inside a run, the request and function ids.

The controller logs the same ids under the same keys, so one search for a requestId finds
both sides of a run.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

_run_ids: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("run_ids", default={})
_worker_id = "unknown"

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "workerId": _worker_id,
            **_run_ids.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(worker_id: str, level: str = "INFO") -> None:
    global _worker_id
    _worker_id = worker_id
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def run_context(**ids: str) -> Iterator[None]:
    """Add ids (requestId, functionId, containerId, ...) to every line logged inside the block."""
    token = _run_ids.set({**_run_ids.get(), **{k: v for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _run_ids.reset(token)


def current_ids() -> dict[str, str]:
    """Return the ids of the enclosing run_context, to carry into another thread."""
    return dict(_run_ids.get())
