"""Turn a job into a finished RunResult: fetch the code, run it in a sandbox, classify the outcome."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from nanogrid_protocol import JobMessage, RunResult, RunStatus, limits, now_ms
from nanogrid_protocol.runtimes import PYTHON_3_11

from worker_agent.code_cache import CodeCache
from worker_agent.errors import CodeFetchError, InputFetchError, SandboxError
from worker_agent.inputs import InputLoader
from worker_agent.sandbox import (
    BOOTSTRAP_MOUNT,
    LABEL_FUNCTION_ID,
    LABEL_REQUEST_ID,
    LABEL_WORKER_ID,
    Sandbox,
    SandboxOutcome,
    SandboxSpec,
)
from worker_agent.settings import WorkerSettings
from worker_agent.warm import ContainerPool

logger = logging.getLogger(__name__)

BOOTSTRAP_DIR = Path(__file__).parent / "runtimes"


@dataclass(frozen=True)
class RuntimeCommand:
    """Commands that start a function in the image the settings name: ``command`` runs one
    call in a fresh container, ``resident_command`` serves many calls in a warm one."""

    command: list[str]
    resident_command: list[str]


# A new runtime is an entry here plus an image in NANOGRID_RUNTIME_IMAGES.
RUNTIME_COMMANDS = {
    PYTHON_3_11: RuntimeCommand(
        command=["python3", "-I", "-u", f"{BOOTSTRAP_MOUNT}/python_bootstrap.py"],
        resident_command=["python3", "-I", "-u", f"{BOOTSTRAP_MOUNT}/python_server.py"],
    ),
}

# Exit code 137 is 128 + SIGKILL: the kernel's OOM killer or our own kill at the timeout.
SIGKILL_EXIT_CODE = 137


class FunctionRunner:
    def __init__(
        self,
        settings: WorkerSettings,
        code_cache: CodeCache,
        inputs: InputLoader,
        sandbox: Sandbox,
        pool: ContainerPool | None = None,
    ):
        self._settings = settings
        self._code_cache = code_cache
        self._inputs = inputs
        self._sandbox = sandbox
        # With a pool, runs go to warm or prewarmed containers; without, each gets a fresh one.
        self._pool = pool

    def start(self) -> None:
        if self._pool is not None:
            self._pool.start()

    def close(self) -> None:
        """Remove every warm and prewarmed container."""
        if self._pool is not None:
            self._pool.close()

    def pool_metrics(self) -> dict[str, int]:
        return dict(self._pool.metrics) if self._pool is not None else {}

    def run(self, job: JobMessage) -> RunResult:
        """Run the job once. Raise only for retryable platform faults; every other failure
        becomes a final result."""
        started_at_ms = now_ms()
        function = job.function
        try:
            spec = self._build_spec(job)
            event_json = self._inputs.event_json(job)
            if self._pool is not None:
                outcome, start_mode = self._pool.run(spec, function.version_id, function.runtime, event_json)
            else:
                outcome, start_mode = self._sandbox.run(spec, event_json), "cold"
        except (CodeFetchError, InputFetchError, SandboxError) as exc:
            if exc.retryable:
                raise
            logger.error("run failed on the platform side", extra={"error": str(exc)})
            return self._error_result(job, str(exc), started_at_ms)

        result = classify(outcome, job).model_copy(
            update={
                "worker_id": self._settings.worker_id,
                "version_id": function.version_id,
                "start_mode": start_mode,
                "started_at_ms": started_at_ms,
                "finished_at_ms": now_ms(),
            }
        )
        # Fitted last, so the fields set above count against the size limit too.
        return fit_result_size(result, limits.MAX_RUN_RESULT_JSON_BYTES)

    def _build_spec(self, job: JobMessage) -> SandboxSpec:
        function = job.function
        runtime = RUNTIME_COMMANDS.get(function.runtime)
        image = self._settings.runtime_images.get(function.runtime)
        if runtime is None or image is None:
            raise SandboxError(image or "-", f"runtime {function.runtime!r} is not configured on this worker", retryable=False)
        code_dir = self._code_cache.code_dir(function.code_sha256)
        deadline_ms = now_ms() + function.timeout_ms
        return SandboxSpec(
            image=image,
            command=runtime.command,
            code_dir=code_dir,
            bootstrap_dir=BOOTSTRAP_DIR,
            memory_mb=function.memory_mb,
            timeout_ms=function.timeout_ms,
            pids_limit=self._settings.pids_limit,
            # tmpfs pages count against the memory limit, so /tmp gets at most half of it and a
            # full /tmp fails with ENOSPC before the run is OOM-killed.
            tmp_size_mb=max(1, min(self._settings.tmp_size_mb, function.memory_mb // 2)),
            cpus=self._settings.cpus,
            max_output_bytes=limits.MAX_OUTPUT_BYTES,
            max_report_bytes=limits.MAX_RESULT_BYTES,
            env={
                "NANOGRID_REQUEST_ID": job.request_id,
                "NANOGRID_FUNCTION_ID": function.function_id,
                "NANOGRID_VERSION_ID": function.version_id,
                "NANOGRID_MEMORY_MB": str(function.memory_mb),
                "NANOGRID_DEADLINE_MS": str(deadline_ms),
                "NANOGRID_MAX_RESULT_BYTES": str(limits.MAX_RESULT_BYTES),
                "HOME": "/tmp",
            },
            labels={
                LABEL_WORKER_ID: self._settings.worker_id,
                LABEL_REQUEST_ID: job.request_id,
                LABEL_FUNCTION_ID: function.function_id,
            },
        )

    def _error_result(self, job: JobMessage, message: str, started_at_ms: int) -> RunResult:
        return RunResult(
            request_id=job.request_id,
            function_id=job.function.function_id,
            status=RunStatus.ERROR,
            error_message=message,
            version_id=job.function.version_id,
            worker_id=self._settings.worker_id,
            started_at_ms=started_at_ms,
            finished_at_ms=now_ms(),
        )


def classify(outcome: SandboxOutcome, job: JobMessage) -> RunResult:
    """Map what the container did to a status, an error message and the handler's result."""
    function = job.function
    result_value = None
    error_message = None

    if outcome.timed_out:
        status = RunStatus.TIMEOUT
        error_message = f"the function ran longer than its timeout of {function.timeout_ms} ms and was stopped"
    elif outcome.oom_killed or outcome.oom_kill_count:
        status = RunStatus.OOM
        error_message = (
            f"the function used more than its memory limit of {function.memory_mb} MB and was killed; "
            f"raise memoryMB or use less memory"
        )
    elif outcome.exit_code == 0:
        status = RunStatus.SUCCESS
        if outcome.report is not None:
            # The runtime writes only valid JSON, but any process of the function can write to
            # the report FIFO or the value pipe. Raising here would leave the run RUNNING and
            # have SQS deliver it again.
            try:
                result_value = json.loads(outcome.report)
            except ValueError:
                status = RunStatus.FAILED
                error_message = (
                    "the function's return value is not valid JSON because code in the function wrote "
                    "to the runtime's report channel; return the value from handler instead"
                )
    else:
        status = RunStatus.FAILED
        if outcome.exit_code is None:
            error_message = (
                "the function's runtime stopped before the run finished, for example because the "
                "function killed it; see stderr"
            )
        else:
            error_message = f"the function exited with code {outcome.exit_code}; see stderr"

    return RunResult(
        request_id=job.request_id,
        function_id=function.function_id,
        status=status,
        exit_code=outcome.exit_code,
        stdout=outcome.stdout.decode("utf-8", errors="replace"),
        stderr=outcome.stderr.decode("utf-8", errors="replace"),
        stdout_truncated=outcome.stdout_truncated,
        stderr_truncated=outcome.stderr_truncated,
        result=result_value,
        error_message=error_message,
        duration_millis=outcome.duration_ms,
        peak_memory_mb=_bytes_to_mb(outcome.peak_memory_bytes),
    )


