"""Helpers the integration tests share: register code in moto S3, build jobs, poll for results."""

from __future__ import annotations

import time
import uuid

from nanogrid_controller.registry import FunctionRegistry
from nanogrid_protocol import CodeSource, FunctionUpload, FunctionVersion, JobMessage, RunResult, keys, now_ms


def register_function(s3_client, bucket: str, function_id: str, source: str, timeout_ms: int = 10_000) -> FunctionVersion:
    registry = FunctionRegistry(s3_client, bucket)
    upload = FunctionUpload(timeout_ms=timeout_ms, code=CodeSource(source=source))
    version, _created = registry.register(function_id, upload)
    return version


def make_job(function: FunctionVersion, input_data: dict | None = None) -> JobMessage:
    return JobMessage(
        request_id=str(uuid.uuid4()),
        function=function,
        input_data=input_data or {},
        enqueued_at_ms=now_ms(),
    )


def wait_for_stored_result(redis_client, request_id: str, timeout_s: float = 60) -> RunResult:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = redis_client.get(keys.run_result_key(request_id))
        if raw:
            return RunResult.model_validate_json(raw)
        time.sleep(0.05)
    raise AssertionError(f"no result stored for {request_id} within {timeout_s} s")


def queue_message_count(sqs_client, queue_url: str) -> int:
    """Visible plus in-flight messages of the queue."""
    attributes = sqs_client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_for_empty_queue(sqs_client, queue_url: str, timeout_s: float = 30) -> int:
    """Poll until the queue contains no message; return the last count seen."""
    deadline = time.monotonic() + timeout_s
    count = queue_message_count(sqs_client, queue_url)
    while count and time.monotonic() < deadline:
        time.sleep(0.1)
        count = queue_message_count(sqs_client, queue_url)
    return count
