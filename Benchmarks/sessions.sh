#!/usr/bin/env bash
# Many WebSocket sessions through `siotap proxy --record` at once, and what each costs the proxy
# in resident memory: `siotap load` opens SESSIONS users (each asks `message-with-ack` every five
# seconds, Benchmarks/load_capture.py at --speed 0.2) through the proxy to the built-in conformance server, and the
# proxy's RSS is read before they start and once they are all up. A relayed session takes two of
# the proxy's descriptors; the open-file hard limit (`ulimit -Hn`) caps SESSIONS at about half of it.
#
#   SESSIONS=9000 Benchmarks/sessions.sh
#   HEAPTRACK=1 SESSIONS=2000 Benchmarks/sessions.sh    # the proxy under heaptrack: who holds what
#                                                       # (profile kept in HEAPTRACK_OUT, /tmp/siotap-sessions.heaptrack.zst)
#
# Release build; loopback only; everything started here is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${SESSIONS:-9000}
HOLD=${HOLD:-20}
RAMP=${RAMP:-20}
if [ -n "${SIOTAP_BIN:-}" ]; then BIN=$SIOTAP_BIN; else
    swift build -c release --product siotap >/dev/null
    BIN="$(swift build -c release --show-bin-path)/siotap"
fi
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

"$BIN" serve --app conformance --listen 127.0.0.1:0 > "$work/serve.out" 2>/dev/null &
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
server=$(sed -E 's|.*listening on (http://[^/]+)/.*|\1|' "$work/serve.out" | head -n 1)
proxy_command=("$BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/capture.jsonl" --quiet)
if [ "${HEAPTRACK:-0}" = 1 ]; then
    heaptrack -o "$work/heaptrack" "${proxy_command[@]}" 2> "$work/proxy.err" > "$work/heaptrack.out" &
    heaptrack_job=$!
else
    "${proxy_command[@]}" 2> "$work/proxy.err" &
fi
until grep -q "listening on" "$work/proxy.err" 2>/dev/null; do sleep 0.1; done
proxy=$(sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/proxy.err" | head -n 1)
proxy_pid=$(pgrep -n -f -- "--upstream $server")

rss() { awk '/VmRSS/ { print $2 }' "/proc/$proxy_pid/status"; }
fds() { ls "/proc/$proxy_pid/fd" | wc -l; }
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ); $SESSIONS websocket sessions through the proxy, started over ${RAMP} s, held ${HOLD} s"
idle=$(rss)
python3 Benchmarks/load_capture.py $((RAMP + HOLD + 5)) > "$work/load.jsonl"
"$BIN" load "$work/load.jsonl" --target "$proxy" --users "$SESSIONS" --ramp "${RAMP}s" --duration "$((RAMP + HOLD))s" --speed 0.2 --json --quiet > "$work/load.json" &
load_pid=$!
sleep $((RAMP + HOLD / 2))
held=$(rss)
open=$(fds)
wait $load_pid || true
python3 - "$work/load.json" "$SESSIONS" "$idle" "$held" "$open" <<'PY'
import json, sys
result, sessions, idle, held, fds = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
errors = sum(result["errors"].values())
print(f"proxy RSS idle {idle / 1024:.1f} MB, with the sessions open {held / 1024:.1f} MB ({fds} descriptors): "
      f"{(held - idle) / sessions:.1f} kB per session")
print(f"load: {result['users']['peak']} peak, {result['acks']['message-with-ack']['count']} acks, p99 "
      f"{result['acks']['message-with-ack']['p99_ms']} ms, {errors} errors {result['errors'] or ''}")
PY
if [ "${HEAPTRACK:-0}" = 1 ]; then
    # Only heaptrack's job: a bare `wait` would wait for the server too, which runs until cleanup.
    kill -INT "$proxy_pid"; wait "$heaptrack_job" 2>/dev/null || true
    heaptrack_print -f "$work"/heaptrack*.zst -p 1 -a 0 -T 0 -n 20 -s 0 2>/dev/null | sed -n '/PEAK MEMORY CONSUMERS/,/^$/p' | head -n 120
    heaptrack_print -f "$work"/heaptrack*.zst -p 0 -a 0 -T 0 -s 0 2>/dev/null | tail -n 8
    cp "$work"/heaptrack*.zst "${HEAPTRACK_OUT:-/tmp/siotap-sessions.heaptrack.zst}"
    echo "the whole profile: heaptrack_print -f ${HEAPTRACK_OUT:-/tmp/siotap-sessions.heaptrack.zst} (or heaptrack --analyze)"
fi
