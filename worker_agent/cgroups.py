"""Per-run parent cgroups, which let the worker read a container's peak memory after it exits.

Docker removes a container's own cgroup when its process exits, taking the peak-usage counter
with it. Each run's container is created under a parent cgroup of its own (`docker create
--cgroup-parent`). The kernel charges the child's memory to that parent too, and the parent's
high-water mark (`memory.max_usage_in_bytes` on cgroup v1, `memory.peak` on v2, Linux 5.19 and
later) stays readable until the worker removes it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT_NAME = "nanogrid"


class RunCgroup:
    def __init__(self, run_name: str, driver: str, version: str, root: Path = CGROUP_ROOT):
        self._name = run_name
        self._driver = driver
        self._version = version
        self._root = root
        self._peak_fd: int | None = None

    @property
    def docker_parent(self) -> str | None:
        """Value for Docker's cgroup_parent, or None where the layout is not supported."""
        if self._driver == "cgroupfs":
            return f"/{PARENT_NAME}/{self._name}"
        return None

    def peak_memory_bytes(self) -> int | None:
        path = self._peak_file()
        if path is None:
            return None
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            logger.warning("cannot read peak memory", extra={"path": str(path)})
            return None

    def oom_kill_count(self) -> int:
        """OOM kills charged to the parent cgroup. On cgroup v2 memory.events counts kills in
        every descendant, so a child process killed while the main process exits 0 shows here.
        On v1 the counter stays in the container's own cgroup, which is gone after exit, and the
        caller relies on Docker's State.OOMKilled, which Docker 20.10 sets for such kills too."""
        if self.docker_parent is None or self._version == "1":
            return 0
        return _read_oom_kill(self._root / PARENT_NAME / self._name / "memory.events")

    # -- a running container's own cgroup, for resident containers that serve many runs ----

    def reset_peak_memory(self, container_id: str) -> None:
        """Start a new high-water mark, so the next read covers one run only. cgroup v1 resets
        on a write to memory.max_usage_in_bytes. On v2, Linux 6.12 and later reset memory.peak
        only for the file descriptor that wrote it, so that descriptor is kept for the read."""
        if self.docker_parent is None:
            return
        if self._version == "1":
            _write(self._root / "memory" / PARENT_NAME / self._name / "memory.max_usage_in_bytes", "0")
            return
        self._close_peak_fd()
        try:
            self._peak_fd = os.open(self._root / PARENT_NAME / self._name / "memory.peak", os.O_RDWR)
            os.write(self._peak_fd, b"reset\n")
        except OSError:
            # NOTE: kernels before 6.12 cannot reset memory.peak; a warm run then reports the
            # container's peak since it started.
            self._close_peak_fd()

    def container_peak_memory_bytes(self, container_id: str) -> int | None:
        if self._peak_fd is not None:
            try:
                os.lseek(self._peak_fd, 0, os.SEEK_SET)
                return int(os.read(self._peak_fd, 64).decode().strip())
            except (OSError, ValueError):
                return None
            finally:
                self._close_peak_fd()
        return self.peak_memory_bytes()

    def container_oom_kill_count(self, container_id: str) -> int:
        """OOM kills so far in the container's own cgroup (v1) or the parent (v2)."""
        if self.docker_parent is None:
            return 0
        if self._version == "1":
            path = self._root / "memory" / PARENT_NAME / self._name / container_id / "memory.oom_control"
        else:
            path = self._root / PARENT_NAME / self._name / "memory.events"
        return _read_oom_kill(path)

    def container_process_count(self, container_id: str) -> int | None:
        if self.docker_parent is None:
            return None
        if self._version == "1":
            path = self._root / "pids" / PARENT_NAME / self._name / container_id / "pids.current"
        else:
            path = self._root / PARENT_NAME / self._name / "pids.current"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _close_peak_fd(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None

    def remove(self) -> None:
        """Remove the parent cgroup in every hierarchy Docker created it in. Call after the
        container is removed, since a cgroup with members cannot be removed."""
        if self.docker_parent is None:
            return
        for folder in self._folders():
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot remove cgroup", extra={"path": str(folder), "error": str(exc)})

    def _peak_file(self) -> Path | None:
        if self.docker_parent is None:
            return None
        if self._version == "1":
            return self._root / "memory" / PARENT_NAME / self._name / "memory.max_usage_in_bytes"
        return self._root / PARENT_NAME / self._name / "memory.peak"

    def _folders(self) -> list[Path]:
        if self._version != "1":
            return [self._root / PARENT_NAME / self._name]
        folders = []
        for hierarchy in sorted(os.listdir(self._root)):
            folder = self._root / hierarchy / PARENT_NAME / self._name
            if folder.is_dir():
                folders.append(folder)
        return folders


def _read_oom_kill(path: Path) -> int:
    """Return the oom_kill counter of a memory.events (v2) or memory.oom_control (v1) file; 0 when the
    file cannot be read, as when its cgroup is gone."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        logger.warning("cannot write cgroup file", extra={"path": str(path), "error": str(exc)})


def sweep_stale_cgroups(min_age_s: float = 60, root: Path = CGROUP_ROOT) -> int:
    """Remove per-run parent cgroups that no container uses any more; return how many.

    A parent outlives its container when the worker dies, or when Docker was still removing an
    auto-removed container at the moment the worker tried. The kernel refuses to remove a cgroup
    that still has processes or children, so a busy one stays. A parent younger than min_age_s
    may be one that Docker has just made for a container it is starting, so it is left alone.
    """
    import time

    removed = 0
    now = time.time()
    for parent in sorted(root.glob(f"*/{PARENT_NAME}/*")) + sorted(root.glob(f"{PARENT_NAME}/*")):
        try:
            if not parent.is_dir() or now - parent.stat().st_mtime < min_age_s:
                continue
            parent.rmdir()
            removed += 1
        except OSError:
            continue
    return removed
