"""Controller Lambda handler called with API Gateway v2 events, against moto, Redis and a worker."""

import json
import time

import pytest
from nanogrid.local_front import LambdaContext, build_event
from nanogrid_controller import app as controller_app

API_KEY = "controller-test-key"
SLOW_SOURCE = "import time\ntime.sleep(2)\nprint('slow done')\n"


class Controller:
    """Calls the Lambda handler the way the local front does, one event per request."""

    def __init__(self, api_key: str):
        self._api_key = api_key

    def call(self, method: str, path: str, body=None, raw_body: bytes | None = None, api_key: str | None = None):
        headers = {"content-type": "application/json", "host": "127.0.0.1"}
        key = self._api_key if api_key is None else api_key
        if key:
            headers["authorization"] = f"Bearer {key}"
        if raw_body is not None:
            data = raw_body
        elif body is not None:
            data = json.dumps(body).encode()
        else:
            data = b""
        event = build_event(method, path, headers, data, "127.0.0.1")
        response = controller_app.lambda_handler(event, LambdaContext(29_000))
        return response["statusCode"], json.loads(response["body"]), response.get("headers") or {}


@pytest.fixture
def controller(monkeypatch, redis_url, moto_url, queue_url, code_bucket) -> Controller:
    monkeypatch.setenv("NANOGRID_REDIS_URL", redis_url)
    monkeypatch.setenv("NANOGRID_QUEUE_URL", queue_url)
    monkeypatch.setenv("NANOGRID_CODE_BUCKET", code_bucket)
    monkeypatch.setenv("NANOGRID_API_KEY", API_KEY)
    # Services are cached per Lambda environment; each test builds its own from the settings above.
    monkeypatch.setattr(controller_app, "_services", None)
    return Controller(API_KEY)


def put_source(controller: Controller, function_id: str, source: str, timeout_ms: int = 10_000):
    return controller.call("PUT", f"/functions/{function_id}", {"timeoutMs": timeout_ms, "code": {"source": source}})


def test_put_function_creates_version(controller):
    status, body, _ = put_source(controller, "ctl-put", "print('hi')\n")
    again_status, again_body, _ = put_source(controller, "ctl-put", "print('hi')\n")

    assert status == 201
    assert body["functionId"] == "ctl-put"
    assert body["memoryMB"] == 128
    assert len(body["versionId"]) == 64
    assert again_status == 200
    assert again_body["versionId"] == body["versionId"]


def test_put_function_rejects_missing_main(controller):
    import base64

    from tests.unit.test_archive import make_zip

    archive = base64.b64encode(make_zip({"other.py": b""})).decode()
    status, body, _ = controller.call("PUT", "/functions/ctl-nomain", {"code": {"zipBase64": archive}})

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert "main.py" in body["message"]


def test_get_functions_lists_registered(controller):
    put_source(controller, "ctl-list-a", "print('a')\n")
    put_source(controller, "ctl-list-b", "print('b')\n")

    status, body, _ = controller.call("GET", "/functions")
    ids = [function["functionId"] for function in body["functions"]]

    assert status == 200
    assert "ctl-list-a" in ids
    assert "ctl-list-b" in ids
    assert ids == sorted(ids)


def test_get_function_by_id(controller):
    _, created, _ = put_source(controller, "ctl-get", "print('get')\n")

    status, body, _ = controller.call("GET", "/functions/ctl-get")

    assert status == 200
    assert body == created


def test_get_function_unknown(controller):
    status, body, _ = controller.call("GET", "/functions/ctl-never-registered")

    assert status == 404
    assert body["code"] == "FUNCTION_NOT_FOUND"
    assert "PUT /functions/ctl-never-registered" in body["message"]


@pytest.mark.docker
def test_post_run_success(controller, start_agent):
    put_source(controller, "ctl-run", "def handler(event, context):\n    print('adding')\n    return event['a'] + event['b']\n")
    start_agent()

    status, body, _ = controller.call("POST", "/run", {"functionId": "ctl-run", "inputData": {"a": 2, "b": 3}})

    assert status == 200
    assert body["status"] == "SUCCESS"
    assert body["result"] == 5
    assert body["stdout"] == "adding\n"
    assert body["exitCode"] == 0
    assert body["durationMillis"] > 0


@pytest.mark.docker
def test_post_run_short_wait_returns_202(controller, start_agent):
    put_source(controller, "ctl-slow", SLOW_SOURCE)
    start_agent()

    status, body, headers = controller.call("POST", "/run", {"functionId": "ctl-slow", "timeoutMs": 300})
    request_id = body["requestId"]
    deadline = time.monotonic() + 60
    final_status, final = None, {}
    while time.monotonic() < deadline:
        final_status, final, _ = controller.call("GET", f"/runs/{request_id}")
        if final["status"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.2)

    assert status == 202
    assert headers["Location"] == f"/runs/{request_id}"
    assert body["status"] in ("QUEUED", "RUNNING")
    assert final_status == 200
    assert final["status"] == "SUCCESS"
    assert final["stdout"] == "slow done\n"
    assert final["requestId"] == request_id


def test_post_run_unknown_function(controller):
    status, body, _ = controller.call("POST", "/run", {"functionId": "ctl-missing"})

    assert status == 404
    assert body["code"] == "FUNCTION_NOT_FOUND"


def test_get_run_unknown(controller):
    status, body, _ = controller.call("GET", "/runs/unknown")

    assert status == 404
    assert body["code"] == "RUN_NOT_FOUND"
    assert body["requestId"] == "unknown"


def test_health_reports_dependencies(controller):
    status, body, _ = controller.call("GET", "/health")

    assert status == 200
    assert body["ok"] is True
    assert set(body["checks"]) >= {"redis", "sqs"}
    for name in ("redis", "sqs"):
        assert body["checks"][name]["ok"] is True
        assert body["checks"][name]["latencyMs"] >= 0


def test_post_run_malformed_json(controller):
    status, body, _ = controller.call("POST", "/run", raw_body=b'{"functionId": ')

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert body["field"] == "body"
    assert "not valid JSON" in body["message"]


def test_post_run_invalid_field(controller):
    status, body, _ = controller.call("POST", "/run", {"functionId": "Not Valid"})

    assert status == 400
    assert body["code"] == "INVALID_REQUEST"
    assert body["field"] == "functionId"


def test_request_without_key_rejected(controller):
    status, body, _ = controller.call("GET", "/functions", api_key="")

    assert status == 401
    assert body["code"] == "UNAUTHORIZED"


def test_unknown_route_404(controller):
    status, body, _ = controller.call("DELETE", "/everything")

    assert status == 404
    assert body["code"] == "ROUTE_NOT_FOUND"
