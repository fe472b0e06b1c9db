"""`sam local invoke ControllerFunction -e events/run.json` against a real local stack.

SAM CLI (checked on 1.170) does not put its container on the host network for
`--docker-network host`: it only skips connecting the container to a network, so the container
stays on Docker's default bridge and cannot reach services bound to the host's 127.0.0.1. So the
test creates an internal Docker network of its own, passes it as --docker-network, and starts a
relay container on it under the name `stack`. The relay forwards stack:6379 (Redis) and
stack:5000 (moto) through Unix sockets in a shared folder to a relay thread in this process, which
connects to the local stack on 127.0.0.1. No traffic leaves the test's own network and loopback.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from nanogrid.stack import BUCKET_NAME, REGION, LocalStack, StackConfig, free_port, wait_until_healthy
from tests.conftest import skip_or_fail
from tests.sam.conftest import REPO_ROOT, SAM_ENV

pytestmark = pytest.mark.docker

LAMBDA_BASE_IMAGE = "public.ecr.aws/lambda/python:3.11-x86_64"
API_KEY = "local-api-key"  # the bearer token in events/*.json
RELAY_PORTS = {"redis": 6379, "moto": 5000}
RELAY_SCRIPT = """
import os, socket, sys, threading
def pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def serve(port, path):
    server = socket.create_server(("0.0.0.0", port))
    while True:
        client, _ = server.accept()
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(path)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(a, b), daemon=True).start()
for item in sys.argv[1:]:
    port, path = item.split("=")
    threading.Thread(target=serve, args=(int(port), path), daemon=True).start()
print("relay ready", flush=True)
threading.Event().wait()
"""


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class UnixToLoopbackRelay:
    """Accept on a Unix socket and forward each connection to 127.0.0.1:port."""

    def __init__(self, path: Path, port: int):
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(str(path))
        path.chmod(0o666)
        self._server.listen(16)
        self._port = port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._port))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    def close(self) -> None:
        self._server.close()


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture(scope="module")
def lambda_base_image(docker_client) -> str:
    if docker("image", "inspect", LAMBDA_BASE_IMAGE, check=False).returncode != 0:
        skip_or_fail(f"{LAMBDA_BASE_IMAGE} is not built; run scripts/build-lambda-base-image.sh")
    return LAMBDA_BASE_IMAGE


@pytest.fixture(scope="module")
def stack(tmp_path_factory, redis_server_binary, docker_client, runtime_image):
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(free_port())
    redis_port, moto_port, front_port = sorted(ports)
    config = StackConfig(
        state_dir=tmp_path_factory.mktemp("sam-stack"), redis_port=redis_port, moto_port=moto_port,
        front_port=front_port, worker_concurrency=2, api_key=API_KEY,
        runtime_images=f"python3.11={runtime_image}", extra_worker_env={"NANOGRID_POLL_WAIT_S": "1"},
    )
    local_stack = LocalStack(config)
    local_stack.start()
    try:
        wait_until_healthy(config.front_url)
        local_stack.register_examples()
        yield local_stack
    finally:
        local_stack.stop()


@pytest.fixture(scope="module")
def stack_network(stack, runtime_image, tmp_path_factory):
    """Yield the name of an internal Docker network on which `stack` relays to the local stack."""
    network = f"nanogrid-sam-{uuid.uuid4().hex[:8]}"
    socket_dir = tmp_path_factory.mktemp("relay")
    socket_dir.chmod(0o777)
    relays = [
        UnixToLoopbackRelay(socket_dir / "redis.sock", stack.config.redis_port),
        UnixToLoopbackRelay(socket_dir / "moto.sock", stack.config.moto_port),
    ]
    docker("network", "create", "--internal", network)
    container = f"{network}-relay"
    try:
        docker("run", "-d", "--rm", "--name", container, "--network", network, "--network-alias", "stack",
               "--user", "0", "-v", f"{socket_dir}:/relay", "--entrypoint", "python3", runtime_image,
               "-c", RELAY_SCRIPT, *(f"{port}=/relay/{name}.sock" for name, port in RELAY_PORTS.items()))
        deadline = time.monotonic() + 30
        while "relay ready" not in docker("logs", container, check=False).stdout:
            assert time.monotonic() < deadline, docker("logs", container, check=False).stderr
            time.sleep(0.2)
        yield network
    finally:
        docker("rm", "-f", container, check=False)
        docker("network", "rm", network, check=False)
        for relay in relays:
            relay.close()


def local_template(sam_build_dir: Path) -> Path:
    """Return a copy of the built template that also declares AWS_ENDPOINT_URL, because
    `sam local invoke --env-vars` sets only variables that the template declares, and the
    deployed function must not have it."""
    built = (sam_build_dir / "template.yaml").read_text()
    anchor = "POWERTOOLS_SERVICE_NAME: nanogrid-controller\n"
    indent = built.split(anchor)[0].rsplit("\n", 1)[1]
    assert anchor in built, "the built template no longer sets POWERTOOLS_SERVICE_NAME"
    patched = sam_build_dir / "template-local.yaml"
    patched.write_text(built.replace(anchor, f"{anchor}{indent}AWS_ENDPOINT_URL: ''\n", 1))
    return patched


def test_local_invoke_runs_hello(sam_bin, sam_build_dir, lambda_base_image, stack, stack_network, tmp_path):
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"ControllerFunction": {
        "NANOGRID_REDIS_URL": f"redis://stack:{RELAY_PORTS['redis']}/0",
        "NANOGRID_QUEUE_URL": stack.queue_url,
        "NANOGRID_CODE_BUCKET": BUCKET_NAME,
        "NANOGRID_API_KEY": API_KEY,
        "NANOGRID_ALLOW_ANONYMOUS": "false",
        "AWS_ENDPOINT_URL": f"http://stack:{RELAY_PORTS['moto']}",
    }}))
    started = time.monotonic()
    completed = subprocess.run(
        [sam_bin, "local", "invoke", "ControllerFunction", "--template-file", str(local_template(sam_build_dir)),
         "-e", str(REPO_ROOT / "events/run.json"), "--env-vars", str(env_vars),
         "--docker-network", stack_network, "--skip-pull-image", "--region", REGION,
         "--parameter-overrides", "VpcId=vpc-local PrivateSubnetIds=subnet-local"],
        cwd=REPO_ROOT, env=SAM_ENV, capture_output=True, text=True, timeout=300,
    )
    print(f"sam local invoke took {time.monotonic() - started:.1f} s")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    response = json.loads(completed.stdout.strip().splitlines()[-1])
    body = json.loads(response["body"])

    assert response["statusCode"] == 200, body
    assert body["status"] == "SUCCESS"
    assert body["stdout"] == "Hello from NanoGrid Plus!\n"
    assert body["functionId"] == "hello-python"
