"""Controller exceptions. Each carries a stable ``code``; app.py alone maps them to HTTP statuses."""

from __future__ import annotations


class ControllerError(Exception):
    """Root of the controller's exceptions."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ControllerError):
    """The request is malformed; ``field`` names the part to fix."""

    code = "INVALID_REQUEST"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field=field)
        self.field = field


class Unauthorized(ControllerError):
    code = "UNAUTHORIZED"


class FunctionNotFound(ControllerError):
    code = "FUNCTION_NOT_FOUND"

    def __init__(self, function_id: str):
        super().__init__(
            f"function {function_id!r} is not registered; register it with PUT /functions/{function_id}",
            functionId=function_id,
        )


class RunNotFound(ControllerError):
    code = "RUN_NOT_FOUND"

    def __init__(self, request_id: str):
        super().__init__(
            f"no run with requestId {request_id!r}; it never existed or its result expired",
            requestId=request_id,
        )


class IdempotencyKeyReused(ControllerError):
    """An Idempotency-Key was sent again with a different request body."""

    code = "IDEMPOTENCY_KEY_REUSED"


class PayloadTooLarge(ControllerError):
    code = "PAYLOAD_TOO_LARGE"


class DependencyUnavailable(ControllerError):
    """Redis, SQS or S3 did not respond. ``dependency`` names which one."""

    code = "DEPENDENCY_UNAVAILABLE"

    def __init__(self, dependency: str, reason: str):
        super().__init__(f"{dependency} is unavailable: {reason}", dependency=dependency)
        self.dependency = dependency
