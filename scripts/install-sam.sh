#!/usr/bin/env bash
# Install the tools that the SAM checks need, each where it cannot disturb the project venv:
#   - aws-sam-cli and cfn-lint in their own virtualenv (.venv-sam by default), because
#     aws-sam-cli pins many packages (boto3, jsonschema, ...) that would fight the project's;
#   - debootstrap, which scripts/build-lambda-base-image.sh uses;
#   - the Lambda base image that `sam local invoke` needs, built offline.
# Safe to run again: each step is skipped when its result is already there.
#
# Usage: scripts/install-sam.sh [--no-image]
# Env:   SAM_VENV (default .venv-sam), PYTHON (default python3.11),
#        AWS_SAM_CLI_VERSION, CFN_LINT_VERSION (pins; empty takes the newest release).
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
venv="${SAM_VENV:-$repo_root/.venv-sam}"
python="${PYTHON:-python3.11}"
sam_version="${AWS_SAM_CLI_VERSION:-1.170.0}"
cfn_lint_version="${CFN_LINT_VERSION:-}"
build_image=1
[ "${1:-}" = "--no-image" ] && build_image=0

if ! command -v "$python" >/dev/null; then
    echo "$python is not installed; sam build runs the python3.11 workflow without a container and needs it." >&2
    exit 2
fi

if [ ! -x "$venv/bin/sam" ] || ! "$venv/bin/sam" --version | grep -q "$sam_version"; then
    echo "Installing aws-sam-cli $sam_version and cfn-lint into $venv" >&2
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip 2> >(grep -v 'is ignored' >&2)
    "$venv/bin/pip" install --quiet "aws-sam-cli==$sam_version" "cfn-lint${cfn_lint_version:+==$cfn_lint_version}" \
        2> >(grep -v 'is ignored' >&2)
fi
"$venv/bin/sam" --version >&2
"$venv/bin/cfn-lint" --version >&2

if [ "$build_image" = 1 ]; then
    if ! command -v debootstrap >/dev/null; then
        apt-get update -qq && apt-get install -y -qq debootstrap >&2
    fi
    "$repo_root/scripts/build-lambda-base-image.sh" --if-missing
fi
