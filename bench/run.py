"""Benchmark fast runs and the controller's cold start against a floor measured in the same run.

Usage: .venv/bin/python bench/run.py [--latency-samples N] [--first-run-samples N] ...

It starts the local stack on free loopback ports with the worker in warm mode, plus the floor
(bench/noop_worker.py behind a second HTTP front running the same controller handler), and
measures, in this order:

1. raw Docker: `docker run` (create, start, wait, remove) and `docker exec` of python3 main.py;
2. POST /run latency through the floor and through warm containers, alternating call by call;
3. first runs of new function versions, in pairs: one on a prewarmed container, then one that must
   start a new container (cold). Each sample is filed under the startMode its result reports;
4. throughput at 1, 4 and 16 concurrent callers, floor and product;
5. RSS of the worker and the controller, and of their floor counterparts;
6. the controller's cold initialisation in fresh processes (bench/cold_init.py).

It prints a table, writes bench/results/latest.json and draws bench/results/latency.png.
docs/performance.md explains each figure.
"""

from __future__ import annotations

from contextlib import closing
import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.docker_floor import measure_docker_exec, measure_docker_run  # noqa: E402
from bench.harness import (  # noqa: E402
    BENCH_DIR,
    ApiCaller,
    BenchConfig,
    BenchError,
    BenchStack,
    CpuMeter,
    put_function,
    rss_mb,
    run_concurrently,
    summarize,
)
from bench.report import check_targets, compute_ratios, format_table, plot_latency  # noqa: E402

WARM_FUNCTION_ID = "bench-noop"
FIRST_RUN_FUNCTION_ID = "bench-first-run"
# A handler that returns at once; the comment line makes each registration a new version.
FUNCTION_SOURCE = "# version {version}\ndef handler(event, context):\n    return {{\"ok\": True}}\n"
THROUGHPUT_CALLERS = (1, 4, 16)
# Maximum wait for the worker to have a prewarmed container ready before a prewarmed sample.
PREWARM_READY_TIMEOUT_S = 15
COLD_INIT_TIMEOUT_S = 60
# Untimed runs before each throughput level; "none" is the start mode of the floor's results.
MAX_WARM_UP_ROUNDS = 6
WARM_UP_RUNS_PER_CALLER = 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-samples", type=int, default=400,
                        help="sequential POST /run calls each for the floor and for warm containers (default 400)")
    parser.add_argument("--first-run-samples", type=int, default=15,
                        help="pairs of first runs of new versions, one prewarmed and one cold (default 15)")
    parser.add_argument("--docker-samples", type=int, default=15, help="raw docker run samples (default 15)")
    parser.add_argument("--exec-samples", type=int, default=40, help="raw docker exec samples (default 40)")
    parser.add_argument("--throughput-runs", type=int, default=320,
                        help="timed runs per concurrency level, split between the callers (default 320)")
    parser.add_argument("--cold-init-samples", type=int, default=11,
                        help="fresh controller processes timed to their first response (default 11)")
    parser.add_argument("--concurrency", type=int, default=16, help="run slots of the worker and the no-op worker (default 16)")
    parser.add_argument("--image", default=os.environ.get("NANOGRID_TEST_RUNTIME_IMAGE", "nanogrid/python:3.11"),
                        help="runtime image (default nanogrid/python:3.11)")
    parser.add_argument("--output-dir", type=Path, default=BENCH_DIR / "results",
                        help="folder for latest.json and latency.png (default bench/results)")
    parser.add_argument("--no-plot", action="store_true", help="skip latency.png, which needs matplotlib")
    args = parser.parse_args(argv)
    if not args.no_plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("matplotlib is not installed; install the bench extra with "
                     "`.venv/bin/pip install -e '.[dev,bench]'`, or pass --no-plot")
    for name in ("latency_samples", "first_run_samples", "docker_samples", "exec_samples", "throughput_runs", "cold_init_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more, got {getattr(args, name)}")
    if not 1 <= args.concurrency <= 64:
        parser.error(f"--concurrency must be 1 to 64 (the worker's limit), got {args.concurrency}")
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- phases ----------------------------------------------------------------------------------


