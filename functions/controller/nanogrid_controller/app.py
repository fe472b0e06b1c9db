"""HTTP routes of the controller and the Lambda handler. The only module that maps errors to HTTP status codes.

Each route parses its input, calls a plain service method and returns JSON. Services are built
once per Lambda environment, on the first request, so a cold start imports only what it needs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from nanogrid_protocol import FUNCTION_ID_PATTERN, FunctionUpload, RunRequest, RunResult
from pydantic import BaseModel, ValidationError

from nanogrid_controller.errors import (
    ControllerError,
    DependencyUnavailable,
    FunctionNotFound,
    IdempotencyKeyReused,
    InvalidRequest,
    PayloadTooLarge,
    RunNotFound,
    Unauthorized,
)
from nanogrid_controller.registry import FunctionRegistry
from nanogrid_controller.runs import RunService
from nanogrid_controller.settings import ControllerSettings, SettingsError

# ISO 8601 UTC with milliseconds (%F is Powertools' millisecond directive), the worker's format,
# so the lines of both sides of a run sort together.
logger = Logger(service="nanogrid-controller", datefmt="%Y-%m-%dT%H:%M:%S.%FZ", utc=True)

ERROR_STATUS = {
    InvalidRequest: HTTPStatus.BAD_REQUEST,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    FunctionNotFound: HTTPStatus.NOT_FOUND,
    RunNotFound: HTTPStatus.NOT_FOUND,
    IdempotencyKeyReused: HTTPStatus.CONFLICT,
    PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    DependencyUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
}


@dataclass(frozen=True)
class Services:
    settings: ControllerSettings
    redis: object
    sqs: object
    registry: FunctionRegistry
    runs: RunService


_services: Services | None = None
_services_lock = threading.Lock()


def services() -> Services:
    """Build the clients and services once per environment, on first use."""
    global _services
    with _services_lock:
        if _services is None:
            _services = _build_services(ControllerSettings.from_env())
        return _services


def _build_services(settings: ControllerSettings) -> Services:
    # botocore alone, not boto3: boto3 also imports s3transfer and its resource layer, which
    # the controller never uses, and that costs tens of milliseconds of every cold start.
    # botocore reads the same credentials, region and AWS_ENDPOINT_URL from the environment.
    import botocore.session
    import redis
    from botocore.config import Config

    # Timeouts far below API Gateway's 30 s, so an unreachable dependency is a fast 503.
    aws_config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    redis_client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
    )
    session = botocore.session.get_session()
    sqs = session.create_client("sqs", config=aws_config)
    s3 = session.create_client("s3", config=aws_config)
    registry = FunctionRegistry(s3, settings.code_bucket)
    return Services(settings, redis_client, sqs, registry, RunService(settings, redis_client, sqs, s3, registry))


def create_app() -> APIGatewayHttpResolver:
    """Build a resolver with every route. A resolver stores the current event, so each thread
    of the local HTTP front gets its own; Lambda runs one event at a time."""
    app = APIGatewayHttpResolver()

    @app.post("/run")
    def post_run():
        svc = _authorized(app)
        request = _parse_body(app, RunRequest)
        wait = _query_flag(app, "async") is False
        remaining_ms = app.lambda_context.get_remaining_time_in_millis()
        idempotency_key = _idempotency_key(app)
        outcome = svc.runs.start(request, remaining_ms, wait=wait, idempotency_key=idempotency_key)
        return _run_response(outcome)

    @app.get("/runs/<request_id>")
    def get_run(request_id: str):
        svc = _authorized(app)
        logger.thread_safe_append_keys(requestId=request_id)
        return _run_response(svc.runs.get(request_id))

    @app.put("/functions/<function_id>")
    def put_function(function_id: str):
        svc = _authorized(app)
        _check_function_id(function_id)
        logger.thread_safe_append_keys(functionId=function_id)
        upload = _parse_body(app, FunctionUpload)
        version, created = svc.registry.register(function_id, upload)
        logger.info("function registered", extra={"versionId": version.version_id, "newVersion": created})
        return _json(HTTPStatus.CREATED if created else HTTPStatus.OK, version.to_dict())

    @app.get("/functions/<function_id>")
    def get_function(function_id: str):
        svc = _authorized(app)
        _check_function_id(function_id)
        return _json(HTTPStatus.OK, svc.registry.get(function_id).to_dict())

    @app.get("/functions")
    def list_functions():
        svc = _authorized(app)
        return _json(HTTPStatus.OK, {"functions": [v.to_dict() for v in svc.registry.list()]})

    @app.get("/health")
    def health():
        svc = services()
        checks = {"redis": _check(svc.redis.ping), "sqs": _check(lambda: svc.sqs.get_queue_attributes(
            QueueUrl=svc.settings.queue_url, AttributeNames=["ApproximateNumberOfMessages"]))}
        # ?deep=1 adds the hand-off that a result notice takes: SUBSCRIBE, PUBLISH, delivery.
        if _query_flag(app, "deep"):
            checks["pubsub"] = _check(lambda: _pubsub_round_trip(svc.redis)) if checks["redis"]["ok"] else {
                "ok": False, "error": "skipped, because the redis check failed"}
        healthy = all(check["ok"] for check in checks.values())
        return _json(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, {"ok": healthy, "checks": checks})

    @app.not_found
    def not_found(_exc):
        event = app.current_event
        return _error(HTTPStatus.NOT_FOUND, "ROUTE_NOT_FOUND", f"no route for {event.http_method} {event.path}")

    @app.exception_handler(ControllerError)
    def controller_error(exc: ControllerError):
        status = next((s for cls, s in ERROR_STATUS.items() if isinstance(exc, cls)), HTTPStatus.INTERNAL_SERVER_ERROR)
        if status >= 500:
            logger.error("request failed", extra={"code": exc.code, "error": exc.message})
        else:
            logger.info("request rejected", extra={"code": exc.code, "error": exc.message})
        return _error(status, exc.code, exc.message, **{k: v for k, v in exc.details.items() if v is not None})

    @app.exception_handler(SettingsError)
    def settings_error(exc: SettingsError):
        logger.error("controller settings are invalid", extra={"error": str(exc)})
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "CONTROLLER_MISCONFIGURED", "the controller's settings are invalid; see its logs")

    @app.exception_handler(Exception)
    def unexpected_error(exc: Exception):
        logger.exception("unexpected error")
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; search the logs for this requestId")

    return app


_local = threading.local()


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context) -> dict:
    app = getattr(_local, "app", None)
    if app is None:
        app = _local.app = create_app()
    try:
        return app.resolve(event, context)
    finally:
        logger.thread_safe_clear_keys()


# -- helpers -------------------------------------------------------------------------------


def _authorized(app: APIGatewayHttpResolver) -> Services:
    svc = services()
    expected = svc.settings.api_key
    if not expected and svc.settings.allow_anonymous:
        return svc
    event = app.current_event
    presented = event.headers.get("x-api-key") or ""
    authorization = event.headers.get("authorization") or ""
    if authorization.lower().startswith("bearer "):
        presented = authorization[len("bearer "):].strip()
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        # The same message for a missing and a wrong key, so a caller learns nothing about it.
        raise Unauthorized("missing or invalid credentials; send the API key as 'Authorization: Bearer KEY'")
    return svc


def _parse_body(app: APIGatewayHttpResolver, model: type[BaseModel]) -> BaseModel:
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"the body is marked base64-encoded but is not valid base64 UTF-8: {exc}", field="body") from exc
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", field="body") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        raise InvalidRequest(f"invalid field {field}: {error['msg']}", field=field) from exc


def _idempotency_key(app: APIGatewayHttpResolver) -> str | None:
    value = app.current_event.headers.get("idempotency-key")
    if value is None:
        return None
    if not 1 <= len(value) <= 255 or not value.isprintable():
        raise InvalidRequest("header Idempotency-Key must be 1 to 255 printable characters", field="Idempotency-Key")
    return value


def _query_flag(app: APIGatewayHttpResolver, name: str) -> bool:
    value = (app.current_event.query_string_parameters or {}).get(name)
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise InvalidRequest(f"query parameter {name}={value!r} is invalid; use true or false", field=name)


def _check_function_id(function_id: str) -> None:
    import re

    if not re.fullmatch(FUNCTION_ID_PATTERN, function_id):
        raise InvalidRequest(
            f"functionId {function_id!r} is invalid; use 1 to 64 lowercase letters, digits and '-', "
            f"starting with a letter or digit",
            field="functionId",
        )


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # noqa: BLE001 - health reports every failure as data
        return {"ok": False, "latencyMs": round((time.perf_counter() - started) * 1000, 1), "error": str(exc)}
    return {"ok": True, "latencyMs": round((time.perf_counter() - started) * 1000, 1)}


def _pubsub_round_trip(redis_client, timeout_s: float = 2.0) -> None:
    """Subscribe to a fresh channel, publish once and wait for delivery; raise TimeoutError if
    either step is not confirmed within timeout_s."""
    channel = f"nanogrid:health:{uuid.uuid4()}"
    pubsub = redis_client.pubsub()
    try:
        pubsub.subscribe(channel)
        _wait_for_pubsub(pubsub, "subscribe", timeout_s, f"no confirmation of SUBSCRIBE {channel}")
        receivers = redis_client.publish(channel, "ping")
        _wait_for_pubsub(pubsub, "message", timeout_s, f"PUBLISH {channel} reached {receivers} subscriber(s), but nothing arrived")
    finally:
        pubsub.close()


def _wait_for_pubsub(pubsub, message_type: str, timeout_s: float, error: str) -> None:
    deadline = time.monotonic() + timeout_s
    while (remaining_s := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=remaining_s)
        if message is not None and message.get("type") == message_type:
            return
    raise TimeoutError(f"{error} within {timeout_s} s")


def _run_response(outcome) -> Response:
    # UTF-8 JSON straight from the model: json.dumps would escape every non-ASCII character to
    # six bytes, and the worker sized the result to fit Lambda's response limit as UTF-8.
    if isinstance(outcome, RunResult):
        return _json(HTTPStatus.OK, outcome.to_json())
    location = f"/runs/{outcome.request_id}"
    return _json(HTTPStatus.ACCEPTED, outcome.to_json(), headers={"Location": location})


def _json(status: HTTPStatus, body: dict | str, headers: dict | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=text, headers=headers)


def _error(status: HTTPStatus, code: str, message: str, **details) -> Response:
    return _json(status, {"code": code, "message": message, **details})
