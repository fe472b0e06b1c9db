# Sourced by the image build scripts: sets `mirror` to the Debian archive to debootstrap from,
# or exits with a message. DEBIAN_MIRROR overrides the first archive URI that apt itself is
# configured with (deb822 or one-line format); security archives are skipped.

apt_mirror() {
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
