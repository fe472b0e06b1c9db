"""Raw Docker figures for the floor: a `docker run` and a `docker exec` of the bench function.

Both go through the Docker Engine API with the docker SDK, as the worker does, and run
`python3 main.py` in the runtime image with the function's code mounted read-only at /var/task.
Neither sets the worker's limits (memory, pids, CPU, read-only root, dropped capabilities), so
they show what Docker itself costs.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

import docker

TASK_MOUNT = "/var/task"
LABEL_BENCH = "org.nanogrid.bench"


def measure_docker_run(image: str, source: str, samples: int, run_label: str) -> list[float]:
    """Time create, start, wait and remove of a container that runs main.py; in milliseconds.
    Containers carry the label org.nanogrid.bench=run_label."""
    client = docker.from_env(timeout=60)
    latencies = []
    with tempfile.TemporaryDirectory(prefix="nanogrid-bench-docker-") as folder, closing(client):
        code_dir = _write_code(Path(folder), source)
        for _ in range(samples):
            started = time.perf_counter()
            container = client.containers.create(
                image, command=["python3", "main.py"], working_dir=TASK_MOUNT, network_mode="none",
                user="10001:10001", labels={LABEL_BENCH: run_label},
                volumes={str(code_dir): {"bind": TASK_MOUNT, "mode": "ro"}},
                name=f"ng-bench-{uuid.uuid4().hex[:12]}",
            )
            try:
                container.start()
                exit_code = container.wait(timeout=60)["StatusCode"]
            finally:
                container.remove(force=True)
            latencies.append((time.perf_counter() - started) * 1000)
            if exit_code != 0:
                raise RuntimeError(f"docker run of {image} python3 main.py exited with code {exit_code}")
    return latencies


def measure_docker_exec(image: str, source: str, samples: int, run_label: str) -> list[float]:
    """Time `docker exec python3 main.py` in one running container; in milliseconds."""
    client = docker.from_env(timeout=60)
    latencies = []
    with tempfile.TemporaryDirectory(prefix="nanogrid-bench-docker-") as folder, closing(client):
        code_dir = _write_code(Path(folder), source)
        container = client.containers.run(
            image, command=["sleep", "infinity"], working_dir=TASK_MOUNT, network_mode="none",
            user="10001:10001", labels={LABEL_BENCH: run_label}, detach=True,
            volumes={str(code_dir): {"bind": TASK_MOUNT, "mode": "ro"}},
            name=f"ng-bench-{uuid.uuid4().hex[:12]}",
        )
        try:
            for _ in range(samples):
                started = time.perf_counter()
                exit_code, _output = container.exec_run(["python3", "main.py"], workdir=TASK_MOUNT)
                latencies.append((time.perf_counter() - started) * 1000)
                if exit_code != 0:
                    raise RuntimeError(f"docker exec python3 main.py in {image} exited with code {exit_code}")
        finally:
            container.remove(force=True)
    return latencies


def _write_code(folder: Path, source: str) -> Path:
    folder.chmod(0o755)
    (folder / "main.py").write_text(source)
    (folder / "main.py").chmod(0o644)
    return folder