def fit_result_size(result: RunResult, max_bytes: int) -> RunResult:
    """Cut stdout and stderr until the result's JSON fits in max_bytes, sharing the room between
    them. Escaped control characters can make an output's JSON up to six times its own size."""
    total_bytes = len(result.to_json().encode("utf-8"))
    if total_bytes <= max_bytes:
        return result

    stdout_bytes, stderr_bytes = _json_size(result.stdout), _json_size(result.stderr)
    room = max_bytes - (total_bytes - stdout_bytes - stderr_bytes)
    half = room // 2
    # An output smaller than half the room leaves the rest to the other one.
    stdout_budget = max(half, room - stderr_bytes)
    stderr_budget = room - min(stdout_bytes, stdout_budget)

    updates = {}
    for field_name, flag, budget in (
        ("stdout", "stdout_truncated", stdout_budget),
        ("stderr", "stderr_truncated", stderr_budget),
    ):
        text: str = getattr(result, field_name)
        if _json_size(text) > budget:
            updates[field_name] = _longest_prefix(text, budget)
            updates[flag] = True
    return result.model_copy(update=updates)


def _longest_prefix(text: str, budget_bytes: int) -> str:
    """Longest prefix of text whose JSON encoding fits in budget_bytes, by binary search."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(text[:middle]) <= budget_bytes:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def _bytes_to_mb(size_bytes: int | None) -> float | None:
    if size_bytes is None:
        return None
    return round(size_bytes / (1024 * 1024), 1)
