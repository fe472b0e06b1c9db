"""Fetch a job's input: inline in the message, or from S3 when the controller moved it there."""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import BotoCoreError, ClientError
from nanogrid_protocol import JobMessage

from worker_agent.errors import InputFetchError


class InputLoader:
    def __init__(self, s3_client, bucket: str):
        self._s3 = s3_client
        self._bucket = bucket

    def event_json(self, job: JobMessage) -> bytes:
        """Return the function's event as UTF-8 JSON bytes."""
        if job.input_ref is None:
            return json.dumps(job.input_data, ensure_ascii=False).encode("utf-8")

        ref = job.input_ref
        try:
            data = self._s3.get_object(Bucket=self._bucket, Key=ref.key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise InputFetchError(ref.key, f"{code or exc}", retryable=code not in ("NoSuchKey", "404")) from exc
        except BotoCoreError as exc:
            raise InputFetchError(ref.key, str(exc), retryable=True) from exc
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise InputFetchError(ref.key, "content does not match the sha256 in the job message", retryable=False)
        return data
