"""local_front.build_event: HTTP requests as API Gateway HTTP API v2 events."""

import base64
import json

from nanogrid.local_front import build_event


def test_build_event_json_body():
    body = json.dumps({"functionId": "hello"}).encode()

    event = build_event("POST", "/run", {"content-type": "application/json", "host": "127.0.0.1:9"}, body, "127.0.0.1")

    assert event["version"] == "2.0"
    assert event["rawPath"] == "/run"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["path"] == "/run"
    assert event["requestContext"]["domainName"] == "127.0.0.1:9"
    assert event["isBase64Encoded"] is False
    assert event["body"] == '{"functionId": "hello"}'
    assert "queryStringParameters" not in event


def test_build_event_binary_body_base64():
    body = bytes(range(256))

    event = build_event("PUT", "/functions/f", {"content-type": "application/octet-stream"}, body, "127.0.0.1")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_build_event_body_without_content_type_base64():
    event = build_event("POST", "/run", {}, b"\x00\x01", "127.0.0.1")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01"


def test_build_event_query_string():
    event = build_event("POST", "/run?async=true&tag=a%20b&empty=", {}, b"", "127.0.0.1")

    assert event["rawPath"] == "/run"
    assert event["requestContext"]["http"]["path"] == "/run"
    assert event["rawQueryString"] == "async=true&tag=a%20b&empty="
    assert event["queryStringParameters"] == {"async": "true", "tag": "a b", "empty": ""}


def test_build_event_empty_body():
    event = build_event("GET", "/health", {}, b"", "10.0.0.1")

    assert "body" not in event
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.1"
    assert event["rawQueryString"] == ""
