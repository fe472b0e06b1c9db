"""Ratios, targets, the printed table and the latency plot of a bench run."""

from __future__ import annotations

import math
from pathlib import Path

# Each target: the ratio or figure it reads, the comparison and the limit.
TARGETS = {
    "warm_median": ("<=", 1.3),
    "warm_p99": ("<=", 3.0),
    "prewarmed_median_vs_docker_run": ("<=", 0.3),
    "throughput_16": (">=", 0.8),
    "controller_cold_init_median_ms": ("<", 300.0),
}


def _ratio(product: float | None, floor: float | None) -> float | None:
    if product is None or floor is None or floor == 0 or math.isnan(product) or math.isnan(floor):
        return None
    return product / floor


def compute_ratios(figures: dict) -> dict:
    """Product over floor for each figure that has a floor."""
    latency = figures["latency"]
    floor, warm = latency["floor"], latency["warm"]
    docker_run, docker_exec = latency["docker_run"], latency["docker_exec"]
    ratios = {
        "warm_median": _ratio(warm["median_ms"], floor["median_ms"]),
        "warm_p95": _ratio(warm["p95_ms"], floor["p95_ms"]),
        "warm_p99": _ratio(warm["p99_ms"], floor["p99_ms"]),
        "warm_median_vs_docker_exec": _ratio(warm["median_ms"], docker_exec["median_ms"]),
        "prewarmed_median_vs_docker_run": _ratio(latency["prewarmed"]["median_ms"], docker_run["median_ms"]),
        "prewarmed_p95_vs_docker_run": _ratio(latency["prewarmed"]["p95_ms"], docker_run["p95_ms"]),
        "cold_median_vs_docker_run": _ratio(latency["cold"]["median_ms"], docker_run["median_ms"]),
        "cold_p95_vs_docker_run": _ratio(latency["cold"]["p95_ms"], docker_run["p95_ms"]),
    }
    for callers, level in figures["throughput"].items():
        ratios[f"throughput_{callers}"] = _ratio(level["product"]["runs_per_s"], level["floor"]["runs_per_s"])
    memory = figures["memory"]
    ratios["worker_rss"] = _ratio(memory["worker"]["rss_mb"], memory["noop_worker"]["rss_mb"])
    ratios["controller_rss"] = _ratio(memory["controller"]["rss_mb"], memory["floor_controller"]["rss_mb"])
    return ratios


def check_targets(ratios: dict, figures: dict) -> dict:
    values = {**ratios, "controller_cold_init_median_ms": figures["controller_cold_init"]["total_ms"]["median_ms"]}
    checked = {}
    for name, (comparison, limit) in TARGETS.items():
        value = values.get(name)
        if value is None or math.isnan(value):
            met = None
        elif comparison == "<=":
            met = value <= limit
        elif comparison == "<":
            met = value < limit
        else:
            met = value >= limit
        checked[name] = {"value": value, "limit": f"{comparison} {limit:g}", "met": met}
    return checked


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_table(figures: dict, ratios: dict, targets: dict) -> str:
    latency = figures["latency"]
    floor = latency["floor"]
    lines = [f"{'figure':<44} {'floor':>10} {'product':>10} {'ratio':>7}  samples"]

    def row(name: str, floor_value, product_value, ratio, samples: str) -> None:
        lines.append(f"{name:<44} {_fmt(floor_value):>10} {_fmt(product_value):>10} {_fmt(ratio, 2):>7}  {samples}")

    for stat in ("median", "p95", "p99"):
        row(f"warm POST /run {stat} (ms)", floor[f"{stat}_ms"], latency["warm"][f"{stat}_ms"],
            ratios.get(f"warm_{stat}"), f"{floor['count']}/{latency['warm']['count']}")
    warm = latency["warm"]
    lines.append(f"{'  of the warm median: runner, container run (ms)':<44} {'':>10} "
                 f"{_fmt(warm.get('runner_median_ms')):>10} {_fmt(warm.get('container_run_median_ms')):>7}")
    docker_run = latency["docker_run"]
    for mode in ("prewarmed", "cold"):
        for stat in ("median", "p95", "p99"):
            row(f"{mode} POST /run {stat} vs docker run (ms)", docker_run[f"{stat}_ms"], latency[mode][f"{stat}_ms"],
                _ratio(latency[mode][f"{stat}_ms"], docker_run[f"{stat}_ms"]),
                f"{docker_run['count']}/{latency[mode]['count']}")
    row("warm POST /run median vs docker exec (ms)", latency["docker_exec"]["median_ms"], latency["warm"]["median_ms"],
        ratios.get("warm_median_vs_docker_exec"), f"{latency['docker_exec']['count']}/{latency['warm']['count']}")
    for callers, level in figures["throughput"].items():
        row(f"throughput, {callers} callers (runs/s)", level["floor"]["runs_per_s"], level["product"]["runs_per_s"],
            ratios.get(f"throughput_{callers}"), f"{level['floor']['runs']}/{level['product']['runs']}")
    top_level = figures["throughput"].get(str(max(int(callers) for callers in figures["throughput"])))
    if top_level is not None:
        floor_cpu, product_cpu = top_level["floor"]["cpu_ms_per_run"], top_level["product"]["cpu_ms_per_run"]
        for process in product_cpu:
            row(f"  CPU per run, {top_level['product']['callers']} callers: {process} (ms)", floor_cpu.get(process),
                product_cpu[process], _ratio(product_cpu[process], floor_cpu.get(process)), "")
    memory = figures["memory"]
    row("worker RSS (MiB)", memory["noop_worker"]["rss_mb"], memory["worker"]["rss_mb"], ratios.get("worker_rss"), "1/1")
    row("controller RSS (MiB)", memory["floor_controller"]["rss_mb"], memory["controller"]["rss_mb"],
        ratios.get("controller_rss"), "1/1")
    cold_init = figures["controller_cold_init"]
    lines.append("")
    lines.append(
        f"controller cold init (ms, median of {cold_init['total_ms']['count']}): total {_fmt(cold_init['total_ms']['median_ms'])}"
        f" = interpreter {_fmt(cold_init['interpreter_ms']['median_ms'])}"
        f" + import {_fmt(cold_init['import_ms']['median_ms'])}"
        f" + first request {_fmt(cold_init['first_request_ms']['median_ms'])};"
        f" second request {_fmt(cold_init['second_request_ms']['median_ms'])}"
    )
    lines.append("")
    lines.append("targets:")
    for name, target in targets.items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        lines.append(f"  {name:<36} {_fmt(target['value'], 2):>8} {target['limit']:<8} {verdict}")
    return "\n".join(lines)


def plot_latency(samples: dict[str, list[float]], path: Path, title: str) -> None:
    """Box plot of POST /run latency by mode next to the floor figures, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [name for name, values in samples.items() if values]
    figure, axes = plt.subplots(figsize=(9, 5))
    axes.boxplot([samples[name] for name in labels], whis=(1, 99), showfliers=True)
    axes.set_xticks(range(1, len(labels) + 1), labels, rotation=15)
    axes.set_yscale("log")
    axes.set_ylabel("latency (ms, log scale)")
    axes.set_title(title)
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.text(0.01, 0.01, "boxes: quartiles and median; whiskers: p1 to p99", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
