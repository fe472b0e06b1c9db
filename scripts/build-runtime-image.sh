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

apt_mirror() {
    # First Debian archive URI that apt itself is configured with (deb822 or one-line format).
    local uri
    uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n1 || true)
    fi
    echo "$uri"
}

mirror="${DEBIAN_MIRROR:-$(apt_mirror)}"
if [ -z "$mirror" ]; then
    echo "No Debian mirror found in apt's sources. Set DEBIAN_MIRROR to the URL of a Debian archive." >&2
    exit 2
fi
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
