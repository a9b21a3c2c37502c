#!/usr/bin/env bash
# Three CI jobs for two places, through labgrid's reservations (run inside a lab:
# `python -m lab.privatelab --places 2 -- bash scripts/lab-demo.sh`, as scripts/test.sh does).
# Job "all" runs every HIL scenario; "plug" and "sensor" one each, so one of the three waits
# in the coordinator's queue until a place is released. Fails if any job fails or leaves its
# place acquired.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$here/.test-results/lab"
rm -rf "$out"
pids=()
bash "$here/scripts/lab-job.sh" -n all -o "$out" -- -q & pids+=($!)
sleep 0.5
bash "$here/scripts/lab-job.sh" -n plug -o "$out" -- -q -k hot_plug & pids+=($!)
sleep 0.5
bash "$here/scripts/lab-job.sh" -n sensor -o "$out" -- -q -k sensor & pids+=($!)
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
cat "$out"/*/*/job.txt
held="$("$here/.venv/bin/labgrid-client" who | tail -n +2)"  # below its header line
if [[ -n $held ]]; then echo "lab-demo: places still acquired: $held" >&2; rc=1; fi
for f in "$out"/*/*/junit.xml; do [[ -s $f ]] || { echo "lab-demo: empty $f" >&2; rc=1; }; done
exit $rc
