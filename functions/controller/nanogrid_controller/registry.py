"""Function registry in S3: code archives stored once per sha256, and immutable versions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from botocore.exceptions import BotoCoreError, ClientError
from nanogrid_protocol import RUNTIME_NAMES, FunctionUpload, FunctionVersion, keys, now_ms
from nanogrid_protocol.archive import ArchiveError, build_single_file_archive, check_archive

from nanogrid_controller.errors import DependencyUnavailable, FunctionNotFound, InvalidRequest


class FunctionRegistry:
    def __init__(self, s3_client, bucket: str):
        self._s3 = s3_client
        self._bucket = bucket

    def register(self, function_id: str, upload: FunctionUpload) -> tuple[FunctionVersion, bool]:
        """Check and store an upload. Return its version and whether that version is new.

        Nothing is written until every check has passed.
        """
        if upload.runtime not in RUNTIME_NAMES:
            raise InvalidRequest(
                f"unknown runtime {upload.runtime!r}; supported runtimes: {', '.join(RUNTIME_NAMES)}",
                field="runtime",
            )
        archive = _archive_bytes(upload)
        try:
            check_archive(archive)
        except ArchiveError as exc:
            raise InvalidRequest(str(exc), field="code") from exc

        code_sha256 = hashlib.sha256(archive).hexdigest()
        settings = {
            "functionId": function_id,
            "runtime": upload.runtime,
            "memoryMB": upload.memory_mb,
            "timeoutMs": upload.timeout_ms,
            "codeSha256": code_sha256,
        }
        version_id = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        version = FunctionVersion(
            function_id=function_id,
            version_id=version_id,
            runtime=upload.runtime,
            memory_mb=upload.memory_mb,
            timeout_ms=upload.timeout_ms,
            code_sha256=code_sha256,
            code_size_bytes=len(archive),
            created_at_ms=now_ms(),
        )

        current = self._find(function_id)
        if current is not None and current.version_id == version_id:
            return current, False

        with _s3_errors():
            if not self._exists(keys.code_object_key(code_sha256)):
                self._s3.put_object(Bucket=self._bucket, Key=keys.code_object_key(code_sha256), Body=archive)
            body = version.to_json().encode()
            self._s3.put_object(Bucket=self._bucket, Key=keys.function_version_key(function_id, version_id), Body=body)
            self._s3.put_object(Bucket=self._bucket, Key=keys.function_latest_key(function_id), Body=body)
        return version, True

    def get(self, function_id: str) -> FunctionVersion:
        version = self._find(function_id)
        if version is None:
            raise FunctionNotFound(function_id)
        return version

    def list(self) -> list[FunctionVersion]:
        versions = []
        with _s3_errors():
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self._bucket, Prefix=keys.FUNCTIONS_PREFIX, Delimiter="/"):
                for prefix in page.get("CommonPrefixes", []):
                    function_id = prefix["Prefix"][len(keys.FUNCTIONS_PREFIX):].rstrip("/")
                    version = self._find(function_id)
                    if version is not None:
                        versions.append(version)
        return sorted(versions, key=lambda v: v.function_id)

    def _find(self, function_id: str) -> FunctionVersion | None:
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=keys.function_latest_key(function_id))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise DependencyUnavailable("S3", str(exc)) from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("S3", str(exc)) from exc
        return FunctionVersion.model_validate_json(response["Body"].read())

    def _exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise


class _s3_errors:
    """Wrap botocore failures as DependencyUnavailable naming S3."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and isinstance(exc, (BotoCoreError, ClientError)):
            raise DependencyUnavailable("S3", str(exc)) from exc
        return False


def _archive_bytes(upload: FunctionUpload) -> bytes:
    code = upload.code
    if (code.zip_base64 is None) == (code.source is None):
        raise InvalidRequest("set exactly one of code.zipBase64 and code.source", field="code")
    if code.source is not None:
        return build_single_file_archive(code.source)
    try:
        return base64.b64decode(code.zip_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"code.zipBase64 is not valid base64: {exc}", field="code.zipBase64") from exc
