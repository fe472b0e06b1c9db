#!/usr/bin/env bash
# Build, offline, an image that `sam local invoke` accepts in place of the AWS Lambda Python 3.11
# base image, for machines that cannot pull from a registry.
#
# What SAM CLI (checked against 1.170) does with it, and so what the image must provide:
#   - For a zip function with runtime python3.11 it looks for public.ecr.aws/lambda/python:3.11-x86_64
#     and, with --skip-pull-image, never pulls it.
#   - It runs `docker build` on a two-line Dockerfile FROM that image (ADD the Runtime Interface
#     Emulator, then RUN mv and chmod; layers are copied to /opt with RUN cp), so the image needs
#     /bin/sh, mv, chmod and cp.
#   - It starts the container with ENTRYPOINT /var/rapid/aws-lambda-rie, no command, the code
#     mounted at /var/task and the handler in AWS_LAMBDA_FUNCTION_HANDLER. Without a command the
#     emulator runs the first of /var/task/bootstrap, /opt/bootstrap and /var/runtime/bootstrap.
# So /var/runtime/bootstrap starts awslambdaric (the Python runtime interface client from PyPI)
# with the handler, and boto3 sits beside it, as the AWS image has it.
#
# Usage: scripts/build-lambda-base-image.sh [--if-missing] [TAG]
#        (default tag: public.ecr.aws/lambda/python:3.11-x86_64)
# Needs root, debootstrap, python3.11 with pip, and a Docker engine. DEBIAN_MIRROR overrides the
# mirror that apt uses.
set -euo pipefail

if_missing=0
if [ "${1:-}" = "--if-missing" ]; then
    if_missing=1
    shift
fi
tag="${1:-public.ecr.aws/lambda/python:3.11-x86_64}"
suite="${DEBIAN_SUITE:-bookworm}"
host_python="${PYTHON:-python3.11}"

if [ "$if_missing" = 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag is already built; skipping (run without --if-missing to rebuild)" >&2
    exit 0
fi

# shellcheck source=lib/debian-mirror.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-mirror.sh"
for tool in debootstrap docker "$host_python"; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool is not installed; install it (debootstrap: apt-get install -y debootstrap) and run again." >&2
        exit 2
    fi
done

workdir=$(mktemp -d /tmp/nanogrid-lambda-base.XXXXXX)
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"
wheels="$workdir/wheels"

echo "Building $tag from Debian $suite into $rootfs" >&2
debootstrap --variant=minbase --include=python3,ca-certificates "$suite" "$rootfs" "$mirror" >&2

# Wheels for the image's CPython 3.11 on x86_64, fetched by the host's pip, so the image needs no pip.
# async-timeout: Debian's Python is 3.11.2, and redis-py needs that backport below 3.11.3, but
# `sam build` resolves the function's requirements for the host's newer 3.11 and leaves it out.
"$host_python" -m pip download --quiet --only-binary=:all: --implementation cp --python-version 3.11 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$wheels" awslambdaric boto3 async-timeout 2> >(grep -v 'is ignored' >&2)
"$host_python" -m pip install --quiet --no-index --no-deps --find-links "$wheels" --only-binary=:all: \
    --implementation cp --python-version 3.11 --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --target "$rootfs/var/runtime" "$wheels"/*.whl 2> >(grep -v 'is ignored' >&2)

# The AWS image keeps its interpreter under /var/lang; some tools and layers expect that path.
mkdir -p "$rootfs/var/lang/bin" "$rootfs/var/task" "$rootfs/opt/python"
ln -sf /usr/bin/python3 "$rootfs/var/lang/bin/python3.11"
ln -sf /usr/bin/python3 "$rootfs/var/lang/bin/python3"
ln -sf /usr/bin/python3 "$rootfs/var/lang/bin/python"

cat > "$rootfs/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Started by the Runtime Interface Emulator (or by Lambda). The emulator passes the handler in
# AWS_LAMBDA_FUNCTION_HANDLER; Lambda itself sets _HANDLER.
handler="${_HANDLER:-${AWS_LAMBDA_FUNCTION_HANDLER:-}}"
if [ -z "$handler" ]; then
    echo "bootstrap: no handler; set _HANDLER or AWS_LAMBDA_FUNCTION_HANDLER to MODULE.FUNCTION" >&2
    exit 2
fi
export AWS_EXECUTION_ENV="${AWS_EXECUTION_ENV:-AWS_Lambda_python3.11}"
# Function code first, then layers (/opt/python), then the runtime's own boto3 and awslambdaric.
export PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}:/opt/python/lib/python3.11/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /var/lang/bin/python3.11 -m awslambdaric "$handler"
BOOTSTRAP
chmod 0755 "$rootfs/var/runtime/bootstrap"

# Used only when the image is run without SAM: `docker run IMAGE MODULE.FUNCTION` with an
# emulator mounted at /usr/local/bin/aws-lambda-rie, as the AWS image's own entry point does.
cat > "$rootfs/lambda-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
if [ $# -gt 0 ]; then
    export _HANDLER="$1"
fi
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ] && [ -x /usr/local/bin/aws-lambda-rie ]; then
    exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
ENTRYPOINT
chmod 0755 "$rootfs/lambda-entrypoint.sh"

rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

python_version=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
chroot "$rootfs" env PYTHONPATH=/var/runtime python3 -c 'import async_timeout, awslambdaric, boto3' || {
    echo "awslambdaric or boto3 does not import in the image's Python $python_version" >&2
    exit 1
}

tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change "WORKDIR /var/task" \
    --change "ENV LANG=C.UTF-8 TZ=:/etc/localtime PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime" \
    --change "LABEL org.nanogrid.purpose=sam-local-invoke org.nanogrid.python-version=$python_version" \
    --change 'ENTRYPOINT ["/lambda-entrypoint.sh"]' \
    --change 'CMD ["app.lambda_handler"]' \
    - "$tag" >&2
echo "Built $tag with Python $python_version" >&2
