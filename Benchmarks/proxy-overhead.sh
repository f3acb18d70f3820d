#!/usr/bin/env bash
# Proxy overhead, in one run: siotap bench against the built-in conformance server directly and
# through `siotap proxy --record`, for websocket and polling, 1 and 50 clients, and one client
# paced at 1,000 round trips a second (the latency target); prints medians and ratios.
#
#   MESSAGES=2000 ROUNDS=3 Benchmarks/proxy-overhead.sh
#   ONLY=1000 ROUNDS=9 Benchmarks/proxy-overhead.sh     # only the rows whose spec contains ONLY
# Release build; loopback only; every process started here is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-2000}
ROUNDS=${ROUNDS:-3}
source Benchmarks/server-and-proxy.sh

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); median of $ROUNDS rounds, direct and proxied runs alternating"
printf "%-10s %7s %-9s %12s %12s %7s %10s %10s %10s %10s\n" transport clients pace "direct msg/s" "proxy msg/s" ratio "direct p50" "p50 added" "direct p99" "p99 added"
# transport clients messages-per-client [rate]
runs=(
    "websocket 1 $MESSAGES"
    "websocket 1 $MESSAGES 1000"
    "websocket 50 $((MESSAGES / 5))"
    "polling 1 $((MESSAGES / 4))"
    "polling 50 $((MESSAGES / 20))"
)
for run in "${runs[@]}"; do
    [[ -n "${ONLY:-}" && "$run" != *"$ONLY"* ]] && continue
    read -r transport clients count rate <<< "$run"
    pace=(); label="max"
    [ -n "${rate:-}" ] && pace=(--rate "$rate") && label="${rate}/s"
    results=()
    for _ in $(seq "$ROUNDS"); do
        for target in "$server" "$proxy"; do
            results+=("$("$BIN" bench --target "$target" --clients "$clients" --messages "$count" --transport "$transport" "${pace[@]}" --json 2>/dev/null)")
        done
    done
    python3 - "$transport" "$clients" "$label" "${results[@]}" <<'PY'
import json, statistics, sys
transport, clients, label, runs = sys.argv[1], sys.argv[2], sys.argv[3], [json.loads(r) for r in sys.argv[4:]]
direct, through = runs[0::2], runs[1::2]
med = lambda rs, f: statistics.median(f(r) for r in rs)
d, p = med(direct, lambda r: r["messages_per_second"]), med(through, lambda r: r["messages_per_second"])
dp50, pp50 = med(direct, lambda r: r["latency_ms"]["p50"]), med(through, lambda r: r["latency_ms"]["p50"])
dp99, pp99 = med(direct, lambda r: r["latency_ms"]["p99"]), med(through, lambda r: r["latency_ms"]["p99"])
print(f"{transport:<10} {clients:>7} {label:<9} {d:>12.0f} {p:>12.0f} {p / d:>7.2f} {dp50:>10.3f} {pp50 - dp50:>10.3f} {dp99:>10.3f} {pp99 - dp99:>10.3f}")
PY
done
echo "capture: $(wc -l < "$work/capture.jsonl") records written by the proxy during the run"