def measure_steady_latency(bench: BenchStack, samples: int) -> tuple[list[float], list[float], dict]:
    """Alternate floor and warm calls, so both see the same machine state. Return both lists
    and, for the warm runs, their start modes and where the worker spent the time."""
    floor_caller, product_caller = ApiCaller(bench.floor_url), ApiCaller(bench.product_url)
    floor, warm, modes = [], [], {}
    container_run_ms, runner_ms = [], []
    # The first product call loads the function; a few more settle both paths.
    for _ in range(5):
        floor_caller.run(WARM_FUNCTION_ID)
        product_caller.run(WARM_FUNCTION_ID)
    for _ in range(samples):
        floor.append(floor_caller.run(WARM_FUNCTION_ID)[0])
        latency_ms, result = product_caller.run(WARM_FUNCTION_ID)
        warm.append(latency_ms)
        mode = result.get("startMode") or "none"
        modes[mode] = modes.get(mode, 0) + 1
        container_run_ms.append(float(result["durationMillis"]))
        runner_ms.append(float(result["finishedAtMs"] - result["startedAtMs"]))
    # Worker-side spans from the results, in whole milliseconds: durationMillis is the run in the
    # container, and startedAtMs to finishedAtMs is FunctionRunner.run around it.
    breakdown = {
        "start_modes": modes,
        "container_run_median_ms": summarize(container_run_ms)["median_ms"],
        "runner_median_ms": summarize(runner_ms)["median_ms"],
    }
    return floor, warm, breakdown


def measure_first_runs(bench: BenchStack, samples: int, memory_mb: int) -> dict[str, list[float]]:
    """Run new function versions: one on the waiting prewarmed container, then one at once
    after it, before the pool has started a new one. File each latency under its startMode."""
    by_mode: dict[str, list[float]] = {"prewarmed": [], "cold": [], "warm": []}
    caller = ApiCaller(bench.product_url)
    version = 0
    for _ in range(samples):
        for _ in range(2):
            version += 1
            put_function(bench.product_url, f"{FIRST_RUN_FUNCTION_ID}-{version}",
                         FUNCTION_SOURCE.format(version=version), memory_mb)
        if not wait_for_prewarmed(bench, PREWARM_READY_TIMEOUT_S):
            log("no prewarmed container became ready; the next sample is filed under the mode it reports")
        for offset in (1, 0):
            latency_ms, result = caller.run(f"{FIRST_RUN_FUNCTION_ID}-{version - offset}")
            by_mode.setdefault(result.get("startMode") or "none", []).append(latency_ms)
    return by_mode


def wait_for_prewarmed(bench: BenchStack, timeout_s: float) -> bool:
    """Wait until a resident container with no function loaded has connected to the worker.

    Reads what warm.ResidentContainer leaves on disk: a prewarmed container's task folder is
    empty, and the worker closes the listening control socket once the runtime inside has
    connected, a moment before it files the container as prewarmed. The accepted connection
    itself lives in the container's network namespace, so the host finds only the listener.
    """
    resident_dir = bench.resident_dir
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listening = _listening_unix_paths()
        for folder in resident_dir.glob("ng-*"):
            task_dir, socket_path = folder / "task", folder / "io" / "control.sock"
            try:
                empty = task_dir.is_dir() and not any(task_dir.iterdir())
                bound = socket_path.exists()
            except OSError:
                continue
            if empty and bound and str(socket_path) not in listening:
                # Leave time for the hello frame and the pool's bookkeeping after the accept.
                time.sleep(0.1)
                return True
        time.sleep(0.05)
    return False


def _listening_unix_paths() -> set[str]:
    """Paths of listening Unix sockets in this network namespace (flag 00010000)."""
    paths = set()
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            # Num RefCount Protocol Flags Type St Inode Path
            fields = line.split()
            if len(fields) >= 8 and fields[3] == "00010000":
                paths.add(fields[7])
    return paths


