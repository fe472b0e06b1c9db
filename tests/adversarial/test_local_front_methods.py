"""The local front with a stub controller: every response should be the controller's JSON."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from nanogrid.local_front import serve
from nanogrid.stack import free_port


def stub_controller(event, context):
    body = {"code": "ROUTE_NOT_FOUND", "message": f"no route for {event['requestContext']['http']['method']}"}
    return {"statusCode": 404, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


@pytest.fixture
def front():
    port = free_port()
    server = serve("127.0.0.1", port, stub_controller)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PROPFIND"])
def test_front_unknown_method_json(front, method):
    connection = http.client.HTTPConnection("127.0.0.1", front, timeout=10)
    connection.request(method, "/run")
    response = connection.getresponse()
    body = response.read()
    connection.close()

    assert response.status == 404
    assert json.loads(body)["code"] == "ROUTE_NOT_FOUND"


def echo_controller(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"body": event.get("body", ""), "headers": sorted(event["headers"])})}


@pytest.fixture
def echo_front():
    port = free_port()
    server = serve("127.0.0.1", port, echo_controller)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


def test_front_chunked_body_reaches_handler(echo_front):
    connection = http.client.HTTPConnection("127.0.0.1", echo_front, timeout=10)
    connection.request("POST", "/run", body=iter([b'{"functionId": ', b'"hello-python"}']),
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                       encode_chunked=True)
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()

    assert response.status == 200
    assert answer["body"] == '{"functionId": "hello-python"}'
    assert "transfer-encoding" not in answer["headers"]


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_front_bad_content_length_400(echo_front, length):
    connection = http.client.HTTPConnection("127.0.0.1", echo_front, timeout=10)
    connection.putrequest("POST", "/run")
    connection.putheader("Content-Length", length)
    connection.endheaders()
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()

    assert response.status == 400
    assert answer["field"] == "Content-Length"
