"""`nanogrid doctor`: check, in order, each hop that a run depends on and name the likely fix.

Checks: settings present, Redis reachable, SQS reachable, a pub/sub round trip, the HTTP API, and
one run of a tiny function end to end. Each check prints one verdict line; a failing line also
prints the likely fix. A check whose prerequisite failed is reported as skipped, because its
result would only repeat the first failure.

Settings come from the command line (--url, --api-key) and the environment: NANOGRID_REDIS_URL,
NANOGRID_QUEUE_URL and, for the local stack, AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import sys
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from nanogrid.i18n import translate

DOCTOR_FUNCTION_ID = "nanogrid-doctor"
DOCTOR_OUTPUT = "nanogrid doctor ok"
# A script without a handler, like examples/hello-python: the runtime runs it and keeps stdout.
DOCTOR_SOURCE = f'print("{DOCTOR_OUTPUT}")\n'
# Short timeouts: doctor is run when something is wrong, and a hang gives no clue.
CONNECT_TIMEOUT_S = 3.0
PUBSUB_TIMEOUT_S = 3.0
RUN_TIMEOUT_S = 35.0

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class DoctorSettings:
    url: str
    api_key: str
    redis_url: str
    queue_url: str
    aws_endpoint_url: str

    @classmethod
    def from_args(cls, args, environ=None) -> DoctorSettings:
        environ = os.environ if environ is None else environ
        return cls(
            url=(getattr(args, "url", "") or environ.get("NANOGRID_URL", "")).rstrip("/"),
            api_key=getattr(args, "api_key", "") or environ.get("NANOGRID_API_KEY", ""),
            redis_url=getattr(args, "redis_url", None) or environ.get("NANOGRID_REDIS_URL", ""),
            queue_url=getattr(args, "queue_url", None) or environ.get("NANOGRID_QUEUE_URL", ""),
            aws_endpoint_url=environ.get("AWS_ENDPOINT_URL", ""),
        )


def run(args, out=None) -> int:
    """Run every check, print one verdict line per check, and return 0 when all passed, else 1."""
    out = out or sys.stdout
    settings = DoctorSettings.from_args(args)
    checks = run_checks(settings)
    for check in checks:
        print(format_check(check), file=out)
    failed = [check for check in checks if check.status == FAIL]
    print(translate("doctor.summary_ok" if not failed else "doctor.summary_failed", failed=len(failed)), file=out)
    return 1 if failed else 0


def run_checks(settings: DoctorSettings) -> list[Check]:
    checks = [check_settings(settings)]
    if checks[0].status == FAIL:
        return checks + [_skipped(name, "settings") for name in ("Redis", "SQS", "pub/sub", "API", "run")]

    redis_check, redis_client = check_redis(settings.redis_url)
    checks.append(redis_check)
    sqs_check = check_sqs(settings.queue_url, settings.aws_endpoint_url)
    checks.append(sqs_check)
    checks.append(check_pubsub(redis_client) if redis_client is not None else _skipped("pub/sub", "Redis"))

    api_check = check_api(settings.url, settings.api_key)
    checks.append(api_check)
    prerequisites = [c for c in (redis_check, sqs_check, api_check) if c.status != OK]
    if prerequisites:
        checks.append(_skipped("run", prerequisites[0].name))
    else:
        checks.append(check_run(settings.url, settings.api_key))
    if redis_client is not None:
        redis_client.close()
    return checks


def format_check(check: Check) -> str:
    marker = {OK: "[ OK ]", FAIL: "[FAIL]", SKIP: "[SKIP]"}[check.status]
    line = f"{marker} {check.name}: {check.detail}"
    if check.timings_ms:
        line += " (" + ", ".join(f"{hop} {ms:.1f} ms" for hop, ms in check.timings_ms.items()) + ")"
    if check.fix:
        line += "\n       " + translate("doctor.likely_fix", fix=check.fix)
    return line


# -- checks ------------------------------------------------------------------------------------


def check_settings(settings: DoctorSettings) -> Check:
    missing = [name for name, value in (
        ("--url / NANOGRID_URL", settings.url),
        ("NANOGRID_REDIS_URL", settings.redis_url),
        ("NANOGRID_QUEUE_URL", settings.queue_url),
    ) if not value]
    if missing:
        return Check("settings", FAIL, translate("doctor.settings_missing", names=", ".join(missing)),
                     translate("doctor.fix.settings"))
    return Check("settings", OK, translate("doctor.settings_ok", url=settings.url,
                                           redis=redact_url(settings.redis_url), queue=settings.queue_url))


def check_redis(redis_url: str):
    """Return (Check, client): the client is None when Redis cannot be used."""
    import redis

    target = redact_url(redis_url)
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                      socket_timeout=CONNECT_TIMEOUT_S)
    except ValueError as exc:
        return Check("Redis", FAIL, translate("doctor.redis_bad_url", url=target, error=exc),
                     translate("doctor.fix.redis_url")), None
    started = time.perf_counter()
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - every failure is classified and reported
        kind = classify_error(exc)
        client.close()
        return Check("Redis", FAIL, translate(f"doctor.redis_{kind}", url=target, error=_one_line(exc)),
                     translate(f"doctor.fix.redis_{kind}")), None
    ping_ms = (time.perf_counter() - started) * 1000
    return Check("Redis", OK, translate("doctor.redis_ok", url=target), timings_ms={"PING": ping_ms}), client


def check_sqs(queue_url: str, endpoint_url: str) -> Check:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=CONNECT_TIMEOUT_S, retries={"max_attempts": 1})
    client = boto3.client("sqs", config=config, **({"endpoint_url": endpoint_url} if endpoint_url else {}))
    started = time.perf_counter()
    try:
        attributes = client.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        kind = "denied" if "AccessDenied" in code or "Unrecognized" in code else "missing"
        return Check("SQS", FAIL, translate(f"doctor.sqs_{kind}", queue=queue_url, error=_one_line(exc)),
                     translate(f"doctor.fix.sqs_{kind}"))
    except BotoCoreError as exc:
        kind = classify_error(exc)
        if kind == "auth":
            kind = "other"
        return Check("SQS", FAIL, translate(f"doctor.sqs_{kind}", queue=queue_url, error=_one_line(exc)),
                     translate(f"doctor.fix.sqs_{kind}"))
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Check("SQS", OK, translate("doctor.sqs_ok", queue=queue_url,
                                      visible=attributes.get("ApproximateNumberOfMessages", "?"),
                                      in_flight=attributes.get("ApproximateNumberOfMessagesNotVisible", "?")),
                 timings_ms={"GetQueueAttributes": elapsed_ms})


def check_pubsub(client) -> Check:
    """Subscribe to a fresh channel, publish one message and wait for it: the same hand-off
    that a worker's result notice takes to the controller."""
    import redis

    channel = f"nanogrid:doctor:{uuid.uuid4()}"
    pubsub = client.pubsub()
    try:
        started = time.perf_counter()
        pubsub.subscribe(channel)
        if not _wait_for(pubsub, "subscribe", PUBSUB_TIMEOUT_S):
            return Check("pub/sub", FAIL, translate("doctor.pubsub_no_confirm", channel=channel),
                         translate("doctor.fix.pubsub"))
        subscribed_ms = (time.perf_counter() - started) * 1000
        receivers = client.publish(channel, "ping")
        published = time.perf_counter()
        if not _wait_for(pubsub, "message", PUBSUB_TIMEOUT_S):
            return Check("pub/sub", FAIL, translate("doctor.pubsub_lost", channel=channel, receivers=receivers),
                         translate("doctor.fix.pubsub"))
        delivered_ms = (time.perf_counter() - published) * 1000
    except redis.RedisError as exc:
        return Check("pub/sub", FAIL, translate("doctor.pubsub_error", channel=channel, error=_one_line(exc)),
                     translate("doctor.fix.pubsub"))
    finally:
        pubsub.close()
    return Check("pub/sub", OK, translate("doctor.pubsub_ok", channel=channel, receivers=receivers),
                 timings_ms={"SUBSCRIBE": subscribed_ms, "PUBLISH to delivery": delivered_ms})


