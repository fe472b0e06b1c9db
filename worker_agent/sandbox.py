"""Run one function in a new Docker container under memory, time, process and network limits.

The steps follow `docker run` by hand: create, attach, start, wait (kill at the deadline),
inspect, collect, remove. The worker enforces the wall-clock timeout itself because Docker has
none for a running container.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from worker_agent.cgroups import RunCgroup
from worker_agent.errors import SandboxError

logger = logging.getLogger(__name__)

LABEL_MANAGED = "org.nanogrid.managed"
LABEL_WORKER_ID = "org.nanogrid.worker-id"
LABEL_REQUEST_ID = "org.nanogrid.request-id"
LABEL_FUNCTION_ID = "org.nanogrid.function-id"

# Paths inside the container of its code, its event and the FIFO for a handler's return value.
TASK_MOUNT = "/var/task"
IO_MOUNT = "/var/nanogrid/io"
BOOTSTRAP_MOUNT = "/opt/nanogrid"
EVENT_FILE = "event.json"
REPORT_FIFO = "report"

# Seconds to wait for Docker to reap a killed container and for the output stream to close.
KILL_GRACE_S = 10


@dataclass(frozen=True)
class SandboxSpec:
    """Function code, image and command to run, with the limits to run them under."""

    image: str
    command: list[str]
    code_dir: Path
    bootstrap_dir: Path
    memory_mb: int
    timeout_ms: int
    pids_limit: int
    tmp_size_mb: int
    cpus: float
    max_output_bytes: int
    max_report_bytes: int
    run_as_user: str = "10001:10001"
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxOutcome:
    """Outcome of one container run: exit, output, duration and peak memory."""

    exit_code: int | None
    timed_out: bool
    oom_killed: bool
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    report: bytes | None
    duration_ms: int
    peak_memory_bytes: int | None
    container_id: str
    oom_kill_count: int = 0


def sandbox_options(
    *,
    memory_mb: int,
    pids_limit: int,
    cpus: float,
    tmp_size_mb: int,
    code_dir: Path,
    io_dir: Path,
    bootstrap_dir: Path,
    cgroup_parent: str | None,
    run_as_user: str = "10001:10001",
) -> dict:
    """Keyword arguments for `containers.create` that every function container gets, fresh or
    resident: the limits, the isolation and the three read-only mounts."""
    memory = f"{memory_mb}m"
    return {
        "user": run_as_user,
        "working_dir": TASK_MOUNT,
        "network_mode": "none",
        "mem_limit": memory,
        # Equal to the memory limit, so swap can never stretch it.
        "memswap_limit": memory,
        "pids_limit": pids_limit,
        "nano_cpus": int(cpus * 1_000_000_000),
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={tmp_size_mb}m,mode=1777"},
        "volumes": {
            str(code_dir): {"bind": TASK_MOUNT, "mode": "ro"},
            str(io_dir): {"bind": IO_MOUNT, "mode": "ro"},
            str(bootstrap_dir): {"bind": BOOTSTRAP_MOUNT, "mode": "ro"},
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "cgroup_parent": cgroup_parent,
        # Output travels over the attached stream or the control socket; a log driver would
        # copy it to disk as well.
        "log_config": {"type": "none"},
    }


class CappedBuffer:
    """Keeps the first ``limit`` bytes written to it and counts the rest."""

    def __init__(self, limit: int):
        self._limit = limit
        self._chunks: list[bytes] = []
        self._kept_bytes = 0
        self.total_bytes = 0

    def write(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        room = self._limit - self._kept_bytes
        if room > 0:
            piece = chunk[:room]
            self._chunks.append(piece)
            self._kept_bytes += len(piece)

    @property
    def truncated(self) -> bool:
        return self.total_bytes > self._limit

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)


class Sandbox:
    def __init__(self, docker_client: docker.DockerClient, work_dir: Path):
        self._docker = docker_client
        self._work_dir = work_dir
        self._work_dir.mkdir(parents=True, exist_ok=True)
        info = docker_client.info()
        self._cgroup_driver = info.get("CgroupDriver", "")
        self._cgroup_version = str(info.get("CgroupVersion", "1"))

    def run(self, spec: SandboxSpec, event_json: bytes) -> SandboxOutcome:
        io_dir = self._prepare_io_dir(event_json)
        cgroup = RunCgroup(uuid.uuid4().hex, self._cgroup_driver, self._cgroup_version)
        container = self._create(spec, io_dir, cgroup)
        try:
            return self._run_container(container, spec, io_dir, cgroup)
        finally:
            self._remove(container)
            cgroup.remove()
            shutil.rmtree(io_dir, ignore_errors=True)

    def _run_container(self, container, spec: SandboxSpec, io_dir: Path, cgroup: RunCgroup) -> SandboxOutcome:
        report = FifoReader(io_dir / REPORT_FIFO, spec.max_report_bytes)
        output = OutputCollector(self._docker, container.id, spec.max_output_bytes)

        started = time.monotonic()
        try:
            container.start()
        except docker.errors.APIError as exc:
            report.finish()
            raise SandboxError(spec.image, f"start failed: {exc.explanation or exc}") from exc
        logger.info("container started", extra={"containerId": container.id[:12]})

        exit_code, timed_out = self._wait(container, spec.timeout_ms)
        duration_ms = int((time.monotonic() - started) * 1000)

        state = self._inspect_state(container, spec.image)
        if exit_code is None:
            exit_code = state.get("ExitCode")
        output.join(KILL_GRACE_S)
        report_bytes = report.finish()

        return SandboxOutcome(
            exit_code=exit_code,
            timed_out=timed_out,
            oom_killed=bool(state.get("OOMKilled")),
            stdout=output.stdout.getvalue(),
            stderr=output.stderr.getvalue(),
            stdout_truncated=output.stdout.truncated,
            stderr_truncated=output.stderr.truncated,
            report=report_bytes,
            duration_ms=min(duration_ms, spec.timeout_ms) if timed_out else duration_ms,
            peak_memory_bytes=cgroup.peak_memory_bytes(),
            oom_kill_count=cgroup.oom_kill_count(),
            container_id=container.id,
        )

    def _prepare_io_dir(self, event_json: bytes) -> Path:
        io_dir = Path(tempfile.mkdtemp(prefix="run-", dir=self._work_dir))
        io_dir.chmod(0o755)
        event_path = io_dir / EVENT_FILE
        event_path.write_bytes(event_json)
        event_path.chmod(0o644)
        # A FIFO, not a file: the function can send its return value through it but cannot
        # fill the worker's disk, because a FIFO stores nothing. The folder itself is mounted
        # read-only; Linux still lets a process open a FIFO on a read-only mount for writing.
        fifo_path = io_dir / REPORT_FIFO
        os.mkfifo(fifo_path)
        fifo_path.chmod(0o622)
        return io_dir

    def _create(self, spec: SandboxSpec, io_dir: Path, cgroup: RunCgroup):
        try:
            return self._docker.containers.create(
                spec.image,
                command=spec.command,
                environment=spec.env,
                labels={LABEL_MANAGED: "true", **spec.labels},
                stdin_open=False,
                tty=False,
                **sandbox_options(
                    memory_mb=spec.memory_mb,
                    pids_limit=spec.pids_limit,
                    cpus=spec.cpus,
                    tmp_size_mb=spec.tmp_size_mb,
                    code_dir=spec.code_dir,
                    io_dir=io_dir,
                    bootstrap_dir=spec.bootstrap_dir,
                    cgroup_parent=cgroup.docker_parent,
                    run_as_user=spec.run_as_user,
                ),
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                spec.image,
                "image not found; build it with scripts/build-runtime-image.sh or set NANOGRID_RUNTIME_IMAGES",
                retryable=False,
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxError(spec.image, f"create failed: {exc.explanation or exc}") from exc
        except requests.exceptions.RequestException as exc:
            raise SandboxError(spec.image, f"Docker engine not reachable: {exc}") from exc

    def _wait(self, container, timeout_ms: int) -> tuple[int | None, bool]:
        """Wait for the container to exit; kill it at the timeout. Return (exit code, timed out)."""
        try:
            status = container.wait(timeout=timeout_ms / 1000)
            return status.get("StatusCode"), False
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            pass

        logger.info("run timed out, killing container", extra={"timeoutMs": timeout_ms, "containerId": container.id[:12]})
        try:
            container.kill()
        except docker.errors.APIError as exc:
            # A container that exited between the timeout and the kill returns 409.
            logger.info("kill after timeout failed", extra={"error": str(exc)})
        try:
            status = container.wait(timeout=KILL_GRACE_S)
            return status.get("StatusCode"), True
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            logger.warning("container did not exit after kill", extra={"containerId": container.id[:12]})
            return None, True

    def _inspect_state(self, container, image: str) -> dict:
        try:
            container.reload()
        except docker.errors.APIError as exc:
            raise SandboxError(image, f"inspect failed: {exc.explanation or exc}") from exc
        return container.attrs.get("State", {})

    def _remove(self, container) -> None:
        remove_container(container)


def remove_container(container) -> None:
    """Remove a container, treating "already gone" and "removal already in progress" (409, as
    after auto_remove) as done; log other failures instead of raising."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:
            logger.warning("cannot remove container", extra={"containerId": container.id[:12], "error": str(exc)})
    except requests.exceptions.RequestException as exc:
        logger.warning("cannot remove container", extra={"containerId": container.id[:12], "error": str(exc)})


