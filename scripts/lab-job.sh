#!/usr/bin/env bash
# A lab's CI job on labgrid: reserve a place by tags, wait for it, acquire it, run the HIL
# suite on it, keep its JUnit XML and HIL timing summary, release it: also when the run fails
# or the job is interrupted (docs/hil.md "A lab's job").
#
#   scripts/lab-job.sh [-n JOB] [-t KEY=VALUE]... [-e ENV.yaml] [-o DIR] [-- PYTEST ARGS...]
#
# LG_COORDINATOR names the coordinator; the env file (-e, default $HWPROV_LAB_ENV) reads the
# place as $LG_PLACE. Results go to DIR/PLACE/JOB/ (junit.xml, hil-summary-labgrid.json and
# .md, job.txt with the waits). Exit code: pytest's.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
job=job tags=() env="${HWPROV_LAB_ENV:-}" out="$here/.test-results/lab"
while getopts "n:t:e:o:" opt; do
    case $opt in
        n) job=$OPTARG ;;
        t) tags+=("$OPTARG") ;;
        e) env=$OPTARG ;;
        o) out=$OPTARG ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ ${1:-} == -- ]] && shift
((${#tags[@]})) || tags=(bench=hwprov)
[[ -n $env ]] || { echo "lab-job: no env file (-e or HWPROV_LAB_ENV)" >&2; exit 2; }
client="$here/.venv/bin/labgrid-client"
say() { echo "lab-job $job: $*" >&2; }

acquired="" token="" child="" work="$(mktemp -d)"
release() {
    # Whatever happened: the place goes back, and the reservation with it.
    [[ -n $token ]] || token="$(sed -n 's/^export LG_TOKEN=//p' "$work/reservation" 2>/dev/null)"
    if [[ -n $acquired ]]; then
        LG_TOKEN=$token "$client" -p + release >/dev/null || say "release failed"
    fi
    if [[ -n $token ]]; then
        "$client" cancel-reservation "$token" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
interrupted() {
    say interrupted
    # The child (the queue's client or pytest) first: on TERM the HIL suite tears the scenario
    # down (tests/hil/conftest.py), as on Ctrl-C. Not INT: a job started in the background by
    # a shell without job control has INT ignored, and so do its children.
    if [[ -n $child ]] && kill -TERM "$child" 2>/dev/null; then wait "$child" || true; fi
    exit 130
}
trap release EXIT
trap interrupted INT TERM
# Children run in the background and are waited for: bash runs a trap only between commands,
# and `wait` is one it interrupts.
run() { "$@" & child=$!; wait "$child"; }

t0=$(date +%s.%N)
# `--shell` prints the token (LG_TOKEN) as soon as the reservation exists, then waits for a
# place with these tags; `-p +` is then the reservation's place.
run env PYTHONUNBUFFERED=1 "$client" reserve --wait --shell "${tags[@]}" >"$work/reservation"
child=""
token="$(sed -n 's/^export LG_TOKEN=//p' "$work/reservation")"
export LG_TOKEN=$token
t1=$(date +%s.%N)
"$client" -p + acquire >/dev/null
acquired=1
LG_PLACE="$("$client" -p + show | sed -n "s/^Place '\(.*\)':$/\1/p")"
export LG_PLACE
say "place $LG_PLACE after $(python3 -c "print(f'{$t1 - $t0:.1f}')") s in the queue"
dest="$out/$LG_PLACE/$job"
mkdir -p "$dest"
rc=0
export HWPROV_HIL_RESULTS="$dest"
run "$here/.venv/bin/python" -m pytest "$here/tests/hil" \
    --bench labgrid -p labgrid --lg-env "$env" --junitxml="$dest/junit.xml" -p no:cacheprovider \
    "$@" || rc=$?
child=""
t2=$(date +%s.%N)
python3 -c "print(f'job $job place $LG_PLACE waited {$t1 - $t0:.1f} s ran {$t2 - $t1:.1f} s rc $rc')" \
    | tee "$dest/job.txt" >&2
exit $rc
