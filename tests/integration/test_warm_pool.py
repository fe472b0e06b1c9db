"""Pool policy of warm containers on the real Docker engine: reuse per version, LRU eviction by
memory budget, idle expiry, prewarm hits and the metrics that count them."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from worker_agent.runner import BOOTSTRAP_DIR, RUNTIME_COMMANDS
from worker_agent.sandbox import LABEL_WORKER_ID, SandboxSpec
from worker_agent.warm import ContainerPool, PoolSettings

pytestmark = pytest.mark.docker

HANDLER = "import os\n\ndef handler(event, context):\n    return os.getpid()\n"


@pytest.fixture
def make_pool(docker_client, runtime_image, worker_cache_dir):
    pools = []

    def make(**overrides) -> tuple[ContainerPool, str]:
        worker_id = f"pool-test-{uuid.uuid4().hex[:8]}"
        values = dict(idle_s=300, prewarm_per_runtime=0, memory_budget_mb=256, prewarm_memory_mb=128,
                      tmp_size_mb=16, cpus=1.0, pids_limit=64, worker_labels={LABEL_WORKER_ID: worker_id})
        values.update(overrides)
        commands = {name: runtime.resident_command for name, runtime in RUNTIME_COMMANDS.items()}
        pool = ContainerPool(docker_client, worker_cache_dir / worker_id, PoolSettings(**values),
                             {"python3.11": runtime_image}, commands)
        pools.append(pool)
        return pool, worker_id

    yield make
    for pool in pools:
        pool.close()


@pytest.fixture
def code_dir(tmp_path):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "main.py").write_text(HANDLER)
    folder.chmod(0o755)
    (folder / "main.py").chmod(0o644)
    return folder


def spec_for(code_dir, image, memory_mb=128) -> SandboxSpec:
    return SandboxSpec(
        image=image,
        command=RUNTIME_COMMANDS["python3.11"].command,
        code_dir=code_dir,
        bootstrap_dir=BOOTSTRAP_DIR,
        memory_mb=memory_mb,
        timeout_ms=10_000,
        pids_limit=64,
        tmp_size_mb=16,
        cpus=1.0,
        max_output_bytes=64 * 1024,
        max_report_bytes=64 * 1024,
        env={"NANOGRID_DEADLINE_MS": str(int(time.time() * 1000) + 10_000)},
    )


def run(pool, code_dir, image, version_id, memory_mb=128):
    outcome, mode = pool.run(spec_for(code_dir, image, memory_mb), version_id, "python3.11", b"{}")
    assert outcome.exit_code == 0, outcome.stderr
    return json.loads(outcome.report), mode


def test_pool_reuses_container_per_version(make_pool, code_dir, runtime_image):
    pool, _ = make_pool()

    first_pid, first_mode = run(pool, code_dir, runtime_image, "a" * 64)
    second_pid, second_mode = run(pool, code_dir, runtime_image, "a" * 64)
    other_pid, other_mode = run(pool, code_dir, runtime_image, "b" * 64)

    assert (first_mode, second_mode, other_mode) == ("cold", "warm", "cold")
    # Each run is a fresh fork of the loaded function, so the pids differ even when warm.
    assert first_pid != second_pid
    assert pool.metrics["warmHits"] == 1
    assert pool.metrics["coldStarts"] == 2


def test_pool_evicts_least_recently_used(make_pool, code_dir, runtime_image):
    pool, _ = make_pool(memory_budget_mb=256)

    run(pool, code_dir, runtime_image, "a" * 64)
    run(pool, code_dir, runtime_image, "b" * 64)
    run(pool, code_dir, runtime_image, "a" * 64)
    # A third version of 128 MB does not fit a 256 MB budget: "b", used least recently, goes.
    run(pool, code_dir, runtime_image, "c" * 64)
    _, mode_a = run(pool, code_dir, runtime_image, "a" * 64)

    assert pool.metrics["evictions"] == 1
    assert mode_a == "warm"
    _, mode_b = run(pool, code_dir, runtime_image, "b" * 64)
    assert mode_b == "cold"


def test_pool_expires_idle_containers(make_pool, code_dir, runtime_image):
    pool, _ = make_pool(idle_s=1)
    pool.start()

    run(pool, code_dir, runtime_image, "a" * 64)
    deadline = time.monotonic() + 10
    while pool.metrics["expired"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    _, mode = run(pool, code_dir, runtime_image, "a" * 64)

    assert pool.metrics["expired"] == 1
    assert mode == "cold"


def test_pool_prewarmed_container_takes_first_run(make_pool, code_dir, runtime_image):
    pool, _ = make_pool(prewarm_per_runtime=1, memory_budget_mb=512)
    pool.start()
    deadline = time.monotonic() + 15
    while not pool._prewarmed.get("python3.11") and time.monotonic() < deadline:
        time.sleep(0.2)

    _, mode = run(pool, code_dir, runtime_image, "a" * 64, memory_mb=64)

    assert mode == "prewarmed"
    assert pool.metrics["prewarmHits"] == 1
