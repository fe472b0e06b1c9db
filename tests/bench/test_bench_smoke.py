"""Smoke test of bench/run.py: a few samples of each figure, so a broken bench fails `make test`.

It checks that the bench runs end to end and writes what docs/performance.md describes. It
asserts no timing: this run has too few samples, and the figures belong to the full run.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from bench.harness import percentile, summarize
from nanogrid.stack import REPO_ROOT

pytestmark = pytest.mark.docker

BENCH_TIMEOUT_S = 300
REQUIRED_RATIOS = ("warm_median", "warm_p99", "prewarmed_median_vs_docker_run", "throughput_16")


def test_percentile_interpolates():
    values = [10.0, 20.0, 30.0, 40.0]

    assert percentile(values, 0.5) == 25.0
    assert percentile(values, 0.0) == 10.0
    assert percentile(values, 1.0) == 40.0
    assert percentile([7.0], 0.99) == 7.0


def test_summarize_empty():
    summary = summarize([])

    assert summary["count"] == 0
    assert summary["median_ms"] is None
    assert summary["p99_ms"] is None


@pytest.fixture(scope="module")
def bench_output(tmp_path_factory, redis_server_binary, docker_client, runtime_image):
    output_dir = tmp_path_factory.mktemp("bench")
    plot = importlib.util.find_spec("matplotlib") is not None
    command = [
        sys.executable, str(REPO_ROOT / "bench" / "run.py"),
        "--latency-samples", "3", "--first-run-samples", "1", "--docker-samples", "1", "--exec-samples", "2",
        "--throughput-runs", "4", "--cold-init-samples", "1", "--concurrency", "4",
        "--image", runtime_image, "--output-dir", str(output_dir),
    ]
    if not plot:
        command.append("--no-plot")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, cwd=REPO_ROOT)
    return completed, output_dir, plot


def test_bench_exits_zero(bench_output):
    completed, _, _ = bench_output

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "targets:" in completed.stdout


def test_bench_writes_results(bench_output):
    _, output_dir, _ = bench_output
    results = json.loads((output_dir / "latest.json").read_text())

    for name in REQUIRED_RATIOS:
        assert name in results["ratios"], name
        assert results["ratios"][name] is not None, name
    assert set(results["machine"]) >= {"nproc", "memory_mb", "kernel", "docker_version"}
    assert results["figures"]["latency"]["floor"]["count"] == 3
    assert results["figures"]["latency"]["warm"]["count"] == 3
    assert results["figures"]["latency"]["docker_run"]["count"] == 1
    assert results["figures"]["controller_cold_init"]["total_ms"]["count"] == 1
    assert set(results["figures"]["throughput"]) == {"1", "4", "16"}
    assert results["figures"]["memory"]["worker"]["rss_mb"] > 0


def test_bench_first_run_modes(bench_output):
    _, output_dir, _ = bench_output
    latency = json.loads((output_dir / "latest.json").read_text())["figures"]["latency"]

    assert latency["prewarmed"]["count"] + latency["cold"]["count"] + sum(latency["first_run_other_modes"].values()) == 2


def test_bench_draws_plot(bench_output):
    _, output_dir, plot = bench_output
    if not plot:
        pytest.skip("matplotlib is not installed; install the bench extra to draw latency.png")

    assert (output_dir / "latency.png").stat().st_size > 0


def test_bench_leaves_no_containers(bench_output, docker_client):
    _, output_dir, _ = bench_output
    worker_id = json.loads((output_dir / "latest.json").read_text())["worker_id"]
    worker_containers = docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"org.nanogrid.worker-id={worker_id}"})
    bench_containers = docker_client.containers.list(all=True, ignore_removed=True, filters={"label": f"org.nanogrid.bench={worker_id}"})

    assert worker_containers == []
    assert bench_containers == []
