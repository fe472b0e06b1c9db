"""Calls that the attack tests share: run a deployed function and wait for its result."""

from __future__ import annotations

import json
import time

from nanogrid_protocol import RunResult, RunState

from tests.integration.test_hostile_functions import Caller

# Seconds to wait for an async run to reach a final status. A run that a worker finishes takes
# about a second; one that the worker drops stays RUNNING.
FINAL_STATUS_WAIT_S = 20


def run_sync(caller: Caller, function_id: str, input_data: dict) -> RunResult:
    status, body = caller.call("POST", "/run", {"functionId": function_id, "inputData": input_data})
    assert status == 200, body[:2000]
    return RunResult.model_validate_json(body)


def run_until_final(caller: Caller, function_id: str, input_data: dict) -> RunResult | RunState:
    """Queue a run without waiting and poll it; return the result, or the last state when the
    run is not final within FINAL_STATUS_WAIT_S."""
    status, body = caller.call("POST", "/run?async=true", {"functionId": function_id, "inputData": input_data})
    assert status == 202, body
    request_id = json.loads(body)["requestId"]
    deadline = time.monotonic() + FINAL_STATUS_WAIT_S
    while True:
        status, body = caller.call("GET", f"/runs/{request_id}")
        if status == 200:
            return RunResult.model_validate_json(body)
        if time.monotonic() > deadline:
            return RunState.model_validate_json(body)
        time.sleep(0.2)
