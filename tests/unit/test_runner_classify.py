"""runner.classify: how a container's exit becomes a run status."""

import json

import pytest
from nanogrid_protocol import FunctionVersion, JobMessage, RunStatus
from worker_agent.runner import classify
from worker_agent.sandbox import SandboxOutcome

SHA = "b" * 64


def make_job() -> JobMessage:
    function = FunctionVersion(
        function_id="fn",
        version_id=SHA,
        runtime="python3.11",
        memory_mb=128,
        timeout_ms=1500,
        code_sha256=SHA,
        code_size_bytes=100,
        created_at_ms=1,
    )
    return JobMessage(request_id="req-1", function=function, input_data={}, enqueued_at_ms=1)


def make_outcome(**changes) -> SandboxOutcome:
    values = dict(
        exit_code=0,
        timed_out=False,
        oom_killed=False,
        stdout=b"out\n",
        stderr=b"",
        stdout_truncated=False,
        stderr_truncated=False,
        report=None,
        duration_ms=42,
        peak_memory_bytes=3 * 1024 * 1024,
        container_id="c" * 64,
    )
    values.update(changes)
    return SandboxOutcome(**values)


def test_classify_success_without_report():
    result = classify(make_outcome(), make_job())

    assert result.status is RunStatus.SUCCESS
    assert result.result is None
    assert result.error_message is None
    assert result.exit_code == 0
    assert result.stdout == "out\n"
    assert result.duration_millis == 42
    assert result.peak_memory_mb == 3.0
    assert result.request_id == "req-1"
    assert result.function_id == "fn"


def test_classify_success_with_report():
    report = json.dumps({"count": 25, "largest": 97}).encode()

    result = classify(make_outcome(report=report), make_job())

    assert result.status is RunStatus.SUCCESS
    assert result.result == {"count": 25, "largest": 97}


def test_classify_timeout():
    result = classify(make_outcome(exit_code=137, timed_out=True), make_job())

    assert result.status is RunStatus.TIMEOUT
    assert "1500 ms" in result.error_message
    assert result.result is None


def test_classify_timeout_wins_over_oom():
    result = classify(make_outcome(exit_code=137, timed_out=True, oom_killed=True), make_job())

    assert result.status is RunStatus.TIMEOUT


def test_classify_oom():
    result = classify(make_outcome(exit_code=137, oom_killed=True), make_job())

    assert result.status is RunStatus.OOM
    assert "128 MB" in result.error_message


@pytest.mark.parametrize("exit_code", [1, 2, 70, 137])
def test_classify_nonzero_exit(exit_code):
    result = classify(make_outcome(exit_code=exit_code, report=b'{"ignored": true}'), make_job())

    assert result.status is RunStatus.FAILED
    assert f"code {exit_code}" in result.error_message
    assert result.result is None
    assert result.exit_code == exit_code


def test_classify_keeps_truncation_flags():
    result = classify(make_outcome(stdout_truncated=True, stderr=b"\xff", stderr_truncated=True), make_job())

    assert result.stdout_truncated is True
    assert result.stderr_truncated is True
    assert result.stderr == "\ufffd"


def test_classify_unknown_peak_memory():
    result = classify(make_outcome(peak_memory_bytes=None), make_job())

    assert result.peak_memory_mb is None
