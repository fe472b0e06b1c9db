"""Offline checks of template.yaml with the real tools: cfn-lint, sam validate --lint, sam build."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.sam.conftest import REPO_ROOT, SAM_ENV


def test_cfn_lint_passes(cfn_lint_bin):
    completed = subprocess.run([cfn_lint_bin, str(REPO_ROOT / "template.yaml")], capture_output=True, text=True,
                               timeout=300)

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_sam_validate_lint_passes(sam_bin):
    completed = subprocess.run([sam_bin, "validate", "--lint", "--template-file", str(REPO_ROOT / "template.yaml")],
                               cwd=REPO_ROOT, env=SAM_ENV, capture_output=True, text=True, timeout=300)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "is a valid SAM Template" in completed.stdout + completed.stderr


def test_sam_build_bundles_protocol(sam_build_dir):
    function_dir = sam_build_dir / "ControllerFunction"
    layer_dir = sam_build_dir / "ProtocolLayer" / "python"

    assert (function_dir / "nanogrid_controller" / "app.py").is_file()
    assert (layer_dir / "nanogrid_protocol" / "models.py").is_file()
    assert (layer_dir / "pydantic").is_dir()


def test_built_controller_imports_from_build(sam_build_dir):
    # -I -S: no site-packages, no user site, no PYTHONPATH. The search order is Lambda's: the
    # function, then the layer, then the runtime's own boto3 (here the folder that contains this
    # venv's boto3, as the Lambda runtime provides boto3 and the requirements leave it out).
    import boto3

    function_dir = sam_build_dir / "ControllerFunction"
    layer_dir = sam_build_dir / "ProtocolLayer" / "python"
    runtime_dir = Path(boto3.__file__).parent.parent
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(function_dir)!r}, {str(layer_dir)!r}]
        sys.path.append({str(runtime_dir)!r})
        import nanogrid_protocol, nanogrid_controller.app
        print(nanogrid_protocol.__file__)
        print(nanogrid_controller.app.__file__)
        print(callable(nanogrid_controller.app.lambda_handler))
    """)
    completed = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd="/", capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr
    protocol_file, controller_file, handler_callable = completed.stdout.split()

    assert protocol_file.startswith(str(layer_dir))
    assert controller_file.startswith(str(function_dir))
    assert handler_callable == "True"
