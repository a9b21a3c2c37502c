#!/usr/bin/env bash
# The main job on the embedded default board: a simulated Raspberry Pi 4, a private Docker
# engine, an example compose project, and a sensor plugged in while it runs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh
exec .venv/bin/hwprov demo "$@"
