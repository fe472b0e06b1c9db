"""Local cache of function code, one folder per code sha256, filled from S3 on a miss."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from nanogrid_protocol import keys
from nanogrid_protocol.archive import ArchiveError, extract_archive

from worker_agent.errors import CodeFetchError

logger = logging.getLogger(__name__)


class CodeCache:
    def __init__(self, s3_client, bucket: str, cache_dir: Path):
        self._s3 = s3_client
        self._bucket = bucket
        self._root = cache_dir / "code"
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def code_dir(self, code_sha256: str) -> Path:
        """Return the folder holding the unpacked code, downloading it first on a miss."""
        target = self._root / code_sha256
        if target.is_dir():
            return target

        data = self._download(code_sha256)
        actual = hashlib.sha256(data).hexdigest()
        if actual != code_sha256:
            raise CodeFetchError(code_sha256, f"downloaded archive has sha256 {actual}", retryable=False)

        staging = Path(tempfile.mkdtemp(prefix=f".{code_sha256[:12]}-", dir=self._root))
        try:
            extract_archive(data, staging)
            staging.chmod(0o755)
            for folder, dirs, _ in os.walk(staging):
                for name in dirs:
                    os.chmod(os.path.join(folder, name), 0o755)
            # Two runs of the same new code may download it at once; the first rename wins.
            with self._lock:
                if not target.exists():
                    staging.rename(target)
                    logger.info("cached code", extra={"codeSha256": code_sha256, "sizeBytes": len(data)})
        except ArchiveError as exc:
            raise CodeFetchError(code_sha256, str(exc), retryable=False) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _download(self, code_sha256: str) -> bytes:
        key = keys.code_object_key(code_sha256)
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            missing = code in ("NoSuchKey", "404", "NoSuchBucket")
            raise CodeFetchError(
                code_sha256, f"s3://{self._bucket}/{key}: {code or exc}", retryable=not missing
            ) from exc
        except BotoCoreError as exc:
            raise CodeFetchError(code_sha256, f"s3://{self._bucket}/{key}: {exc}", retryable=True) from exc
