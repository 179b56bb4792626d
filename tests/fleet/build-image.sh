#!/usr/bin/env bash
# Build the base image of a test host: a bare Debian with systemd (PID 1) and sshd, nothing else
# of ours. No container registry is reachable, so the root file system is made with debootstrap
# and imported. Usage: build-image.sh [bookworm|trixie]   (prints the image name)
set -euo pipefail

suite="${1:-bookworm}"
image="webapp-testhost:${suite}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"
    exit 0
fi

rootfs="$(mktemp -d /tmp/testhost-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "building $image with debootstrap (about a minute)" >&2
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,openssh-server,python3,sudo,ca-certificates,curl,iproute2 \
    "$suite" "$rootfs" "$mirror" >&2

# TLS from inside the host goes through the same trust store as this machine (a TLS-inspecting
# proxy may sit in between): add its bundle as a local CA and point pip and uv at the system store.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/usr/local/share/ca-certificates/build-machine.crt"
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
fi
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$rootfs/etc/pip.conf"
mkdir -p "$rootfs/etc/uv"
printf 'native-tls = true\n' > "$rootfs/etc/uv/uv.toml"

# A container has no consoles or hardware to wait for.
for unit in getty@tty1.service serial-getty@console.service systemd-udevd.service \
            systemd-modules-load.service sys-kernel-debug.mount; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo "testhost" > "$rootfs/etc/hostname"
mkdir -p "$rootfs/root/.ssh" && chmod 700 "$rootfs/root/.ssh"
rm -f "$rootfs"/var/cache/apt/archives/*.deb

tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["/sbin/init"]' \
    - "$image" >&2
echo "$image"
