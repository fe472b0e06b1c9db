"""A short soak: bench/soak.py with a few hundred runs, a killed worker and Redis restarts."""

import json
import os
import subprocess
import sys

import pytest

from nanogrid.stack import REPO_ROOT

pytestmark = pytest.mark.docker

SHORT_SOAK_RUNS = int(os.environ.get("SHORT_SOAK_RUNS", "300"))


def test_short_soak_loses_nothing(runtime_image, tmp_path):
    results_path = tmp_path / "soak.json"

    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "soak.py"), "--runs", str(SHORT_SOAK_RUNS), "--results", str(results_path)],
        capture_output=True, text=True, timeout=900, cwd=REPO_ROOT,
    )
    details = json.loads(results_path.read_text())

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert details["results"] == SHORT_SOAK_RUNS
    assert details["lost"] == 0
    assert details["duplicatedExecutions"] == 0
    assert details["faults"], "no fault was injected; the soak ran too briefly"
