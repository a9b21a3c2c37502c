#!/bin/bash
# Run by scripts/systemd-unit-check.sh inside the container it boots (systemd 252 as PID 1, its
# own dockerd): hwprov.service as shipped (hardened, Type=notify), then one capability at a time
# taken away, then a stuck agent. It prints what happened; docs/deploy.md records it.
export PATH=/opt/hwprov/venv/bin:$PATH
say() { echo; echo "#### $*"; }
last() { journalctl --no-pager -b -u hwprov -o cat | grep '^{' | tail -${1:-8}; }
systemctl is-system-running; systemctl --no-pager --failed --plain | head -5
systemctl is-active docker || { journalctl --no-pager -b -u docker | tail -30; exit 1; }
# The boot's hwprov made its mount namespace before the cgroup mounts were made writable.
systemctl restart hwprov
python3 - <<'PY'
import docker
from pathlib import Path
from hwprov.sandbox.images import ensure_busybox
import hwprov.sandbox.demo as demo
client = docker.from_env()
for c in client.api.containers(all=True):
    client.api.remove_container(c['Id'], force=True)
ensure_busybox(client)
demo.PROJECT = "hw"
demo.up(client, Path("/etc/hwprov/docker-compose.yml"))
PY
sleep 6
say "shipped unit: containers started under a running hwprov"
systemctl show hwprov -p Type -p NotifyAccess -p WatchdogUSec -p ActiveState -p SubState -p NRestarts -p CapabilityBoundingSet
grep -E "^(CapBnd|NoNewPrivs|Seccomp)" /proc/$(systemctl show -p MainPID --value hwprov)/status
# whether systemd here enforces device policies (DeviceAllow=, PrivateDevices=): it does only
# where it manages the devices controller, i.e. the unit has a cgroup of its own there
grep -E ":devices:" /proc/$(systemctl show -p MainPID --value hwprov)/cgroup
last 8
check() {
  for c in hw-live-1 hw-recreated-1; do
    id=$(docker inspect -f '{{.Id}}' $c)
    echo "$c: running=$(docker inspect -f '{{.State.Running}}' $c) devices=$(docker inspect -f '{{.HostConfig.Devices}}' $c) node=$(docker exec $c stat -c '%F %t:%T' /dev/port0 2>&1) cgroup=$(grep -c '^c 4:64 rw' /sys/fs/cgroup/devices/docker/$id/devices.list)"
  done
}
check
say "restart: coldplug with both containers there; READY only after the pass"
systemctl restart hwprov; echo "restart rc=$?"; journalctl --no-pager -b -u hwprov -o cat | tail -6
say "reload (SIGHUP)"
systemctl reload hwprov; echo "reload rc=$?"; sleep 2; last 3
say "security (online)"; systemd-analyze security hwprov.service | tail -1
mkdir -p /run/systemd/system/hwprov.service.d
ALL="CAP_SYS_ADMIN CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_MKNOD CAP_CHOWN CAP_DAC_OVERRIDE CAP_BPF CAP_NET_ADMIN CAP_SYSLOG"
for cap in $ALL; do
  say "without $cap"
  printf '[Service]\nCapabilityBoundingSet=\nCapabilityBoundingSet=%s\n' "$(echo $ALL | tr ' ' '\n' | grep -vx $cap | tr '\n' ' ')" > /run/systemd/system/hwprov.service.d/ablate.conf
  systemctl daemon-reload; systemctl restart hwprov; echo "restart rc=$? $(systemctl is-active hwprov)"
  docker restart -t 1 hw-live-1 >/dev/null; sleep 3
  last 20 | grep -E '"service": "live"|udev|error' | grep -v container-started | tail -2
  echo "live node: $(docker exec hw-live-1 stat -c '%t:%T' /dev/port0 2>&1)"
done
rm /run/systemd/system/hwprov.service.d/ablate.conf
say "stuck: WatchdogSec=4 and the agent stopped (SIGSTOP)"
printf '[Service]\nWatchdogSec=4\n' > /run/systemd/system/hwprov.service.d/watchdog.conf
systemctl daemon-reload; systemctl restart hwprov
pid=$(systemctl show -p MainPID --value hwprov); echo "main pid $pid, restarts $(systemctl show -p NRestarts --value hwprov)"
sleep 9; echo "fed while idle (4 s watchdog, 2 s turns): $(systemctl is-active hwprov), main pid $(systemctl show -p MainPID --value hwprov)"
kill -STOP $pid; sleep 10
echo "after SIGSTOP: main pid $(systemctl show -p MainPID --value hwprov), restarts $(systemctl show -p NRestarts --value hwprov), $(systemctl is-active hwprov)"
journalctl --no-pager -b -u hwprov -o cat | grep -iE "watchdog|abrt|Scheduled restart" | tail -4
rm /run/systemd/system/hwprov.service.d/watchdog.conf; systemctl daemon-reload
