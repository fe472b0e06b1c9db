"""Measure one cold initialisation of the controller in this fresh process and print it as JSON.

bench/run.py starts this script once per sample, with the controller's environment and
NANOGRID_BENCH_SPAWNED_AT (time.monotonic() in the parent just before it spawned the process;
CLOCK_MONOTONIC is shared by every process on the host). The phases, in milliseconds:

- interpreter_ms: from the spawn to the first line of this script (interpreter and site start);
- import_ms: importing nanogrid_controller.app;
- first_request_ms: the first event through lambda_handler (settings, clients, the S3 read of
  the function, the Redis write and the SQS send of an asynchronous POST /run);
- total_ms: from the spawn to the end of that first request;
- total_cpu_ms: CPU time (user and system) of this process up to the same point, which other
  load on the machine disturbs less than the wall-clock figures.

A second request, timed as second_request_ms, shows what a warm Lambda environment pays.
"""

import time

_SCRIPT_STARTED = time.monotonic()

import json  # noqa: E402 - after the first timestamp on purpose
import os  # noqa: E402
import sys  # noqa: E402


class _Context:
    function_name = "nanogrid-controller-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:nanogrid-controller-bench"
    aws_request_id = "bench-cold-init"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _event(function_id: str) -> dict:
    body = json.dumps({"functionId": function_id, "inputData": {}})
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/run",
        "rawQueryString": "async=true",
        "queryStringParameters": {"async": "true"},
        "headers": {"content-type": "application/json", "host": "127.0.0.1"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {"method": "POST", "path": "/run", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench-cold-init",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def main() -> int:
    spawned_at = float(os.environ["NANOGRID_BENCH_SPAWNED_AT"])
    function_id = os.environ["NANOGRID_BENCH_FUNCTION_ID"]

    import_started = time.monotonic()
    from nanogrid_controller.app import lambda_handler

    request_started = time.monotonic()
    first = lambda_handler(_event(function_id), _Context())
    request_done = time.monotonic()
    cpu_done = time.process_time()
    second = lambda_handler(_event(function_id), _Context())
    second_done = time.monotonic()

    if first.get("statusCode") != 202 or second.get("statusCode") != 202:
        print(f"cold_init: expected 202 from POST /run?async=true, got {first.get('statusCode')} and "
              f"{second.get('statusCode')}: {first.get('body')}", file=sys.stderr)
        return 1
    print(json.dumps({
        "interpreter_ms": (_SCRIPT_STARTED - spawned_at) * 1000,
        "import_ms": (request_started - import_started) * 1000,
        "first_request_ms": (request_done - request_started) * 1000,
        "total_ms": (request_done - spawned_at) * 1000,
        "total_cpu_ms": cpu_done * 1000,
        "second_request_ms": (second_done - request_done) * 1000,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
