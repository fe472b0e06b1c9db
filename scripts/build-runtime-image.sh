#!/usr/bin/env bash
# Build the python3.11 runtime image offline from Debian packages, for machines that cannot
# pull from a registry. Where a registry is reachable, a standard image such as
# python:3.11-slim works instead: set NANOGRID_RUNTIME_IMAGES=python3.11=python:3.11-slim.
#
# Usage: scripts/build-runtime-image.sh [TAG]      (default tag: nanogrid/python:3.11)
# Needs root, debootstrap and a Docker engine. DEBIAN_MIRROR overrides the mirror that apt uses.
set -euo pipefail

tag="${1:-nanogrid/python:3.11}"
suite="${DEBIAN_SUITE:-bookworm}"
# The uid that functions run as. The worker passes the same uid to `docker create --user`,
# so a standard image without this user still runs functions as non-root.
uid=10001

# shellcheck source=lib/debian-mirror.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/debian-mirror.sh"
for tool in debootstrap docker; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool is not installed. Install it with: apt-get install -y ${tool/docker/docker.io}" >&2
        exit 2
    fi
done

rootfs=$(mktemp -d /tmp/nanogrid-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

echo "Building $tag from Debian $suite into $rootfs" >&2
debootstrap --variant=minbase --include=python3 "$suite" "$rootfs" "$mirror" >&2

chroot "$rootfs" groupadd --gid "$uid" nanogrid
chroot "$rootfs" useradd --uid "$uid" --gid "$uid" --no-create-home --home-dir /tmp \
    --shell /usr/sbin/nologin nanogrid
mkdir -p "$rootfs/var/task" "$rootfs/opt/nanogrid" "$rootfs/var/nanogrid/io"
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

python_version=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change "USER $uid:$uid" \
    --change "WORKDIR /var/task" \
    --change "ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1" \
    --change "LABEL org.nanogrid.runtime=python3.11 org.nanogrid.python-version=$python_version" \
    --change 'CMD ["python3"]' \
    - "$tag" >&2
echo "Built $tag with Python $python_version" >&2
