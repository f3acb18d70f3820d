#!/usr/bin/env bash
# Proxy overhead, in one run: siotap bench against the built-in conformance server directly and
# through `siotap proxy --record`, for websocket and polling, 1 and 50 clients, and one client
# paced at 1,000 round trips a second (the latency target); prints medians and ratios. When nginx
# is installed (scripts/setup-peers.sh), through nginx too (Benchmarks/nginx-keepalive.conf): the
# floor for a relay that keeps its upstream connections and decodes nothing.
#
#   MESSAGES=2000 ROUNDS=3 Benchmarks/proxy-overhead.sh
#   ONLY=1000 ROUNDS=9 Benchmarks/proxy-overhead.sh     # only the rows whose spec contains ONLY
# Release build; loopback only; every process started here is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-2000}
ROUNDS=${ROUNDS:-3}
source Benchmarks/server-and-proxy.sh

targets=("$server" "$proxy")
if command -v nginx >/dev/null; then
    mkdir -p "$work/nginx"
    nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sed -e "s|{dir}|$work/nginx|g" -e "s|{port}|$nginx_port|g" -e "s|{upstream_port}|${server##*:}|g" \
        Benchmarks/nginx-keepalive.conf > "$work/nginx/nginx.conf"
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $nginx_port), 1)" 2>/dev/null; do sleep 0.1; done
    targets+=("http://127.0.0.1:$nginx_port")
fi

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); median of $ROUNDS rounds, direct, proxied (and nginx) runs alternating"
printf "%-10s %7s %-9s %12s %12s %7s %10s %10s %10s %10s %12s %7s\n" transport clients pace "direct msg/s" "proxy msg/s" ratio "direct p50" "p50 added" "direct p99" "p99 added" "nginx msg/s" "ratio"
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
        for target in "${targets[@]}"; do
            results+=("$("$BIN" bench --target "$target" --clients "$clients" --messages "$count" --transport "$transport" "${pace[@]}" --json 2>/dev/null)")
        done
    done
    python3 - "$transport" "$clients" "$label" "${#targets[@]}" "${results[@]}" <<'PY'
import json, statistics, sys
transport, clients, label, width, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), [json.loads(r) for r in sys.argv[5:]]
direct, through, nginx = runs[0::width], runs[1::width], runs[2::width]
med = lambda rs, f: statistics.median(f(r) for r in rs)
d, p = med(direct, lambda r: r["messages_per_second"]), med(through, lambda r: r["messages_per_second"])
dp50, pp50 = med(direct, lambda r: r["latency_ms"]["p50"]), med(through, lambda r: r["latency_ms"]["p50"])
dp99, pp99 = med(direct, lambda r: r["latency_ms"]["p99"]), med(through, lambda r: r["latency_ms"]["p99"])
n = med(nginx, lambda r: r["messages_per_second"]) if nginx else None
tail = f" {n:>12.0f} {n / d:>7.2f}" if n else f" {'-':>12} {'-':>7}"
print(f"{transport:<10} {clients:>7} {label:<9} {d:>12.0f} {p:>12.0f} {p / d:>7.2f} {dp50:>10.3f} {pp50 - dp50:>10.3f} {dp99:>10.3f} {pp99 - dp99:>10.3f}" + tail)
PY
done
echo "capture: $(wc -l < "$work/capture.jsonl") records written by the proxy during the run"
