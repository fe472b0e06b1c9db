"""Small HTTP client for the NanoGrid Plus API, used by the command line, the local stack and tests."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

FUNCTION_SETTINGS_FILE = "function.json"
SKIPPED_NAMES = {"__pycache__", ".git", FUNCTION_SETTINGS_FILE}


@dataclass
class ApiResponse:
    status: int
    body: dict
    headers: dict[str, str]


class ApiError(Exception):
    """The API could not be reached."""


def http_json(method: str, url: str, body: dict | None = None, headers: dict | None = None,
              timeout_s: float = 35) -> tuple[int, dict]:
    """Send a JSON request and return the status and the JSON body, for error statuses too.

    A body that is not JSON comes back as {}. Connection errors (urllib.error.URLError, OSError)
    are raised, so a caller can retry them.
    """
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


class Client:
    def __init__(self, base_url: str, api_key: str = "", timeout_s: float = 35):
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s

    def request(self, method: str, path: str, body: dict | None = None) -> ApiResponse:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self._base_url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self._api_key:
            request.add_header("Authorization", f"Bearer {self._api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return ApiResponse(response.status, json.loads(response.read() or b"{}"), dict(response.headers))
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                parsed = json.loads(payload or b"{}")
            except ValueError:
                parsed = {"message": payload.decode("utf-8", errors="replace")}
            return ApiResponse(exc.code, parsed, dict(exc.headers))
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(f"{self._base_url}: {getattr(exc, 'reason', exc)}") from exc

    def run(self, function_id: str, input_data: dict | None = None, timeout_ms: int | None = None, wait: bool = True) -> ApiResponse:
        body: dict = {"functionId": function_id, "inputData": input_data or {}}
        if timeout_ms is not None:
            body["timeoutMs"] = timeout_ms
        return self.request("POST", "/run" if wait else "/run?async=true", body)

    def get_run(self, request_id: str) -> ApiResponse:
        return self.request("GET", f"/runs/{request_id}")

    def put_function(self, function_id: str, upload: dict) -> ApiResponse:
        response = self.request("PUT", f"/functions/{function_id}", upload)
        if response.status not in (200, 201):
            raise ApiError(f"PUT /functions/{function_id} returned {response.status}: {response.body}")
        return response

    def get_function(self, function_id: str) -> ApiResponse:
        return self.request("GET", f"/functions/{function_id}")

    def list_functions(self) -> ApiResponse:
        return self.request("GET", "/functions")


def zip_folder(folder: Path) -> bytes:
    """Zip a function folder with paths relative to it, skipping caches and function.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and not (set(relative.parts) & SKIPPED_NAMES) and not path.is_symlink():
                archive.write(path, relative.as_posix())
    return buffer.getvalue()


def read_function_folder(folder: Path, function_id: str | None = None) -> tuple[str, dict]:
    """Build a PUT /functions body from a folder: main.py and more files, plus optional
    function.json with runtime, memoryMB and timeoutMs."""
    settings_path = folder / FUNCTION_SETTINGS_FILE
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    function_id = function_id or settings.pop("functionId", None) or folder.resolve().name
    settings.pop("functionId", None)
    upload = {**settings, "code": {"zipBase64": base64.b64encode(zip_folder(folder)).decode()}}
    return function_id, upload