def measure_throughput(bench: BenchStack, total_runs: int) -> dict:
    """Runs per second at each number of callers, and the CPU time each process spent per run.

    The machine's CPU time includes the containers, dockerd and anything else running on it."""
    pids = bench.pids()
    shared = {name: pids[name] for name in ("moto", "redis") if name in pids}
    processes = {
        "floor": {"worker": pids.get("noop-worker"), "controller": pids.get("floor-controller"), **shared},
        "product": {"worker": pids.get("worker"), "controller": pids.get("controller"), **shared},
    }
    levels = {}
    for callers in THROUGHPUT_CALLERS:
        runs_per_caller = max(1, math.ceil(total_runs / callers))
        level = {}
        for name, url in (("floor", bench.floor_url), ("product", bench.product_url)):
            warm_up_rounds = warm_up(url, callers)
            meter = CpuMeter({process: pid for process, pid in processes[name].items() if pid is not None},
                             bench.resident_dir if name == "product" else None)
            meter.start()
            outcome = run_concurrently(url, WARM_FUNCTION_ID, callers, runs_per_caller)
            cpu_used_ms = meter.stop()
            if outcome["errors"]:
                raise BenchError(f"{len(outcome['errors'])} of the {name} runs at {callers} callers failed; first: {outcome['errors'][0]}")
            level[name] = {
                "callers": callers,
                "runs": outcome["runs"],
                "wall_s": outcome["wall_s"],
                "runs_per_s": outcome["runs"] / outcome["wall_s"],
                "latency": summarize(outcome["latencies_ms"]),
                "start_modes": outcome["start_modes"],
                "warm_up_rounds": warm_up_rounds,
                "cpu_ms_per_run": {process: None if used is None else used / max(1, outcome["runs"])
                                   for process, used in cpu_used_ms.items()},
            }
            log(f"throughput {name}, {callers} callers: {level[name]['runs_per_s']:.1f} runs/s")
        levels[str(callers)] = level
    return levels


def warm_up(url: str, callers: int) -> int:
    """Run untimed rounds until one starts no container, so the pool has a warm container for
    each caller; return the number of rounds. The pool grows only when a run finds no idle
    container, and a round with short gaps between calls may need fewer than the timed run."""
    for round_number in range(1, MAX_WARM_UP_ROUNDS + 1):
        outcome = run_concurrently(url, WARM_FUNCTION_ID, callers, WARM_UP_RUNS_PER_CALLER)
        if set(outcome["start_modes"]) <= {"warm", "none"} and not outcome["errors"]:
            return round_number
    log(f"containers were still starting after {MAX_WARM_UP_ROUNDS} warm-up rounds at {callers} callers")
    return MAX_WARM_UP_ROUNDS


def measure_memory(bench: BenchStack) -> dict:
    pids = bench.pids()
    memory = {}
    for name in ("worker", "controller", "noop_worker", "floor_controller"):
        pid = pids.get(name.replace("_", "-")) or pids.get(name)
        if pid is None:
            raise BenchError(f"no running process for {name}; found {pids}")
        memory[name] = {"pid": pid, "rss_mb": rss_mb(pid)}
    return memory


def measure_cold_init(bench: BenchStack, samples: int) -> dict:
    """Start bench/cold_init.py in fresh processes against the product's Redis, moto and bucket."""
    phases: dict[str, list[float]] = {}
    env = bench.controller_env(bench.cold_init_queue_url)
    env["NANOGRID_BENCH_FUNCTION_ID"] = WARM_FUNCTION_ID
    for _ in range(samples):
        env["NANOGRID_BENCH_SPAWNED_AT"] = repr(time.monotonic())
        completed = subprocess.run([sys.executable, str(BENCH_DIR / "cold_init.py")], env=env, capture_output=True,
                                   text=True, timeout=COLD_INIT_TIMEOUT_S, cwd=BENCH_DIR.parent)
        timings = _last_json_line(completed.stdout, "total_ms")
        if completed.returncode != 0 or timings is None:
            raise BenchError(f"bench/cold_init.py exited with code {completed.returncode}: {completed.stderr[-2000:]}")
        for phase, value in timings.items():
            phases.setdefault(phase, []).append(value)
    return {phase: summarize(values) | {"samples_ms": values} for phase, values in phases.items()}


def _last_json_line(output: str, key: str) -> dict | None:
    """Return the last stdout line that is a JSON object with key, because the controller logs JSON too."""
    for line in reversed(output.splitlines()):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and key in data:
            return data
    return None


def _display_path(path: Path) -> str:
    """Return path relative to the repository when it is inside it, so results do not name the checkout."""
    try:
        return str(path.resolve().relative_to(BENCH_DIR.parent))
    except ValueError:
        return str(path)


def describe_machine() -> dict:
    memory_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal:")), None)
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "unknown")
    try:
        import docker

        with closing(docker.from_env(timeout=10)) as client:
            docker_version = client.version().get("Version")
            cgroup = client.info().get("CgroupVersion")
    except Exception as exc:  # noqa: BLE001 - the machine description is best effort
        docker_version, cgroup = f"unknown ({exc})", None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mb": memory_kb // 1024 if memory_kb else None,
        "kernel": platform.release(),
        "docker_version": docker_version,
        "docker_cgroup_version": cgroup,
        "python": platform.python_version(),
    }


