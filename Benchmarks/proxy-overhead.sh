#!/usr/bin/env bash
# Proxy overhead, in one run: siotap bench against the built-in conformance server directly and
# through `siotap proxy --record`, for websocket and polling, 1 and 50 clients; prints the ratios.
# Release build; loopback only; every process started here is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-2000}
swift build -c release --product siotap >/dev/null
BIN="$(swift build -c release --show-bin-path)/siotap"
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$BIN" serve --app conformance --listen 127.0.0.1:0 > "$work/serve.out" 2>/dev/null &
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
server=$(sed -E 's|.*listening on (http://[^/]+)/.*|\1|' "$work/serve.out" | head -n 1)
"$BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/capture.jsonl" --quiet 2> "$work/proxy.err" &
until grep -q "listening on" "$work/proxy.err" 2>/dev/null; do sleep 0.1; done
proxy=$(sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/proxy.err" | head -n 1)

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $MESSAGES round trips per client (50 clients: $((MESSAGES / 10)))"
printf "%-10s %7s %12s %12s %7s %12s %12s %9s\n" transport clients "direct msg/s" "proxy msg/s" ratio "direct p99" "proxy p99" "p99 added"
for transport in websocket polling; do
    for clients in 1 50; do
        count=$MESSAGES
        [ "$clients" -gt 1 ] && count=$((MESSAGES / 10))
        [ "$transport" = polling ] && count=$((count / 4))
        direct=$("$BIN" bench --target "$server" --clients "$clients" --messages "$count" --transport "$transport" --json 2>/dev/null)
        through=$("$BIN" bench --target "$proxy" --clients "$clients" --messages "$count" --transport "$transport" --json 2>/dev/null)
        python3 - "$transport" "$clients" "$direct" "$through" <<'PY'
import json, sys
transport, clients, direct, through = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
d, p = direct["messages_per_second"], through["messages_per_second"]
dp99, pp99 = direct["latency_ms"]["p99"], through["latency_ms"]["p99"]
print(f"{transport:<10} {clients:>7} {d:>12} {p:>12} {p / d:>7.2f} {dp99:>12.3f} {pp99:>12.3f} {pp99 - dp99:>9.3f}")
PY
    done
done
echo "capture: $(wc -l < "$work/capture.jsonl") records written by the proxy during the run"