def check_api(url: str, api_key: str) -> Check:
    from nanogrid.client import ApiError, Client

    client = Client(url, api_key, timeout_s=10)
    started = time.perf_counter()
    try:
        response = client.request("GET", "/health?deep=1")
    except ApiError as exc:
        kind = classify_error(exc.__cause__ or exc)
        kind = kind if kind in ("refused", "timeout", "tls") else "other"
        return Check("API", FAIL, translate(f"doctor.api_{kind}", url=url, error=_one_line(exc)),
                     translate(f"doctor.fix.api_{kind}"))
    elapsed_ms = (time.perf_counter() - started) * 1000
    if response.status != 200:
        failing = [name for name, check in (response.body.get("checks") or {}).items() if not check.get("ok")]
        return Check("API", FAIL, translate("doctor.api_unhealthy", url=url, status=response.status,
                                            failing=", ".join(failing) or "-", body=response.body),
                     translate("doctor.fix.api_unhealthy"))
    return Check("API", OK, translate("doctor.api_ok", url=url), timings_ms={"GET /health?deep=1": elapsed_ms})


def check_run(url: str, api_key: str) -> Check:
    """Register a tiny function and run it. Hops: registration, queue wait and dispatch (POST /run
    sent to the worker's start), the run itself, and hand-off of the result back to the caller.
    The hops compare the caller's clock with the worker's, so they are as exact as the clocks."""
    from nanogrid.client import ApiError, Client

    client = Client(url, api_key, timeout_s=RUN_TIMEOUT_S)
    upload = {"runtime": "python3.11", "memoryMB": 64, "timeoutMs": 5000, "code": {"source": DOCTOR_SOURCE}}
    try:
        started = time.perf_counter()
        registered = client.request("PUT", f"/functions/{DOCTOR_FUNCTION_ID}", upload)
        register_ms = (time.perf_counter() - started) * 1000
        if registered.status not in (200, 201):
            return Check("run", FAIL, translate("doctor.run_register_failed", status=registered.status,
                                                body=registered.body), translate("doctor.fix.run_register"))
        sent_at_ms = time.time() * 1000
        started = time.perf_counter()
        response = client.request("POST", "/run", {"functionId": DOCTOR_FUNCTION_ID, "inputData": {}})
        total_ms = (time.perf_counter() - started) * 1000
        received_at_ms = time.time() * 1000
    except ApiError as exc:
        return Check("run", FAIL, translate("doctor.run_unreachable", error=_one_line(exc)),
                     translate("doctor.fix.api_other"))

    body = response.body
    if response.status == 202:
        return Check("run", FAIL, translate("doctor.run_not_finished", request_id=body.get("requestId"),
                                            status=body.get("status")), translate("doctor.fix.run_no_worker"))
    if response.status != 200 or body.get("status") != "SUCCESS" or DOCTOR_OUTPUT not in body.get("stdout", ""):
        return Check("run", FAIL, translate("doctor.run_failed", status=response.status, body=body),
                     translate("doctor.fix.run_failed"))

    timings = {"register": register_ms}
    if body.get("startedAtMs") and body.get("finishedAtMs"):
        timings["queue and dispatch"] = max(0.0, body["startedAtMs"] - sent_at_ms)
        timings["run"] = float(body.get("durationMillis", body["finishedAtMs"] - body["startedAtMs"]))
        timings["result hand-off"] = max(0.0, received_at_ms - body["finishedAtMs"])
    timings["total"] = total_ms
    return Check("run", OK, translate("doctor.run_ok", function_id=DOCTOR_FUNCTION_ID,
                                      request_id=body.get("requestId"), worker_id=body.get("workerId")),
                 timings_ms=timings)


