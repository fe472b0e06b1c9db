"""Fixtures for the SAM checks: the SAM CLI and cfn-lint from their own virtualenv, and one
`sam build` per session.

scripts/install-sam.sh installs both into .venv-sam (or SAM_VENV). Without them these tests skip,
except under CI=true, where they fail, because CI runs the install script first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

REPO_ROOT = Path(__file__).resolve().parents[2]
SAM_VENV = Path(os.environ.get("SAM_VENV", REPO_ROOT / ".venv-sam"))
INSTALL_HINT = "run scripts/install-sam.sh"
# Environment for every SAM CLI call: no telemetry, no update check, and no real AWS profile.
SAM_ENV = {
    **os.environ,
    "SAM_CLI_TELEMETRY": "0",
    "SAM_CLI_DISABLE_UPDATE_CHECK": "1",
    "AWS_DEFAULT_REGION": "ap-northeast-2",
    "AWS_REGION": "ap-northeast-2",
}


def find_tool(name: str) -> str:
    candidate = SAM_VENV / "bin" / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        skip_or_fail(f"{name} is not installed in {SAM_VENV} or on PATH; {INSTALL_HINT}")
    return found


@pytest.fixture(scope="session")
def sam_bin() -> str:
    return find_tool("sam")


@pytest.fixture(scope="session")
def cfn_lint_bin() -> str:
    return find_tool("cfn-lint")


@pytest.fixture(scope="session")
def sam_build_dir(sam_bin, tmp_path_factory) -> Path:
    """Run `sam build` once (no container: it uses the local python3.11) and return the build folder."""
    if shutil.which("python3.11") is None:
        skip_or_fail("python3.11 is not on PATH; sam build needs it for the python3.11 workflow")
    build_dir = tmp_path_factory.mktemp("sam-build")
    started = time.monotonic()
    completed = subprocess.run(
        [sam_bin, "build", "--template-file", str(REPO_ROOT / "template.yaml"), "--build-dir", str(build_dir),
         "--cache-dir", str(tmp_path_factory.mktemp("sam-cache"))],
        cwd=REPO_ROOT, env=SAM_ENV, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, f"sam build failed:\n{completed.stdout}\n{completed.stderr}"
    print(f"sam build took {time.monotonic() - started:.1f} s")
    return build_dir