class OutputCollector:
    """Reads a container's stdout and stderr from its attach stream, in a thread of its own."""

    def __init__(self, docker_client: docker.DockerClient, container_id: str, max_bytes: int):
        self.stdout = CappedBuffer(max_bytes)
        self.stderr = CappedBuffer(max_bytes)
        # Attach before start, so not a byte of output is missed. The request is sent now;
        # the generator only reads the stream.
        stream = docker_client.api.attach(container_id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        try:
            for out_chunk, err_chunk in stream:
                if out_chunk:
                    self.stdout.write(out_chunk)
                if err_chunk:
                    self.stderr.write(err_chunk)
        except (requests.exceptions.RequestException, OSError) as exc:
            logger.warning("output stream broke", extra={"error": str(exc)})

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


class FifoReader:
    """Reads what the container writes to the report FIFO, up to a byte limit."""

    def __init__(self, path: Path, max_bytes: int):
        self._buffer = CappedBuffer(max_bytes)
        # Open the read end without blocking, then hold a write end ourselves: the reader sees
        # end-of-file only after finish() closes it, however often the container opens and
        # closes its own write end.
        self._read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._write_fd = os.open(path, os.O_WRONLY)
        os.set_blocking(self._read_fd, True)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while chunk := os.read(self._read_fd, 65536):
            self._buffer.write(chunk)

    def finish(self) -> bytes | None:
        """Close our write end, wait for the reader, and return the report (None if empty or
        over the limit)."""
        self.close()
        self._thread.join(KILL_GRACE_S)
        os.close(self._read_fd)
        data = self._buffer.getvalue()
        if not data or self._buffer.truncated:
            return None
        return data

    def close(self) -> None:
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
