"""RunService.wait_budget_ms: how long POST /run waits before it returns 202."""

import pytest
from nanogrid_controller.runs import RunService
from nanogrid_controller.settings import ControllerSettings
from nanogrid_protocol import RunRequest

SETTINGS = ControllerSettings(
    redis_url="redis://unused", queue_url="http://unused", code_bucket="unused", result_margin_ms=3000, lambda_safety_ms=1000
)


def budget_ms(timeout_ms, function_timeout_ms, remaining_ms) -> int:
    service = RunService(SETTINGS, redis_client=None, sqs_client=None, s3_client=None, registry=None)
    request = RunRequest(function_id="fn", timeout_ms=timeout_ms)
    return service.wait_budget_ms(request, function_timeout_ms, remaining_ms)


@pytest.mark.parametrize(
    ("timeout_ms", "function_timeout_ms", "remaining_ms", "expected_ms"),
    [
        # The function's timeout plus the result margin.
        (None, 5_000, 29_000, 8_000),
        # The Lambda's remaining time minus the safety margin.
        (None, 60_000, 29_000, 28_000),
        # The caller's timeoutMs, when it is the smallest.
        (300, 5_000, 29_000, 300),
        # A caller's timeoutMs above the others changes nothing.
        (20_000, 5_000, 29_000, 8_000),
        # Less Lambda time left than the safety margin: no wait at all.
        (None, 5_000, 500, 0),
        (1_000, 5_000, 1_000, 0),
    ],
)
def test_wait_budget_smallest_limit(timeout_ms, function_timeout_ms, remaining_ms, expected_ms):
    assert budget_ms(timeout_ms, function_timeout_ms, remaining_ms) == expected_ms
