"""Local stand-in for API Gateway: turns each HTTP request into an HTTP API v2 (payload format
2.0) event, calls the controller's Lambda handler, and writes its response back.

Requests are served on threads, several at a time. Each call gets a context whose remaining
time starts at the Lambda timeout, as in AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from nanogrid_protocol import limits

logger = logging.getLogger(__name__)

# API Gateway ends an HTTP API integration after 30 s; the controller Lambda's timeout is 29 s.
LAMBDA_TIMEOUT_MS = 29_000
TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded")


class LambdaContext:
    """The attributes of the Lambda context object that the controller and Powertools read."""

    function_name = "nanogrid-controller-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:nanogrid-controller-local"

    def __init__(self, timeout_ms: int):
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    """Build an API Gateway HTTP API v2 event the way AWS does: lower-case header names, a
    raw query string, and a body that is base64-encoded unless it is text."""
    parts = urlsplit(raw_path)
    content_type = headers.get("content-type", "")
    is_text = not body or any(content_type.startswith(t) for t in TEXT_TYPES)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
    return event


class BodyError(Exception):
    """A request body the front rejects before the handler, as API Gateway and Lambda do."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def _too_large(size_bytes: int) -> BodyError:
    return BodyError(
        413,
        "PAYLOAD_TOO_LARGE",
        f"request body is {size_bytes} bytes or more, over the limit of {limits.MAX_REQUEST_BODY_BYTES} bytes",
        limitBytes=limits.MAX_REQUEST_BODY_BYTES,
    )


def _error_response(status: int, code: str, message: str, **details) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"code": code, "message": message, **details}),
    }


def make_handler_class(lambda_handler, timeout_ms: int = LAMBDA_TIMEOUT_MS):
    class FrontHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nanogrid-local-front"
        # The headers and the body go out in two writes. With Nagle's algorithm on, the body
        # waits for the client's delayed ACK, about 40 ms on a keep-alive connection.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            try:
                body = self._read_body()
            except BodyError as exc:
                self.close_connection = True
                self._write(_error_response(exc.status, exc.code, exc.message, **exc.details))
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            headers.pop("transfer-encoding", None)
            event = build_event(self.command, self.path, headers, body, self.client_address[0])
            try:
                response = lambda_handler(event, LambdaContext(timeout_ms))
            except Exception:
                # API Gateway returns 500 with this body for a failed invocation.
                logger.exception("controller handler raised")
                response = {"statusCode": 500, "body": '{"message":"Internal Server Error"}',
                            "headers": {"Content-Type": "application/json"}}
            self._write(response)

        def _read_body(self) -> bytes:
            """Read a Content-Length or chunked body, up to Lambda's request payload limit."""
            if self.headers.get("Transfer-Encoding", "").strip().lower() == "chunked":
                return self._read_chunked()
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError(length)
            except ValueError:
                raise BodyError(400, "INVALID_REQUEST", "header Content-Length must be a whole number of bytes, 0 or more",
                                field="Content-Length") from None
            if length > limits.MAX_REQUEST_BODY_BYTES:
                # Lambda rejects such a payload before the handler runs; API Gateway returns 413.
                # The body is read and dropped first, so the client reads the response, not a reset.
                remaining = length
                while remaining > 0 and (chunk := self.rfile.read(min(remaining, 1 << 20))):
                    remaining -= len(chunk)
                raise _too_large(length)
            return self.rfile.read(length) if length else b""

        def _read_chunked(self) -> bytes:
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BodyError(400, "INVALID_REQUEST", "the chunked request body is malformed",
                                    field="Transfer-Encoding") from None
                if size == 0:
                    # Trailer fields, if any, end with an empty line.
                    while self.rfile.readline(65536).strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > limits.MAX_REQUEST_BODY_BYTES:
                    raise _too_large(total)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)

        def _write(self, response: dict) -> None:
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
            self.send_response(int(response.get("statusCode", 200)))
            for name, value in (response.get("headers") or {}).items():
                self.send_header(name, value)
            for cookie in response.get("cookies") or []:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def __getattr__(self, name: str):
            # http.server looks up do_<METHOD> for each request and returns an HTML 501 for a
            # missing one. Every method goes to the controller instead, which responds in JSON,
            # as API Gateway's $default route does.
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature from http.server
            logger.debug("%s %s", self.address_string(), format % args)

    return FrontHandler


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5; more clients connecting at once overflow it,
    # and each dropped SYN costs its client a 1 s retransmission.
    request_queue_size = 128


def serve(host: str, port: int, lambda_handler) -> ThreadingHTTPServer:
    """Create the server; the caller runs serve_forever()."""
    return FrontServer((host, port), make_handler_class(lambda_handler))


def main() -> None:
    """Run the front on NANOGRID_FRONT_HOST:NANOGRID_FRONT_PORT (127.0.0.1:8080)."""
    import os

    from nanogrid_controller.app import lambda_handler

    host = os.environ.get("NANOGRID_FRONT_HOST", "127.0.0.1")
    port = int(os.environ.get("NANOGRID_FRONT_PORT", "8080"))
    server = serve(host, port, lambda_handler)
    print(f'{{"level": "INFO", "message": "local front listening", "url": "http://{host}:{port}"}}', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