# -- helpers -----------------------------------------------------------------------------------


def classify_error(exc: BaseException) -> str:
    """Return refused, timeout, tls, auth, dns or other for a connection failure, looking through
    the exception's causes, because redis-py and urllib wrap the socket error."""
    import redis

    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, redis.AuthenticationError) or _mentions(current, "NOAUTH", "WRONGPASS",
                                                                        "invalid password", "invalid username"):
            return "auth"
        if isinstance(current, ssl.SSLError) or _mentions(current, "SSL", "TLS", "certificate"):
            return "tls"
        if isinstance(current, ConnectionRefusedError) or getattr(current, "errno", None) == errno.ECONNREFUSED \
                or _mentions(current, "Connection refused", "ECONNREFUSED"):
            return "refused"
        if isinstance(current, (socket.timeout, TimeoutError)) or _mentions(current, "timed out", "Timeout"):
            return "timeout"
        if isinstance(current, socket.gaierror) or _mentions(current, "Name or service not known",
                                                             "nodename nor servname", "Temporary failure in name"):
            return "dns"
        current = current.__cause__ or current.__context__ or _first_arg_exception(current)
    # A reset right after connecting is what a TLS-only server does to a plain-text client.
    if _mentions(exc, "Connection reset", "Connection closed by server"):
        return "tls"
    return "other"


def redact_url(url: str) -> str:
    """Hide the password of a redis URL, so doctor output can be pasted into a ticket."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def _skipped(name: str, because: str) -> Check:
    return Check(name, SKIP, translate("doctor.skipped", prerequisite=because))


def _wait_for(pubsub, message_type: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while (remaining_s := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=remaining_s)
        if message is not None and message.get("type") == message_type:
            return True
    return False


def _mentions(exc: BaseException, *needles: str) -> bool:
    text = str(exc)
    return any(needle.lower() in text.lower() for needle in needles)


def _first_arg_exception(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    return next((arg for arg in exc.args if isinstance(arg, BaseException)), None)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
