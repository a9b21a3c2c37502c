#!/usr/bin/env bash
# The quick start (docs/quickstart.md) as one script; tests/engine/test_quickstart.py runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. Install what hwprov needs (Debian packages and a .venv); safe to run again.
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

# 2. A private Docker engine, so the host's own is never touched.
work="$(mktemp -d /tmp/hwprov-qs.XXXX)"
cleanup() {
    kill "${agent:-0}" 2>/dev/null && wait "${agent:-0}" 2>/dev/null || true
    docker-compose -f "$work/app/docker-compose.yml" down -t 1 >/dev/null 2>&1 || true
    hwprov engine stop "$work/engine"
    rm -rf "$work"
}
trap cleanup EXIT
eval "$(hwprov engine start "$work/engine")"

# 3. A service that wants a GPS on a USB serial adapter, by what it is, not by /dev name.
mkdir "$work/app"
cat > "$work/app/docker-compose.yml" <<'YAML'
services:
  gps:
    image: hwprov/busybox:latest
    pull_policy: never
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]
    init: true
    restart: always
    labels:
      io.hwprov.device.gps: "kind=serial, vendor=0403, model=6001, path=/dev/gps"
YAML
docker-compose -f "$work/app/docker-compose.yml" up -d

# 4. hwprov on a simulated Raspberry Pi 4, following its hardware.
hwprov sim run --board rpi4b --control "$work/sim.sock" -- \
    hwprov run -f "$work/app/docker-compose.yml" --log-format text &
agent=$!
until hwprov sim status --control "$work/sim.sock" >/dev/null 2>&1; do sleep 0.2; done

# 5. Plug an FTDI adapter into the simulated Pi: the service is recreated with /dev/gps.
hwprov sim plug ftdi --control "$work/sim.sock"
until docker exec app-gps-1 test -c /dev/gps 2>/dev/null; do sleep 0.2; done
docker exec app-gps-1 ls -l /dev/gps
docker inspect -f 'privileged: {{.HostConfig.Privileged}}' app-gps-1
