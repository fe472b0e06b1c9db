"""Limits that the controller and the worker both enforce. docs/limits.md lists each one."""

MIN_MEMORY_MB = 32
DEFAULT_MEMORY_MB = 128
MAX_MEMORY_MB = 4096

MIN_FUNCTION_TIMEOUT_MS = 100
DEFAULT_FUNCTION_TIMEOUT_MS = 10_000
# A synchronous call cannot outlive API Gateway's 30 s cut-off, but a run may, so the caller
# then gets 202 and polls GET /runs/{requestId}.
MAX_FUNCTION_TIMEOUT_MS = 900_000

# Zip archive as uploaded, and the sum of its files' sizes once unpacked.
MAX_CODE_ZIP_BYTES = 5 * 1024 * 1024
MAX_CODE_UNPACKED_BYTES = 50 * 1024 * 1024

# stdout and stderr are each cut at this size; the result says so in stdoutTruncated/stderrTruncated.
MAX_OUTPUT_BYTES = 1024 * 1024
# JSON-encoded return value of a handler.
MAX_RESULT_BYTES = 1024 * 1024

# How long Redis keeps a run's state and result, so GET /runs/{requestId} works after the wait.
RESULT_TTL_S = 24 * 60 * 60
