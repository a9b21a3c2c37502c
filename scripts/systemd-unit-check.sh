#!/usr/bin/env bash
# deploy/hwprov.service as shipped, under a real systemd as PID 1: a Debian 12 root filesystem
# (mmdebstrap: systemd, docker.io, python3) booted by systemd-nspawn, hwprov installed in it
# from wheels, then scripts/systemd-unit-inside.sh inside: a live grant and a recreate under
# the hardened unit, READY and reload, each capability of the bounding set taken away in turn,
# and a stuck agent killed by the watchdog. docs/deploy.md records what it printed.
#
# Not part of the suite: the only real device this machine kind has is the kernel console's
# ttyS0 (bound into the container; hwprov only makes nodes of it, nothing opens it), the
# container's cgroups are made in the host's own hierarchies (nested below this shell's, and
# removed after), and it takes about 2 min, the root filesystem built once (kept in .image/
# after). Run it as root on a host that is not systemd-booted (this one), under the engine
# lock where others share the machine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$here/.image"
work="$(mktemp -d /tmp/hwprov-unit.XXXXXX)"
trap 'rm -rf "$work"' EXIT

missing=()
for p in mmdebstrap systemd-container; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "systemd-unit-check: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# procps: the unit's ExecReload runs /bin/kill. busybox-static: the containers' image.
PACKAGES=systemd,systemd-sysv,dbus,docker.io,procps,python3,python3-venv,libudev1,busybox-static
tarball="$cache/bookworm-systemd-$(echo "$PACKAGES" | sha256sum | cut -c1-12).tar"
if [[ ! -f "$tarball" ]]; then
    mkdir -p "$cache"
    mmdebstrap --quiet --format=tar --variant=minbase --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' bookworm "$tarball.part.tar" >&2
    mv "$tarball.part.tar" "$tarball"
fi
root="$work/root"
mkdir "$root"
tar -C "$root" -xf "$tarball"

# hwprov as docs/deploy.md installs it, from wheels; the unit and a project as shipped.
"$here/.venv/bin/pip" wheel -q --disable-pip-version-check -w "$root/wheels" "$here" >&2
chroot "$root" python3 -m venv /opt/hwprov/venv
chroot "$root" /opt/hwprov/venv/bin/pip install -q --no-index --find-links /wheels hwprov >&2
ln -s /opt/hwprov/venv/bin/hwprov "$root/usr/local/bin/hwprov"
install -m 0644 "$here/deploy/hwprov.service" "$root/etc/systemd/system/"
ln -s /etc/systemd/system/hwprov.service "$root/etc/systemd/system/multi-user.target.wants/"
install -m 0755 "$here/scripts/systemd-unit-inside.sh" "$root/root/inside.sh"
# Its own network namespace (--private-network): no NAT rules to make, none on the host.
mkdir -p "$root/etc/docker" "$root/etc/hwprov"
echo '{"iptables": false, "ip-masq": false}' >"$root/etc/docker/daemon.json"
cat >"$root/etc/hwprov/docker-compose.yml" <<'EOF'
name: hw
services:
  live:
    image: hwprov/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels:
      io.hwprov.device.port: "kind=serial, name=ttyS0, path=/dev/port0"
      io.hwprov.grant: live
  recreated:
    image: hwprov/busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    labels:
      io.hwprov.device.port: "kind=serial, name=ttyS0, path=/dev/port0"
      io.hwprov.grant: recreate
EOF

# Cgroups of its own below this shell's in every hierarchy: nspawn's cgroup namespace then
# shows the container only its subtree, which its dockerd may write once writable (below).
name="hwprov-unit-$$"
orig="$(cat /proc/self/cgroup)"
made=()
while IFS=: read -r _ ctrls path; do
    case "$ctrls" in
        "") base=/sys/fs/cgroup/unified ;;
        name=systemd) base=/sys/fs/cgroup/systemd ;;
        *) base=/sys/fs/cgroup/$ctrls ;;
    esac
    dir="$base${path%/}/$name"
    mkdir -p "$dir"
    if [[ $ctrls == cpuset ]]; then
        cat "$(dirname "$dir")/cpuset.cpus" >"$dir/cpuset.cpus"
        cat "$(dirname "$dir")/cpuset.mems" >"$dir/cpuset.mems"
    fi
    echo $$ >"$dir/cgroup.procs"
    made+=("$dir")
done <<<"$orig"

# Without systemd on the host: no machine registration, no scope (--keep-unit). runc needs
# the keyring calls nspawn filters by default.
systemd-nspawn -D "$root" -b --register=no --keep-unit --console=pipe --private-network \
    --bind=/dev/ttyS0 --system-call-filter='add_key keyctl bpf' -M "$name" \
    >"$work/console.log" 2>&1 &
nspawn=$!
init=""
for _ in $(seq 200); do
    init="$(awk '{print $1}' "/proc/$nspawn/task/$nspawn/children" 2>/dev/null || true)"
    state="$([[ -n "$init" ]] && nsenter -t "$init" -a systemctl is-system-running --wait 2>/dev/null || true)"
    [[ "$state" == running || "$state" == degraded ]] && break
    sleep 0.3
done
echo "systemd-unit-check: booted, system $state" >&2
# nspawn mounts the v1 hierarchies read-only; hwprov.service is restarted inside after this,
# so its own mount namespace copies them writable.
nsenter -t "$init" -m sh -c 'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done'
nsenter -t "$init" -a /root/inside.sh || echo "systemd-unit-check: inside.sh failed ($?)"
kill -TERM "$nspawn"
wait "$nspawn" || true

while IFS=: read -r _ ctrls path; do
    case "$ctrls" in
        "") base=/sys/fs/cgroup/unified ;;
        name=systemd) base=/sys/fs/cgroup/systemd ;;
        *) base=/sys/fs/cgroup/$ctrls ;;
    esac
    echo $$ >"$base${path%/}/cgroup.procs"
done <<<"$orig"
for dir in "${made[@]}"; do
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || echo "left behind: $dir" >&2
done
