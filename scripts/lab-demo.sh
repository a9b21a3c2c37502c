#!/usr/bin/env bash
# Three CI jobs for two places, through labgrid's reservations (run inside a lab:
# `python -m lab.privatelab --places 2 -- bash scripts/lab-demo.sh`, as scripts/test.sh does).
# Job "all" runs every HIL scenario; "plug" and "sensor" one each, so one of the three waits
# in the coordinator's queue until a place is released. Then a job whose run fails and one
# interrupted mid-scenario (SIGTERM) must give their place back too. Fails if any of the three
# fails, or a place is left acquired.
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
client="$here/.venv/bin/labgrid-client"
held() { "$client" who | tail -n +2; }  # below its header line
failing=0
bash "$here/scripts/lab-job.sh" -n failing -o "$out" -- -q -k no_such_scenario || failing=$?
if ((failing != 5)); then echo "lab-demo: the failing job said $failing, not pytest's 5" >&2; rc=1; fi
bash "$here/scripts/lab-job.sh" -n interrupted -o "$out" -- -q -k hot_plug &
job=$!
for _ in $(seq 300); do [[ -n "$(held)" ]] && break; sleep 0.2; done
sleep 3  # into the scenario
kill -TERM "$job"
stopped=0
wait "$job" || stopped=$?
if ((stopped != 130)); then echo "lab-demo: the interrupted job said $stopped" >&2; rc=1; fi
left="$(held)"
if [[ -n $left ]]; then echo "lab-demo: places still acquired: $left" >&2; rc=1; fi
for f in "$out"/*/{all,plug,sensor}/junit.xml; do [[ -s $f ]] || { echo "lab-demo: empty $f" >&2; rc=1; }; done
exit $rc
