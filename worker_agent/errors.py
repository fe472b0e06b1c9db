"""Exceptions of the worker agent. Retryable faults leave the SQS message for another try;
permanent ones end the run with an ERROR result."""


class WorkerError(Exception):
    """Root of the worker's exceptions."""

    retryable = False


class SettingsError(WorkerError):
    """A setting is missing or invalid."""

    def __init__(self, key: str, value: str, reason: str):
        self.key = key
        self.value = value
        super().__init__(f"invalid setting {key}={value!r}: {reason}")


class CodeFetchError(WorkerError):
    """The function's code could not be fetched from S3 or failed its checks."""

    def __init__(self, code_sha256: str, reason: str, retryable: bool):
        self.code_sha256 = code_sha256
        self.retryable = retryable
        super().__init__(f"cannot fetch code {code_sha256}: {reason}")


class SandboxError(WorkerError):
    """Docker failed to create, start or inspect a run's container."""

    def __init__(self, image: str, reason: str, retryable: bool = True):
        self.image = image
        self.retryable = retryable
        super().__init__(f"container for image {image} failed: {reason}")


class ResultStoreError(WorkerError):
    """Redis did not take the result; the message stays in SQS so the run is not lost."""

    retryable = True


class InputFetchError(WorkerError):
    """A job's inputData, stored in S3 because it was large, could not be fetched."""

    def __init__(self, key: str, reason: str, retryable: bool):
        self.key = key
        self.retryable = retryable
        super().__init__(f"cannot fetch inputData from {key}: {reason}")
