"""The local front with a stub controller: every answer should be the controller's JSON."""

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
