"""Wire protocol shared by the controller Lambda and the worker agent."""

from nanogrid_protocol import keys, limits
from nanogrid_protocol.models import (
    FUNCTION_ID_PATTERN,
    JOB_SCHEMA_VERSION,
    CodeSource,
    FunctionUpload,
    FunctionVersion,
    InputRef,
    JobMessage,
    ResultNotice,
    RunRequest,
    RunResult,
    RunState,
    RunStatus,
    now_ms,
)
from nanogrid_protocol.runtimes import RUNTIME_NAMES

__all__ = [
    "FUNCTION_ID_PATTERN",
    "JOB_SCHEMA_VERSION",
    "RUNTIME_NAMES",
    "CodeSource",
    "FunctionUpload",
    "FunctionVersion",
    "InputRef",
    "JobMessage",
    "ResultNotice",
    "RunRequest",
    "RunResult",
    "RunState",
    "RunStatus",
    "keys",
    "limits",
    "now_ms",
]
