"""Bad and oversized requests against the controller's Lambda handler, called with API Gateway v2
events from nanogrid.local_front.build_event, against a real redis-server and moto (SQS and S3).

Every response is JSON with a stable ``code``. A rejected upload stores nothing in the bucket.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import stat
import struct
import threading
import zipfile

import pytest
from nanogrid.local_front import LambdaContext, build_event, serve
from nanogrid.stack import free_port
from nanogrid_controller import app as controller_app
from nanogrid_protocol import keys, limits

API_KEY = "bad-requests-test-key"
ECHO_SIZE_SOURCE = """
import hashlib, json
def handler(event, context):
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return {"sizeBytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
"""


class Controller:
    """Calls the Lambda handler the way the local front does, one event per request."""

    def __init__(self, api_key: str = API_KEY):
        self.api_key = api_key

    def call(self, method: str, path: str, body=None, raw_body: bytes | None = None, headers: dict | None = None,
             content_type: str = "application/json", event: dict | None = None):
        if event is None:
            all_headers = {"content-type": content_type, "host": "127.0.0.1"}
            if self.api_key:
                all_headers["authorization"] = f"Bearer {self.api_key}"
            all_headers.update(headers or {})
            if raw_body is not None:
                data = raw_body
            elif body is not None:
                # ensure_ascii=False: a multi-byte character travels as its UTF-8 bytes, as from curl.
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            else:
                data = b""
            event = build_event(method, path, all_headers, data, "127.0.0.1")
        response = controller_app.lambda_handler(event, LambdaContext(29_000))
        return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


@pytest.fixture
def controller_env(monkeypatch, redis_url, moto_url, queue_url, code_bucket):
    monkeypatch.setenv("NANOGRID_REDIS_URL", redis_url)
    monkeypatch.setenv("NANOGRID_QUEUE_URL", queue_url)
    monkeypatch.setenv("NANOGRID_CODE_BUCKET", code_bucket)
    monkeypatch.delenv("NANOGRID_ALLOW_ANONYMOUS", raising=False)
    monkeypatch.setenv("NANOGRID_API_KEY", API_KEY)
    # Services are cached per Lambda environment; each test builds its own from the settings above.
    monkeypatch.setattr(controller_app, "_services", None)
    return monkeypatch


@pytest.fixture
def controller(controller_env) -> Controller:
    return Controller()


@pytest.fixture
def echo_function(controller) -> str:
    status, body, _ = controller.call("PUT", "/functions/bad-req-echo", {"code": {"source": ECHO_SIZE_SOURCE}})
    assert status in (200, 201), body
    return "bad-req-echo"


def bucket_keys(s3_client, bucket: str) -> set[str]:
    found = set()
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update(item["Key"] for item in page.get("Contents", []))
    return found


def input_of_size(size_bytes: int) -> dict:
    """inputData whose compact UTF-8 JSON is exactly size_bytes long, mostly 3-byte characters."""
    overhead = len('{"s":""}')
    room = size_bytes - overhead
    text = "가" * (room // 3) + "a" * (room % 3)
    data = {"s": text}
    assert len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")) == size_bytes
    return data


def compact_sha256(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()


# -- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_body", "field", "message"),
    [
        (b'{"functionId": ', "body", "not valid JSON"),
        (b'["bad-req-echo"]', "body", "must be a JSON object"),
        (b"{}", "functionId", "Field required"),
        (b'{"functionId": "Has Spaces"}', "functionId", "functionId"),
        (b'{"functionId": "' + b"a" * 65 + b'"}', "functionId", "functionId"),
        (b'{"functionId": 42}', "functionId", "functionId"),
        (b'{"functionId": "bad-req-echo", "inputData": [1, 2]}', "inputData", "inputData"),
        (b'{"functionId": "bad-req-echo", "inputData": "text"}', "inputData", "inputData"),
        (b'{"functionId": "bad-req-echo", "input": {}}', "input", "Extra inputs are not permitted"),
        (b'{"functionId": "bad-req-echo", "timeoutMs": 0}', "timeoutMs", "greater than or equal to 1"),
        (b'{"functionId": "bad-req-echo", "timeoutMs": 900001}', "timeoutMs", "less than or equal to 900000"),
    ],
    ids=["malformed_json", "not_object", "missing_function_id", "function_id_spaces", "function_id_too_long",
         "function_id_number", "input_list", "input_string", "unknown_field", "wait_below", "wait_above"],
)
def test_run_rejects_bad_body(controller, raw_body, field, message):
    status, body, _ = controller.call("POST", "/run", raw_body=raw_body)

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert body["field"] == field
    assert message in body["message"]


def test_run_accepts_base64_body(controller, echo_function):
    # No JSON content type, so API Gateway (and build_event) base64-encode the body.
    raw = json.dumps({"functionId": echo_function, "inputData": {"k": "v"}}).encode()

    status, body, headers = controller.call("POST", "/run?async=true", raw_body=raw, content_type="application/octet-stream")

    assert status == 202
    assert body["status"] == "QUEUED"
    assert headers["Location"] == f"/runs/{body['requestId']}"


def test_put_function_accepts_base64_body(controller):
    raw = json.dumps({"code": {"source": "print('b64')\n"}}).encode()

    status, body, _ = controller.call("PUT", "/functions/bad-req-b64", raw_body=raw, content_type="application/octet-stream")

    assert status in (200, 201)
    assert body["functionId"] == "bad-req-b64"


def test_run_rejects_invalid_base64(controller):
    event = build_event("POST", "/run", {"content-type": "application/octet-stream", "authorization": f"Bearer {API_KEY}"},
                        b"x", "127.0.0.1")
    event["body"] = "not*base64*at*all"

    status, body, _ = controller.call("POST", "/run", event=event)

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert body["field"] == "body"
    assert "base64" in body["message"]


# -- unknown ids -----------------------------------------------------------------------------


def test_run_unknown_function_404(controller):
    status, body, _ = controller.call("POST", "/run", {"functionId": "bad-req-never-registered"})

    assert status == 404
    assert body["code"] == "FUNCTION_NOT_FOUND"
    assert body["functionId"] == "bad-req-never-registered"


def test_get_run_unknown_404(controller):
    status, body, _ = controller.call("GET", "/runs/00000000-0000-0000-0000-000000000000")

    assert status == 404
    assert body["code"] == "RUN_NOT_FOUND"
    assert body["requestId"] == "00000000-0000-0000-0000-000000000000"


# -- input size ------------------------------------------------------------------------------


def test_input_200kib_inline(controller, echo_function, sqs_client, queue_url, s3_client, code_bucket):
    input_data = input_of_size(200 * 1024)

    status, body, _ = controller.call("POST", "/run?async=true", {"functionId": echo_function, "inputData": input_data})
    messages = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    job = json.loads(messages[0]["Body"])

    assert status == 202
    assert job["requestId"] == body["requestId"]
    assert job["inputData"] == input_data
    assert "inputRef" not in job or job["inputRef"] is None
    assert keys.input_object_key(body["requestId"]) not in bucket_keys(s3_client, code_bucket)


@pytest.mark.docker
@pytest.mark.parametrize("size_bytes", [256 * 1024 + 1, limits.MAX_INPUT_BYTES], ids=["256kib_plus_1", "max_input"])
def test_input_claim_check_full(controller, echo_function, start_agent, s3_client, code_bucket, redis_client, size_bytes):
    input_data = input_of_size(size_bytes)
    start_agent()

    status, body, _ = controller.call("POST", "/run", {"functionId": echo_function, "inputData": input_data})
    stored = s3_client.get_object(Bucket=code_bucket, Key=keys.input_object_key(body["requestId"]))["Body"].read()

    assert status == 200
    assert body["status"] == "SUCCESS", body.get("stderr")
    assert body["result"] == {"sizeBytes": size_bytes, "sha256": compact_sha256(input_data)}
    assert len(stored) == size_bytes
    assert limits.RESULT_TTL_S - 60 < redis_client.ttl(keys.run_result_key(body["requestId"])) <= limits.RESULT_TTL_S


def test_input_2mib_goes_to_s3(controller, echo_function, sqs_client, queue_url, s3_client, code_bucket):
    input_data = input_of_size(2 * 1024 * 1024)

    status, body, _ = controller.call("POST", "/run?async=true", {"functionId": echo_function, "inputData": input_data})
    messages = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    job = json.loads(messages[0]["Body"])
    stored = s3_client.get_object(Bucket=code_bucket, Key=keys.input_object_key(body["requestId"]))["Body"].read()

    assert status == 202
    assert job["inputRef"]["key"] == keys.input_object_key(body["requestId"])
    assert job["inputRef"]["sizeBytes"] == 2 * 1024 * 1024
    assert len(messages[0]["Body"].encode()) <= limits.MAX_SQS_MESSAGE_BYTES
    assert json.loads(stored) == input_data


def test_input_over_limit_413(controller, echo_function, s3_client, code_bucket):
    input_data = input_of_size(limits.MAX_INPUT_BYTES + 1)
    # Fewer characters than the limit: only the UTF-8 byte count passes it.
    assert len(input_data["s"]) < limits.MAX_INPUT_BYTES
    before = bucket_keys(s3_client, code_bucket)

    status, body, _ = controller.call("POST", "/run", {"functionId": echo_function, "inputData": input_data})

    assert status == 413
    assert body["code"] == "PAYLOAD_TOO_LARGE"
    assert body["limitBytes"] == limits.MAX_INPUT_BYTES
    assert body["sizeBytes"] == limits.MAX_INPUT_BYTES + 1
    assert str(limits.MAX_INPUT_BYTES) in body["message"]
    assert bucket_keys(s3_client, code_bucket) == before


def test_local_front_body_limit_413(controller_env):
    from nanogrid_controller.app import lambda_handler

    port = free_port()
    server = serve("127.0.0.1", port, lambda_handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Valid JSON one byte over the limit: the front rejects it by Content-Length alone.
    body = b"{" + b" " * (limits.MAX_REQUEST_BODY_BYTES - 1) + b"}"
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/run", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

    assert response.status == 413
    assert answer["code"] == "PAYLOAD_TOO_LARGE"
    assert answer["limitBytes"] == limits.MAX_REQUEST_BODY_BYTES
    assert str(limits.MAX_REQUEST_BODY_BYTES + 1) in answer["message"]


# -- function uploads ------------------------------------------------------------------------


def zip_of(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def symlink_zip() -> bytes:
    link = zipfile.ZipInfo("secrets.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_of([("main.py", b"print(1)\n"), (link, b"/etc/shadow")])


def bomb_zip() -> bytes:
    return zip_of([("main.py", b"print(1)\n"), ("zeros.bin", b"\0" * (limits.MAX_CODE_UNPACKED_BYTES + 1))])


def lying_bomb_zip() -> bytes:
    """A bomb whose local and central headers claim 1 KiB for a file that unpacks to more than
    the limit, so only decompressing finds the real size."""
    data = bytearray(bomb_zip())
    claimed = 1024
    real = limits.MAX_CODE_UNPACKED_BYTES + 1
    real_bytes = struct.pack("<I", real)
    # The uncompressed size sits 22 bytes into a local header and 24 into a central one.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            field = start + offset
            if data[field:field + 4] == real_bytes:
                data[field:field + 4] = struct.pack("<I", claimed)
            start += 4
    assert bytes(data).count(real_bytes) == 0
    return bytes(data)


def zip_upload(archive: bytes, **settings) -> dict:
    return {**settings, "code": {"zipBase64": base64.b64encode(archive).decode()}}


BAD_UPLOADS = {
    "parent_path": (zip_upload(zip_of([("main.py", b""), ("../evil.py", b"x")])), "code", "'..'"),
    "nested_parent_path": (zip_upload(zip_of([("main.py", b""), ("lib/../../evil.py", b"x")])), "code", "'..'"),
    "absolute_path": (zip_upload(zip_of([("main.py", b""), (zipfile.ZipInfo("/etc/cron.d/evil"), b"x")])), "code", "absolute path"),
    "symlink": (zip_upload(symlink_zip()), "code", "symbolic link"),
    "zip_bomb": (zip_upload(bomb_zip()), "code", f"more than {limits.MAX_CODE_UNPACKED_BYTES} bytes"),
    "lying_zip_bomb": (zip_upload(lying_bomb_zip()), "code", "zeros.bin"),
    "missing_main": (zip_upload(zip_of([("app.py", b"print(1)\n")])), "code", "no main.py"),
    "not_zip": (zip_upload(b"plain text, not a zip"), "code", "not a valid zip"),
    "invalid_base64": ({"code": {"zipBase64": "***"}}, "code.zipBase64", "not valid base64"),
    "both_code_kinds": ({"code": {"source": "print(1)", "zipBase64": ""}}, "code", "exactly one"),
    "unknown_runtime": ({"runtime": "cobol85", "code": {"source": "print(1)"}}, "runtime", "unknown runtime"),
    "memory_below": ({"memoryMB": limits.MIN_MEMORY_MB - 1, "code": {"source": "print(1)"}}, "memoryMB", str(limits.MIN_MEMORY_MB)),
    "memory_above": ({"memoryMB": limits.MAX_MEMORY_MB + 1, "code": {"source": "print(1)"}}, "memoryMB", str(limits.MAX_MEMORY_MB)),
    "timeout_below": (
        {"timeoutMs": limits.MIN_FUNCTION_TIMEOUT_MS - 1, "code": {"source": "print(1)"}}, "timeoutMs",
        str(limits.MIN_FUNCTION_TIMEOUT_MS),
    ),
    "timeout_above": (
        {"timeoutMs": limits.MAX_FUNCTION_TIMEOUT_MS + 1, "code": {"source": "print(1)"}}, "timeoutMs",
        str(limits.MAX_FUNCTION_TIMEOUT_MS),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_upload_rejected_stores_nothing(controller, s3_client, code_bucket, case):
    upload, field, message = BAD_UPLOADS[case]
    function_id = f"bad-upload-{case.replace('_', '-')}"
    before = bucket_keys(s3_client, code_bucket)

    status, body, _ = controller.call("PUT", f"/functions/{function_id}", upload)
    after = bucket_keys(s3_client, code_bucket)

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert body["field"] == field
    assert message in body["message"]
    assert after == before
    assert not [key for key in after if key.startswith(f"functions/{function_id}/")]


def test_upload_zip_over_limit_rejected(controller, s3_client, code_bucket):
    # Random bytes do not compress, so the archive itself passes MAX_CODE_ZIP_BYTES.
    archive = zip_of([("main.py", b""), ("blob.bin", os.urandom(limits.MAX_CODE_ZIP_BYTES))])
    before = bucket_keys(s3_client, code_bucket)

    status, body, _ = controller.call("PUT", "/functions/bad-upload-big-zip", zip_upload(archive))

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert str(limits.MAX_CODE_ZIP_BYTES) in body["message"]
    assert bucket_keys(s3_client, code_bucket) == before


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"memoryMB": limits.MIN_MEMORY_MB, "timeoutMs": limits.MIN_FUNCTION_TIMEOUT_MS}, (limits.MIN_MEMORY_MB, limits.MIN_FUNCTION_TIMEOUT_MS)),
        ({"memoryMB": limits.MAX_MEMORY_MB, "timeoutMs": limits.MAX_FUNCTION_TIMEOUT_MS}, (limits.MAX_MEMORY_MB, limits.MAX_FUNCTION_TIMEOUT_MS)),
        ({}, (limits.DEFAULT_MEMORY_MB, limits.DEFAULT_FUNCTION_TIMEOUT_MS)),
    ],
    ids=["minimum", "maximum", "default"],
)
def test_upload_settings_at_range_edges(controller, settings, expected):
    status, body, _ = controller.call("PUT", "/functions/bad-req-edges", {**settings, "code": {"source": "print(1)\n"}})

    assert status in (200, 201)
    assert (body["memoryMB"], body["timeoutMs"]) == expected


# -- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong-key"}, {"x-api-key": "wrong-key"},
                                     {"authorization": "Basic " + API_KEY}], ids=["missing", "wrong_bearer", "wrong_x_api_key", "basic_scheme"])
def test_auth_rejects_bad_key(controller, headers):
    controller.api_key = ""

    status, body, _ = controller.call("GET", "/functions", headers=headers)

    assert status == 401
    assert body["code"] == "UNAUTHORIZED"
    # One message for every case, so a caller learns nothing about which part was wrong.
    assert body["message"] == "missing or invalid credentials; send the API key as 'Authorization: Bearer KEY'"


@pytest.mark.parametrize("headers", [{"authorization": f"Bearer {API_KEY}"}, {"x-api-key": API_KEY}], ids=["bearer", "x_api_key"])
def test_auth_accepts_right_key(controller, headers):
    controller.api_key = ""

    status, body, _ = controller.call("GET", "/functions", headers=headers)

    assert status == 200
    assert "functions" in body


def test_auth_no_key_refuses_to_serve(controller_env):
    controller_env.delenv("NANOGRID_API_KEY")
    controller = Controller(api_key="")

    status, body, _ = controller.call("GET", "/functions")

    assert status == 500
    assert body["code"] == "CONTROLLER_MISCONFIGURED"
    assert API_KEY not in json.dumps(body)


def test_auth_anonymous_when_allowed(controller_env):
    controller_env.delenv("NANOGRID_API_KEY")
    controller_env.setenv("NANOGRID_ALLOW_ANONYMOUS", "1")
    controller = Controller(api_key="")

    status, _, _ = controller.call("GET", "/functions")

    assert status == 200


# -- idempotency -----------------------------------------------------------------------------


def test_idempotency_same_key_same_run(controller, echo_function):
    request = {"functionId": echo_function, "inputData": {"n": 1}}
    headers = {"idempotency-key": "bad-req-same-body"}

    first_status, first, _ = controller.call("POST", "/run?async=true", request, headers=headers)
    second_status, second, _ = controller.call("POST", "/run?async=true", request, headers=headers)

    assert first_status == 202
    assert second_status == 202
    assert second["requestId"] == first["requestId"]


def test_idempotency_key_other_body_409(controller, echo_function):
    headers = {"idempotency-key": "bad-req-other-body"}

    first_status, first, _ = controller.call("POST", "/run?async=true", {"functionId": echo_function, "inputData": {"n": 1}}, headers=headers)
    status, body, _ = controller.call("POST", "/run?async=true", {"functionId": echo_function, "inputData": {"n": 2}}, headers=headers)

    assert first_status == 202
    assert status == 409
    assert body["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert body["requestId"] == first["requestId"]


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tkey"], ids=["empty", "too_long", "control_char"])
def test_idempotency_key_invalid_400(controller, echo_function, key):
    status, body, _ = controller.call("POST", "/run?async=true", {"functionId": echo_function}, headers={"idempotency-key": key})

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert body["field"] == "Idempotency-Key"
