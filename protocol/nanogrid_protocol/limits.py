"""Limits that the controller and the worker both enforce. docs/limits.md lists each one."""

MIN_MEMORY_MB = 32
DEFAULT_MEMORY_MB = 128
MAX_MEMORY_MB = 4096

MIN_FUNCTION_TIMEOUT_MS = 100
DEFAULT_FUNCTION_TIMEOUT_MS = 10_000
# A synchronous call cannot outlive API Gateway's 30 s cut-off, but a run may, so the caller
# then gets 202 and polls GET /runs/{requestId}.
MAX_FUNCTION_TIMEOUT_MS = 900_000

# Zip archive as uploaded, and the sum of its files' sizes once unpacked. 4 MiB of zip is
# about 5.6 MB as base64, which keeps a PUT /functions body under Lambda's 6 MB request limit.
MAX_CODE_ZIP_BYTES = 4 * 1024 * 1024
MAX_CODE_UNPACKED_BYTES = 50 * 1024 * 1024

# Lambda rejects a synchronous request or response payload above 6 MB (6,291,456 bytes);
# the local front applies the same limit to request bodies.
MAX_REQUEST_BODY_BYTES = 6_291_456
# inputData, measured as UTF-8 JSON. Leaves room for the rest of the request body.
MAX_INPUT_BYTES = 5 * 1024 * 1024
# The classic SQS message size limit. A job message larger than this carries its inputData in S3
# and only a pointer in the message (claim check).
MAX_SQS_MESSAGE_BYTES = 256 * 1024

# stdout and stderr are each cut at this size; the result marks that in stdoutTruncated/stderrTruncated.
MAX_OUTPUT_BYTES = 1024 * 1024
# JSON-encoded return value of a handler.
MAX_RESULT_BYTES = 1024 * 1024
# A whole RunResult as JSON. Escaped control characters can make output grow up to six times when
# encoded, so the worker cuts stdout and stderr further until the result fits, keeping every
# response well under Lambda's 6 MB limit.
MAX_RUN_RESULT_JSON_BYTES = 4 * 1024 * 1024

# How long Redis keeps a run's state and result, so GET /runs/{requestId} works after the wait.
RESULT_TTL_S = 24 * 60 * 60
