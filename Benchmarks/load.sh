#!/usr/bin/env bash
# siotap load next to Locust 2.x with python-socketio users, the way people load-test Socket.IO
# today: the same scenario (each user connects over WebSocket to the built-in conformance app and
# asks `message-with-ack` once a second), the same server (`siotap serve`, release build), one
# after the other. Reports, for each load generator: users it held, the CPU it used (from /proc),
# users per core at that rate (CPU seconds over the run's length less half the ramp), peak memory,
# memory per user (peak less the RSS just after start, over the users), the ack's p50/p99.
#
#   USERS=500 DURATION=30 Benchmarks/load.sh
#   USERS=10000 RAMP=20 LOCUST=0 Benchmarks/load.sh    # siotap alone: 10,000 users on one machine
#
# Installs Locust into .venv-locust the first time (PyPI). Loopback only; everything started here
# is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-500}
DURATION=${DURATION:-30}
RAMP=${RAMP:-10}
if [ -n "${SIOTAP_BIN:-}" ]; then BIN=$SIOTAP_BIN; else
    swift build -c release --product siotap >/dev/null
    BIN="$(swift build -c release --show-bin-path)/siotap"
fi
[ "${LOCUST:-1}" = 0 ] || [ -x .venv-locust/bin/locust ] || { python3 -m venv .venv-locust && .venv-locust/bin/pip install -q locust==2.47.0 "python-socketio[client]==5.18.1"; }
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$BIN" serve --app conformance --listen 127.0.0.1:0 > "$work/serve.out" 2>/dev/null &
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
target=$(sed -E 's|.*listening on (http://[^/]+)/.*|\1|' "$work/serve.out" | head -n 1)

# CPU seconds (user + system) of a process and its threads, and its RSS and peak RSS in kB.
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
peak() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }
# Samples a process until it ends: its last CPU figure, its RSS once started (before its users:
# the ramp has barely begun) and its peak RSS.
watch_process() {
    local pid=$1 last_cpu=0 last_peak=0 first=""
    while kill -0 "$pid" 2>/dev/null; do
        last_cpu=$(cpu "$pid" 2>/dev/null || echo "$last_cpu"); last_peak=$(peak "$pid" 2>/dev/null || echo "$last_peak")
        [ -n "$first" ] || first=$(rss "$pid" 2>/dev/null || true)
        sleep 0.2
    done
    echo "$last_cpu ${first:-0} $last_peak"
}
report() {  # name users cpu_seconds base_kb peak_kb p50_ms p99_ms
    awk -v name="$1" -v users="$2" -v cpu="$3" -v base="$4" -v peak="$5" -v p50="$6" -v p99="$7" -v duration="$DURATION" -v ramp="$RAMP" 'BEGIN {
        busy = duration + ramp / 2; cores = cpu / busy
        printf "%-14s %6d users  %7.2f CPU s  %5.3f cores  %8.0f users/core  %7.1f MB peak  %6.1f kB/user  p50 %6.2f ms  p99 %7.2f ms\n",
            name, users, cpu, cores, (cores > 0 ? users / cores : 0), peak / 1024, (peak - base) / users, p50, p99 }'
}
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); $USERS users, one acked event a second each, ${DURATION} s after a ${RAMP} s ramp"

# siotap load
python3 Benchmarks/load_capture.py "$DURATION" > "$work/capture.jsonl"
"$BIN" load "$work/capture.jsonl" --target "$target" --users "$USERS" --ramp "${RAMP}s" --json --quiet > "$work/siotap.json" &
pid=$!
read -r siotap_cpu siotap_base siotap_peak < <(watch_process $pid)
wait $pid || true
read -r p50 p99 acks errors < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); a=r["acks"]["message-with-ack"]; print(a["p50_ms"], a["p99_ms"], a["count"], sum(r["errors"].values()))' "$work/siotap.json")
report "siotap load" "$USERS" "$siotap_cpu" "$siotap_base" "$siotap_peak" "$p50" "$p99"
echo "               acks $acks, errors $errors"

[ "${LOCUST:-1}" != 0 ] || exit 0

# Locust, headless, one process (as its users per core are counted)
TARGET="$target" .venv-locust/bin/locust -f Benchmarks/locust_users.py --headless -u "$USERS" -r $((USERS / RAMP > 0 ? USERS / RAMP : 1)) \
    -t "$((DURATION + RAMP))s" --csv "$work/locust" --only-summary > "$work/locust.out" 2>&1 &
pid=$!
read -r locust_cpu locust_base locust_peak < <(watch_process $pid)
wait $pid || true
read -r p50 p99 acks errors < <(python3 -c '
import csv, sys
for row in csv.DictReader(open(sys.argv[1])):
    if row["Name"] == "message-with-ack":
        print(row["50%"], row["99%"], row["Request Count"], row["Failure Count"])' "$work/locust_stats.csv")
report "locust" "$USERS" "$locust_cpu" "$locust_base" "$locust_peak" "$p50" "$p99"
echo "               acks $acks, errors $errors"
