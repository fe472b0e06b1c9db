"""Warm and prewarmed containers: resident runtimes that serve many runs of one function version.

A resident container runs runtimes/python_server.py, which connects to a Unix socket that the
worker listens on, loads the function once and forks a child per run. The pool keeps idle
containers per function version (warm) and started containers that hold no function yet, per
runtime (prewarmed). A container never serves two function versions. A run that times out,
runs out of memory or leaves a process behind gets its container discarded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from worker_agent.cgroups import RunCgroup, sweep_stale_cgroups
from worker_agent.errors import SandboxError
from worker_agent.sandbox import (
    IO_MOUNT,
    LABEL_MANAGED,
    CappedBuffer,
    remove_container,
    sandbox_options,
    SandboxOutcome,
    SandboxSpec,
)

logger = logging.getLogger(__name__)

LABEL_MODE = "org.nanogrid.mode"
CONTROL_SOCKET = "control.sock"
HEADER = struct.Struct(">cI")
# Time a new container has to connect back and a function has to load.
START_TIMEOUT_S = 15
LOAD_TIMEOUT_S = 30
# Seconds between two sweeps of per-run cgroups that outlived their containers.
CGROUP_SWEEP_INTERVAL_S = 60
# Largest frame the worker accepts; output frames are 64 KiB, the handler value at most 1 MiB.
MAX_FRAME_BYTES = 8 * 1024 * 1024


class ContainerBroken(Exception):
    """The resident runtime stopped responding or broke the frame protocol."""


@dataclass(frozen=True)
class PoolSettings:
    idle_s: float
    prewarm_per_runtime: int
    memory_budget_mb: int
    prewarm_memory_mb: int
    tmp_size_mb: int
    cpus: float
    pids_limit: int
    worker_labels: dict[str, str] = field(default_factory=dict)


class ResidentContainer:
    """One container running the resident runtime, and the socket it connected on."""

    def __init__(self, docker_client, work_dir: Path, image: str, runtime: str, command: list[str],
                 memory_mb: int, tmp_size_mb: int, settings: PoolSettings, cgroup_driver: str, cgroup_version: str):
        self.name = f"ng-{uuid.uuid4().hex[:16]}"
        self.image = image
        self.runtime = runtime
        self.memory_mb = memory_mb
        self.tmp_size_mb = tmp_size_mb
        self.version_id: str | None = None
        self.last_used = time.monotonic()
        self.runs = 0
        self._docker = docker_client
        self._host_dir = work_dir / self.name
        self._task_dir = self._host_dir / "task"
        self._io_dir = self._host_dir / "io"
        self._cgroup = RunCgroup(self.name, cgroup_driver, cgroup_version)
        self._container = None
        self._conn: socket.socket | None = None
        self._broken = False
        self._start(command, settings)

    @property
    def container_id(self) -> str:
        return self._container.id if self._container is not None else ""

    # -- lifecycle -------------------------------------------------------------------------

    def _start(self, command: list[str], settings: PoolSettings) -> None:
        self._task_dir.mkdir(parents=True)
        self._io_dir.mkdir()
        for folder in (self._host_dir, self._task_dir, self._io_dir):
            folder.chmod(0o755)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socket_path = self._io_dir / CONTROL_SOCKET
        _bind_unix(listener, socket_path)
        socket_path.chmod(0o666)
        listener.listen(1)
        listener.settimeout(START_TIMEOUT_S)
        try:
            self._container = self._docker.containers.create(
                self.image,
                command=command,
                environment={"HOME": "/tmp", "NANOGRID_CONTROL_SOCKET": f"{IO_MOUNT}/{CONTROL_SOCKET}"},
                labels={LABEL_MANAGED: "true", LABEL_MODE: "resident", **settings.worker_labels},
                # The runtime exits when the worker's socket closes, so a worker that dies
                # leaves no container behind: Docker removes it on exit.
                auto_remove=True,
                **sandbox_options(
                    memory_mb=self.memory_mb,
                    pids_limit=settings.pids_limit,
                    cpus=settings.cpus,
                    tmp_size_mb=self.tmp_size_mb,
                    code_dir=self._task_dir,
                    io_dir=self._io_dir,
                    bootstrap_dir=Path(__file__).parent / "runtimes",
                    cgroup_parent=self._cgroup.docker_parent,
                ),
            )
            self._container.start()
            self._conn, _ = listener.accept()
        except docker.errors.ImageNotFound as exc:
            self.discard()
            raise SandboxError(self.image, "image not found; build it with scripts/build-runtime-image.sh", retryable=False) from exc
        except (docker.errors.APIError, requests.exceptions.RequestException, OSError) as exc:
            self.discard()
            raise SandboxError(self.image, f"resident container did not start: {exc}") from exc
        finally:
            listener.close()
        self._conn.settimeout(START_TIMEOUT_S)
        self._expect(b"H")

    def bind(self, version_id: str, code_dir: Path, memory_mb: int) -> None:
        """Dedicate this container to one function version: place its code and load it."""
        for source in code_dir.rglob("*"):
            target = self._task_dir / source.relative_to(code_dir)
            if source.is_dir():
                target.mkdir(exist_ok=True)
                target.chmod(0o755)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                # Cached code files are never changed in place, so a hard link is a safe copy.
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copy2(source, target)
        if memory_mb != self.memory_mb:
            try:
                self._container.update(mem_limit=f"{memory_mb}m", memswap_limit=f"{memory_mb}m")
            except docker.errors.APIError as exc:
                raise ContainerBroken(f"cannot set the memory limit to {memory_mb} MB: {exc}") from exc
            self.memory_mb = memory_mb
        self.version_id = version_id
        self._conn.settimeout(LOAD_TIMEOUT_S)
        self._send(b"L", b"{}")
        self._expect(b"D")

    def run(self, spec: SandboxSpec, event_json: bytes) -> SandboxOutcome:
        """Serve one run. The caller keeps the container for another run only when ``reusable()``
        returns True."""
        self.runs += 1
        stdout = CappedBuffer(spec.max_output_bytes)
        stderr = CappedBuffer(spec.max_output_bytes)
        report = CappedBuffer(spec.max_report_bytes)
        oom_before = self._oom_events()
        self._cgroup.reset_peak_memory(self.container_id)

        request = {
            "event": json.loads(event_json),
            "env": spec.env,
            "deadlineMs": int(spec.env.get("NANOGRID_DEADLINE_MS", "0")),
        }
        started = time.monotonic()
        deadline = started + spec.timeout_ms / 1000
        exit_code = None
        timed_out = False
        try:
            self._send(b"R", json.dumps(request).encode("utf-8"))
            exit_code = self._collect(deadline, stdout, stderr, report)
        except TimeoutError:
            timed_out = True
        except ContainerBroken as exc:
            self._broken = True
            logger.warning("resident container broke during a run", extra={"containerId": self.container_id[:12], "error": str(exc)})
        duration_ms = int((time.monotonic() - started) * 1000)

        peak_memory_bytes = self._cgroup.container_peak_memory_bytes(self.container_id)
        if timed_out:
            # A run past its timeout is stopped by removing its whole container.
            self.discard()
        oom_kills = self._oom_events() - oom_before if not timed_out else 0
        state_oom = self._state_oom_killed() if exit_code is None and not timed_out else False
        return SandboxOutcome(
            exit_code=137 if timed_out else exit_code,
            timed_out=timed_out,
            oom_killed=state_oom or oom_kills > 0,
            stdout=stdout.getvalue(),
            stderr=stderr.getvalue(),
            stdout_truncated=stdout.truncated,
            stderr_truncated=stderr.truncated,
            report=None if report.truncated or not report.getvalue() else report.getvalue(),
            duration_ms=min(duration_ms, spec.timeout_ms) if timed_out else duration_ms,
            peak_memory_bytes=peak_memory_bytes,
            container_id=self.container_id,
            oom_kill_count=max(0, oom_kills),
        )

    def reusable(self) -> bool:
        """Return whether the container may serve another run: it is alive, and no process is left
        in it but the resident runtime."""
        if self._container is None or self._conn is None or self._broken:
            return False
        processes = self._cgroup.container_process_count(self.container_id)
        # Without a readable cgroup, rely on the runtime's own sweep of leftover processes.
        return processes is None or processes == 1

    def discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._container is not None:
            remove_container(self._container)
            self._container = None
        self._cgroup.remove()
        shutil.rmtree(self._host_dir, ignore_errors=True)

    # -- frames ----------------------------------------------------------------------------

    def _collect(self, deadline: float, stdout: CappedBuffer, stderr: CappedBuffer, report: CappedBuffer) -> int:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._conn.settimeout(remaining)
            kind, payload = self._receive()
            if kind == b"O":
                stdout.write(payload)
            elif kind == b"E":
                stderr.write(payload)
            elif kind == b"V":
                report.write(payload)
            elif kind == b"X":
                return int(json.loads(payload)["exitCode"])
            else:
                raise ContainerBroken(f"unexpected frame {kind!r}")

    def _send(self, kind: bytes, payload: bytes) -> None:
        try:
            self._conn.sendall(HEADER.pack(kind, len(payload)) + payload)
        except OSError as exc:
            raise ContainerBroken(f"send failed: {exc}") from exc

    def _receive(self) -> tuple[bytes, bytes]:
        kind, length = HEADER.unpack(self._receive_exact(HEADER.size))
        if length > MAX_FRAME_BYTES:
            raise ContainerBroken(f"frame of {length} bytes is over the limit")
        return kind, self._receive_exact(length)

    def _receive_exact(self, size: int) -> bytes:
        chunks = []
        while size:
            try:
                chunk = self._conn.recv(min(size, 1 << 20))
            except socket.timeout:
                raise TimeoutError from None
            except OSError as exc:
                raise ContainerBroken(f"receive failed: {exc}") from exc
            if not chunk:
                raise ContainerBroken("the resident runtime closed the socket")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _expect(self, kind: bytes) -> bytes:
        try:
            got, payload = self._receive()
        except TimeoutError:
            raise ContainerBroken(f"no {kind!r} frame in time") from None
        if got != kind:
            raise ContainerBroken(f"expected frame {kind!r}, got {got!r}")
        return payload

    def _oom_events(self) -> int:
        return self._cgroup.container_oom_kill_count(self.container_id)

    def _state_oom_killed(self) -> bool:
        try:
            self._container.reload()
            return bool(self._container.attrs.get("State", {}).get("OOMKilled"))
        except (docker.errors.APIError, requests.exceptions.RequestException, AttributeError):
            return False


def _bind_unix(listener: socket.socket, path: Path) -> None:
    """Bind a Unix socket at path, however long. A socket address has room for at most 107 bytes, so
    a deep cache folder is reached through /proc/self/fd, which names it in a few bytes."""
    folder_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        listener.bind(f"/proc/self/fd/{folder_fd}/{path.name}")
    finally:
        os.close(folder_fd)


class ContainerPool:
    """Warm containers per function version and prewarmed containers per runtime."""

    def __init__(self, docker_client, work_dir: Path, settings: PoolSettings, images: dict[str, str],
                 commands: dict[str, list[str]]):
        self._docker = docker_client
        self._work_dir = work_dir
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self._settings = settings
        self._images = images
        self._commands = commands
        info = docker_client.info()
        self._cgroup_driver = info.get("CgroupDriver", "")
        self._cgroup_version = str(info.get("CgroupVersion", "1"))
        self._lock = threading.Lock()
        self._idle: dict[str, list[ResidentContainer]] = {}
        self._prewarmed: dict[str, list[ResidentContainer]] = {}
        self._busy: set[ResidentContainer] = set()
        self._closed = threading.Event()
        self.metrics = {"warmHits": 0, "prewarmHits": 0, "coldStarts": 0, "evictions": 0, "expired": 0, "discarded": 0}
        self._maintainer = threading.Thread(target=self._maintain, daemon=True, name="pool")

    def start(self) -> None:
        """Start expiring idle containers and prewarming new ones."""
        self._maintainer.start()

    def run(self, spec: SandboxSpec, version_id: str, runtime: str, event_json: bytes) -> tuple[SandboxOutcome, str]:
        """Run on a warm, prewarmed or new container; return the outcome and which of the three."""
        container, start_mode = self._acquire(spec, version_id, runtime)
        logger.info("run in resident container", extra={"containerId": container.container_id[:12], "startMode": start_mode})
        try:
            outcome = container.run(spec, event_json)
        except BaseException:
            self._drop(container)
            raise
        keep = not (outcome.timed_out or outcome.oom_killed) and container.reusable()
        if keep:
            self._release(container)
        else:
            self._drop(container)
        return outcome, start_mode

    def close(self) -> None:
        self._closed.set()
        # A prewarm in progress discards its container once it finds _closed set. Wait for it, because
        # a daemon thread cut off at process exit would leave that container behind.
        if self._maintainer.is_alive():
            self._maintainer.join()
        with self._lock:
            containers = [c for group in (*self._idle.values(), *self._prewarmed.values()) for c in group]
            containers += list(self._busy)
            self._idle.clear()
            self._prewarmed.clear()
            self._busy.clear()
        for container in containers:
            container.discard()

    # -- acquire and release ---------------------------------------------------------------

    def _acquire(self, spec: SandboxSpec, version_id: str, runtime: str) -> tuple[ResidentContainer, str]:
        with self._lock:
            idle = self._idle.get(version_id)
            if idle:
                container = idle.pop()
                self._busy.add(container)
                self.metrics["warmHits"] += 1
                return container, "warm"
            prewarmed = self._prewarmed.get(runtime) or []
            # A prewarmed container's /tmp was sized before its function was known; it only
            # fits functions whose memory limit leaves room for it.
            fits = spec.memory_mb >= 2 * self._settings.tmp_size_mb
            container = prewarmed.pop() if prewarmed and fits else None
            if container is not None:
                self._busy.add(container)
            self._make_room(spec.memory_mb - (container.memory_mb if container else 0))

        if container is not None:
            try:
                container.bind(version_id, spec.code_dir, spec.memory_mb)
                with self._lock:
                    self.metrics["prewarmHits"] += 1
                return container, "prewarmed"
            except ContainerBroken as exc:
                logger.warning("prewarmed container failed to load the function; starting a new one", extra={"error": str(exc)})
                self._drop(container)

        container = self._new_container(runtime, spec.memory_mb, max(1, min(self._settings.tmp_size_mb, spec.memory_mb // 2)))
        with self._lock:
            self._busy.add(container)
            self.metrics["coldStarts"] += 1
        try:
            container.bind(version_id, spec.code_dir, spec.memory_mb)
        except ContainerBroken as exc:
            self._drop(container)
            raise SandboxError(container.image, f"function failed to load in a new container: {exc}") from exc
        return container, "cold"

    def _release(self, container: ResidentContainer) -> None:
        container.last_used = time.monotonic()
        with self._lock:
            self._busy.discard(container)
            if self._closed.is_set() or self._settings.idle_s <= 0:
                pass
            else:
                self._idle.setdefault(container.version_id, []).append(container)
                return
        container.discard()

    def _drop(self, container: ResidentContainer) -> None:
        with self._lock:
            self._busy.discard(container)
            self.metrics["discarded"] += 1
        container.discard()

    def _new_container(self, runtime: str, memory_mb: int, tmp_size_mb: int) -> ResidentContainer:
        image = self._images.get(runtime)
        command = self._commands.get(runtime)
        if image is None or command is None:
            raise SandboxError(image or "-", f"runtime {runtime!r} is not configured on this worker", retryable=False)
        return ResidentContainer(
            self._docker, self._work_dir, image, runtime, command, memory_mb, tmp_size_mb,
            self._settings, self._cgroup_driver, self._cgroup_version,
        )

    # -- budget, expiry and prewarming ------------------------------------------------------

    def _memory_in_use_mb(self) -> int:
        groups = (*self._idle.values(), *self._prewarmed.values(), self._busy)
        return sum(container.memory_mb for group in groups for container in group)

    def _make_room(self, extra_mb: int) -> None:
        """Evict least recently used idle containers until extra_mb fits the memory budget.
        Called with the lock held; busy containers are never evicted."""
        while self._memory_in_use_mb() + extra_mb > self._settings.memory_budget_mb:
            candidates = [c for group in (*self._idle.values(), *self._prewarmed.values()) for c in group]
            if not candidates:
                return
            victim = min(candidates, key=lambda c: c.last_used)
            self._remove_idle(victim)
            self.metrics["evictions"] += 1
            threading.Thread(target=victim.discard, daemon=True).start()

    def _remove_idle(self, container: ResidentContainer) -> None:
        for groups in (self._idle, self._prewarmed):
            for key, group in list(groups.items()):
                if container in group:
                    group.remove(container)
                    if not group:
                        del groups[key]

    def _maintain(self) -> None:
        ticks = 0
        while not self._closed.wait(1.0):
            self._expire_idle()
            self._refill_prewarmed()
            ticks += 1
            if ticks % CGROUP_SWEEP_INTERVAL_S == 0:
                sweep_stale_cgroups()

    def _expire_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [c for group in self._idle.values() for c in group if now - c.last_used > self._settings.idle_s]
            for container in expired:
                self._remove_idle(container)
                self.metrics["expired"] += 1
        for container in expired:
            container.discard()

    def _refill_prewarmed(self) -> None:
        for runtime in self._images:
            with self._lock:
                missing = self._settings.prewarm_per_runtime - len(self._prewarmed.get(runtime, []))
                fits = self._memory_in_use_mb() + self._settings.prewarm_memory_mb <= self._settings.memory_budget_mb
            if missing <= 0 or not fits or self._closed.is_set():
                continue
            try:
                container = self._new_container(runtime, self._settings.prewarm_memory_mb, self._settings.tmp_size_mb)
            except SandboxError as exc:
                logger.warning("cannot prewarm a container", extra={"runtime": runtime, "error": str(exc)})
                continue
            with self._lock:
                if self._closed.is_set():
                    container.discard()
                    return
                self._prewarmed.setdefault(runtime, []).append(container)
