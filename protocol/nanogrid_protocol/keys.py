"""Redis key and pub/sub channel names. Both sides build every name here, so they cannot drift."""

PREFIX = "nanogrid"


def run_state_key(request_id: str) -> str:
    """Key of a run's RunState JSON, written when it is queued and when a worker starts it."""
    return f"{PREFIX}:run:{request_id}:state"


def run_result_key(request_id: str) -> str:
    """Key of a run's RunResult JSON, written once, before the notice is published."""
    return f"{PREFIX}:run:{request_id}:result"


def idempotency_key(function_id: str, key_sha256: str) -> str:
    """Key that maps a client's Idempotency-Key (as sha256) to the requestId of its first run."""
    return f"{PREFIX}:idempotency:{function_id}:{key_sha256}"


def run_lock_key(request_id: str) -> str:
    """Key of the lock a worker keeps while it runs a request, so a redelivered copy waits."""
    return f"{PREFIX}:run:{request_id}:lock"


def run_channel(request_id: str) -> str:
    """Channel on which the worker publishes a ResultNotice after storing the result."""
    return f"{PREFIX}:run:{request_id}:done"


# S3 object keys in the code bucket. A code archive is stored once per sha256 and never
# overwritten, so a worker may cache it by that hash forever.


def code_object_key(code_sha256: str) -> str:
    return f"code/sha256/{code_sha256}.zip"


def function_version_key(function_id: str, version_id: str) -> str:
    return f"functions/{function_id}/versions/{version_id}.json"


def function_latest_key(function_id: str) -> str:
    """Key of the FunctionVersion that POST /run uses, replaced by every upload."""
    return f"functions/{function_id}/latest.json"


def input_object_key(request_id: str) -> str:
    """Key of an inputData stored in S3 because it did not fit in the SQS message."""
    return f"inputs/{request_id}.json"


FUNCTIONS_PREFIX = "functions/"
INPUTS_PREFIX = "inputs/"
