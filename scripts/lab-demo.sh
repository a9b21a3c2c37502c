#!/usr/bin/env bash
# Three CI jobs for two places, through labgrid's reservations (run inside a lab:
# `python -m lab.privatelab --places 2 -- bash scripts/lab-demo.sh`, as scripts/test.sh does).
# "plug" and "sensor" run one scenario each and take both places; "all", started last, waits in
# the coordinator's queue until one is released, then runs every HIL scenario (alone: the
# scenarios wait on the agent with timeouts, and two suites at once on two cores is not what
# a lab's benches are). Then a job whose run fails, and one
# interrupted (SIGTERM) once its scenario's agent runs, must give their place back too, the
# interrupted one with its scenario torn down on the device. Fails if any of the three fails,
# or a place is left acquired, or the interrupted scenario left its agent or containers.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$here/.test-results/lab"
rm -rf "$out"
pids=()
bash "$here/scripts/lab-job.sh" -n plug -o "$out" -- -q -k hot_plug & pids+=($!)
sleep 0.5
bash "$here/scripts/lab-job.sh" -n sensor -o "$out" -- -q -k sensor & pids+=($!)
sleep 0.5
bash "$here/scripts/lab-job.sh" -n all -o "$out" -- -q & pids+=($!)
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
cat "$out"/*/*/job.txt
client="$here/.venv/bin/labgrid-client"
held() { "$client" who | tail -n +2; }  # below its header line
failing=0
bash "$here/scripts/lab-job.sh" -n failing -o "$out" -- -q -k no_such_scenario || failing=$?
if ((failing != 5)); then echo "lab-demo: the failing job said $failing, not pytest's 5" >&2; rc=1; fi
bash "$here/scripts/lab-job.sh" -n interrupted -o "$out" -- -q -k hot_plug \
    >"$out/interrupted.log" 2>&1 &
job=$!
# Into the scenario: its agent runs on the place's device (this machine: the lab's places).
lab="$(dirname "$HWPROV_LAB_ENV")"
agent() { pgrep -f "hwprov run -f $lab/places/" >/dev/null; }
for _ in $(seq 600); do agent && break; sleep 0.1; done
agent || { echo "lab-demo: the interrupted job's scenario never started" >&2; rc=1; }
kill -TERM "$job"
stopped=0
wait "$job" || stopped=$?
if ((stopped != 130)); then echo "lab-demo: the interrupted job said $stopped" >&2; rc=1; fi
# pytest stopped mid-scenario and tore it down, rather than finishing it
if ! grep -q "KeyboardInterrupt" "$out/interrupted.log"; then
    echo "lab-demo: the interrupted job's pytest was not interrupted:" >&2
    tail -5 "$out/interrupted.log" >&2
    rc=1
fi
# Torn down on the device: no agent, no container left in either place's engine.
if agent; then echo "lab-demo: the interrupted scenario's agent still runs" >&2; rc=1; fi
for sock in "$lab"/places/*/engine/docker.sock; do
    containers="$("$here/.venv/bin/python" -c 'import docker, sys
print(len(docker.DockerClient(base_url=sys.argv[1]).containers.list(all=True)))' "unix://$sock")"
    ((containers == 0)) || { echo "lab-demo: $containers containers left in $sock" >&2; rc=1; }
done
# The scenarios' USB plugs went through labgrid's USBPowerDriver: the lab host's uhubctl.
switched="$(grep -c ' plug ' "$lab/hubs.log" 2>/dev/null || true)"
if ((${switched:-0} == 0)); then echo "lab-demo: no USB plug through uhubctl" >&2; rc=1; fi
echo "lab-demo: uhubctl switched units on $switched times"
left="$(held)"
if [[ -n $left ]]; then echo "lab-demo: places still acquired: $left" >&2; rc=1; fi
for f in "$out"/*/{all,plug,sensor}/junit.xml; do [[ -s $f ]] || { echo "lab-demo: empty $f" >&2; rc=1; }; done
exit $rc
