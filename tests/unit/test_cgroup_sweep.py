"""Per-run parent cgroups that outlived their containers are swept, busy and fresh ones kept."""

import os
import time

from worker_agent.cgroups import sweep_stale_cgroups


def _make(folder, age_s):
    folder.mkdir(parents=True)
    past = time.time() - age_s
    os.utime(folder, (past, past))
    return folder


def test_sweep_removes_stale_keeps_fresh_and_busy(tmp_path):
    stale_v1 = _make(tmp_path / "memory" / "nanogrid" / "stale", age_s=120)
    stale_v2 = _make(tmp_path / "nanogrid" / "stale-v2", age_s=120)
    fresh = _make(tmp_path / "memory" / "nanogrid" / "fresh", age_s=5)
    busy = _make(tmp_path / "pids" / "nanogrid" / "busy", age_s=120)
    # A cgroup with a child cannot be removed; a non-empty folder plays that part here.
    (busy / "container").mkdir()
    os.utime(busy, (time.time() - 120, time.time() - 120))

    removed = sweep_stale_cgroups(min_age_s=60, root=tmp_path)

    assert removed == 2
    assert not stale_v1.exists()
    assert not stale_v2.exists()
    assert fresh.exists()
    assert busy.exists()