# -- main ------------------------------------------------------------------------------------


def run_bench(args: argparse.Namespace) -> dict:
    started = time.monotonic()
    first_run_versions = 2 * args.first_run_samples
    # Room for every container the run creates, so no eviction lands inside a measurement.
    memory_mb = 128
    budget_mb = max(2048, memory_mb * (first_run_versions + args.concurrency + 4))
    bench = BenchStack(BenchConfig(worker_concurrency=args.concurrency, function_memory_mb=memory_mb,
                                   memory_budget_mb=budget_mb, runtime_image=args.image))
    durations_s: dict[str, float] = {}
    samples: dict[str, list[float]] = {}
    figures: dict = {}
    leftovers: list[str] = []
    log(f"starting the stack in {bench.state_dir}")
    bench.start()
    try:
        put_function(bench.product_url, WARM_FUNCTION_ID, FUNCTION_SOURCE.format(version=0), memory_mb)
        durations_s["start"] = time.monotonic() - started

        phase = time.monotonic()
        source = FUNCTION_SOURCE.format(version="docker")
        samples["docker run"] = measure_docker_run(args.image, source, args.docker_samples, bench.worker_id)
        samples["docker exec"] = measure_docker_exec(args.image, source, args.exec_samples, bench.worker_id)
        durations_s["docker"] = time.monotonic() - phase
        log(f"docker run median {summarize(samples['docker run'])['median_ms']:.0f} ms")

        phase = time.monotonic()
        samples["floor"], samples["warm"], warm_breakdown = measure_steady_latency(bench, args.latency_samples)
        durations_s["steady_latency"] = time.monotonic() - phase
        log(f"floor median {summarize(samples['floor'])['median_ms']:.1f} ms, warm median {summarize(samples['warm'])['median_ms']:.1f} ms")

        phase = time.monotonic()
        first_runs = measure_first_runs(bench, args.first_run_samples, memory_mb)
        samples["prewarmed"], samples["cold"] = first_runs["prewarmed"], first_runs["cold"]
        durations_s["first_runs"] = time.monotonic() - phase
        log(f"first runs: {', '.join(f'{mode} {len(values)}' for mode, values in first_runs.items())}")

        phase = time.monotonic()
        figures["throughput"] = measure_throughput(bench, args.throughput_runs)
        durations_s["throughput"] = time.monotonic() - phase
        figures["memory"] = measure_memory(bench)

        phase = time.monotonic()
        figures["controller_cold_init"] = measure_cold_init(bench, args.cold_init_samples)
        durations_s["cold_init"] = time.monotonic() - phase
    finally:
        phase = time.monotonic()
        leftovers = bench.stop()
        durations_s["stop"] = time.monotonic() - phase
    durations_s["total"] = time.monotonic() - started

    figures["latency"] = {
        "floor": summarize(samples["floor"]),
        "warm": summarize(samples["warm"]) | warm_breakdown,
        "prewarmed": summarize(samples["prewarmed"]),
        "cold": summarize(samples["cold"]),
        "first_run_other_modes": {mode: len(values) for mode, values in first_runs.items() if mode not in ("prewarmed", "cold")},
        "docker_run": summarize(samples["docker run"]),
        "docker_exec": summarize(samples["docker exec"]),
    }
    ratios = compute_ratios(figures)
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe_machine(),
        "options": {key: _display_path(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "worker_id": bench.worker_id,
        "worker_settings": {"NANOGRID_CONCURRENCY": args.concurrency, **bench.stack_config.extra_worker_env},
        "ratios": ratios,
        "targets": check_targets(ratios, figures),
        "figures": figures,
        "samples_ms": samples,
        "pool_metrics": bench.pool_metrics,
        "leftover_containers_removed": leftovers,
        "durations_s": durations_s,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run_bench(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.output_dir / "latest.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    written = [json_path]
    if not args.no_plot:
        machine = results["machine"]
        samples = results["samples_ms"]
        plot_path = args.output_dir / "latency.png"
        plot_latency(
            {name: samples[name] for name in ("floor", "warm", "docker exec", "prewarmed", "docker run", "cold")},
            plot_path,
            f"POST /run by start mode, and the Docker floors; {machine['nproc']} CPUs, Docker {machine['docker_version']}",
        )
        written.append(plot_path)
    print(format_table(results["figures"], results["ratios"], results["targets"]))
    print(f"\nwrote {' and '.join(map(str, written))} in {results['durations_s']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
