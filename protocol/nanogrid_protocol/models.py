"""Messages that cross a process boundary: HTTP bodies, SQS job messages, Redis records.

Every model serialises with camelCase field names (``model_dump(by_alias=True)``), the
names callers see in the HTTP API. Python code uses the snake_case attribute names.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from nanogrid_protocol import limits

JOB_SCHEMA_VERSION = 1
FUNCTION_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


def now_ms() -> int:
    """Return wall-clock time in epoch milliseconds, the one timestamp form of the protocol."""
    return time.time_ns() // 1_000_000


class RunStatus(str, Enum):
    """Lifecycle of one run. QUEUED and RUNNING are transient, the rest are final."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    OOM = "OOM"
    ERROR = "ERROR"

    @property
    def is_final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)


class WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class RunRequest(WireModel):
    """Body of ``POST /run``."""

    function_id: str = Field(pattern=FUNCTION_ID_PATTERN)
    input_data: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int | None = Field(default=None, ge=1, le=limits.MAX_FUNCTION_TIMEOUT_MS)


class CodeSource(WireModel):
    """Code of a function upload: a base64 zip archive, or the source of a single ``main.py``."""

    zip_base64: str | None = None
    source: str | None = None


class FunctionUpload(WireModel):
    """Body of ``PUT /functions/{functionId}``."""

    runtime: str = "python3.11"
    memory_mb: int = Field(
        default=limits.DEFAULT_MEMORY_MB,
        ge=limits.MIN_MEMORY_MB,
        le=limits.MAX_MEMORY_MB,
        alias="memoryMB",
    )
    timeout_ms: int = Field(
        default=limits.DEFAULT_FUNCTION_TIMEOUT_MS,
        ge=limits.MIN_FUNCTION_TIMEOUT_MS,
        le=limits.MAX_FUNCTION_TIMEOUT_MS,
    )
    code: CodeSource


class FunctionVersion(WireModel):
    """One immutable version of a function: its settings and the sha256 of its code archive.

    The job message carries a copy, so a worker needs S3 only for code it has not cached.
    """

    function_id: str = Field(pattern=FUNCTION_ID_PATTERN)
    version_id: str = Field(pattern=SHA256_PATTERN)
    runtime: str
    memory_mb: int = Field(alias="memoryMB")
    timeout_ms: int
    code_sha256: str = Field(pattern=SHA256_PATTERN)
    code_size_bytes: int
    created_at_ms: int


class InputRef(WireModel):
    """Pointer to an inputData too large for an SQS message, stored as JSON in the code bucket."""

    key: str
    sha256: str = Field(pattern=SHA256_PATTERN)
    size_bytes: int


class JobMessage(WireModel):
    """Body of one SQS message: a request to run a function version once.

    The input travels in the message (``inputData``) or, when too large, in S3 (``inputRef``).
    """

    schema_version: Literal[1] = JOB_SCHEMA_VERSION
    request_id: str
    function: FunctionVersion
    input_data: dict[str, Any] | None = None
    input_ref: InputRef | None = None
    enqueued_at_ms: int

    @model_validator(mode="after")
    def _one_input(self) -> JobMessage:
        if (self.input_data is None) == (self.input_ref is None):
            raise ValueError("a job message needs exactly one of inputData and inputRef")
        return self


class RunState(WireModel):
    """Progress record of a run that has no result yet, kept in Redis."""

    request_id: str
    function_id: str
    status: RunStatus
    updated_at_ms: int
    worker_id: str | None = None


class RunResult(WireModel):
    """Final outcome of one run: stored in Redis by the worker and returned to the caller."""

    request_id: str
    function_id: str
    status: RunStatus
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    result: Any = None
    error_message: str | None = None
    duration_millis: int = 0
    peak_memory_mb: float | None = Field(default=None, alias="peakMemoryMB")
    version_id: str | None = None
    worker_id: str | None = None
    # How the container was had: "cold" (started for this run), "prewarmed" (started ahead of
    # time, function loaded for this run) or "warm" (function already loaded by an earlier run).
    start_mode: str | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None


class ResultNotice(WireModel):
    """Pub/sub message that announces a stored result. The result itself stays in its key,
    so a notice is small whatever the function printed."""

    request_id: str
    status: RunStatus
