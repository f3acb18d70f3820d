#!/usr/bin/env bash
# What relaying a Socket.IO message costs, in one run and alternating: the built-in conformance
# server direct, behind nginx (a plain WebSocket relay: the floor for relaying without decoding,
# Tests/interop/stacks/nginx.conf), behind `siotap proxy --record`, and behind mitmproxy if
# `mitmdump` is on the PATH. The same independent load client (Benchmarks/relay_load.py, aiohttp)
# drives each; per relay it prints the relay process's CPU microseconds per round trip (the server's
# own for "direct"), the throughput at full speed, and the latency added at 500 round trips a
# second (p50 and p99 against direct), medians of the rounds. siotap runs with one event loop, as
# nginx runs one worker, and with NIO's default (one loop per core) as "siotap-N".
#
# With TRANSPORT=polling, the clients long-poll instead (a round trip is a POST and a GET), and
# nginx keeps its upstream connections (Benchmarks/nginx-keepalive.conf), as siotap does.
#
# With FAULTS=1, also "siotap-fault": one loop and a --fault rule that matches nothing, which puts
# the relay in its message-by-message mode: what --fault costs before any fault is injected.
#
# With BASELINE_BIN=path (another build of siotap), also "baseline": that build's proxy with one
# loop, measured in the same rounds, for an A/B of a change.
#
#   ROUNDS=5 SECONDS_PER_RUN=5 CLIENTS=20 Benchmarks/relay-cpu.sh
# Release build; loopback only; every process started here is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-20}
PY=.venv-peers/bin/python
[ -x "$PY" ] || { echo "run scripts/setup-peers.sh first (it installs aiohttp and nginx)" >&2; exit 2; }
source Benchmarks/server-and-proxy.sh

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Gives up after 10 s (a relay that failed to start, its error above) rather than waiting forever.
wait_port() {
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return; sleep 0.1; done
    echo "nothing listens on port $1 after 10 s" >&2; exit 1
}

mkdir -p "$work/nginx"
nginx_port=$(free_port)
nginx_conf=Tests/interop/stacks/nginx.conf
[ "${TRANSPORT:-websocket}" = polling ] && nginx_conf=Benchmarks/nginx-keepalive.conf
export TRANSPORT=${TRANSPORT:-websocket}
sed -e "s|{dir}|$work/nginx|g" -e "s|{port}|$nginx_port|g" -e "s|{upstream_port}|${server##*:}|g" \
    -e "s|{servers}|server 127.0.0.1:${server##*:};|" -e "s|{read_timeout}|60s|" \
    -e 's|{upgrade_headers}|proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;|' \
    "$nginx_conf" > "$work/nginx/nginx.conf"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
wait_port "$nginx_port"

# nginx runs one worker (one thread); the same for siotap: one event loop, as
# NIO_SINGLETON_GROUP_LOOP_COUNT=1 sets it. The proxy of server-and-proxy.sh, with NIO's default of
# one loop per core, is measured too ("siotap-2").
NIO_SINGLETON_GROUP_LOOP_COUNT=1 "$BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/capture-1.jsonl" --quiet 2> "$work/proxy-1.err" &
proxy1_pid=$!
until grep -q "listening on" "$work/proxy-1.err" 2>/dev/null; do sleep 0.1; done
proxy1=$(sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/proxy-1.err" | head -n 1)

relays=("direct $server $server_pid" "nginx http://127.0.0.1:$nginx_port $nginx_pid" "siotap $proxy1 $proxy1_pid" "siotap-$(nproc) $proxy $proxy_pid")
if [ "${FAULTS:-0}" = 1 ]; then
    NIO_SINGLETON_GROUP_LOOP_COUNT=1 "$BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/capture-f.jsonl" --quiet \
        --fault 'drop,event=never-sent-by-the-load' 2> "$work/proxy-f.err" &
    proxyf_pid=$!
    until grep -q "listening on" "$work/proxy-f.err" 2>/dev/null; do sleep 0.1; done
    relays+=("siotap-fault $(sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/proxy-f.err" | head -n 1) $proxyf_pid")
fi
if [ -n "${BASELINE_BIN:-}" ]; then
    NIO_SINGLETON_GROUP_LOOP_COUNT=1 "$BASELINE_BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/capture-b.jsonl" --quiet \
        2> "$work/proxy-b.err" &
    proxyb_pid=$!
    until grep -q "listening on" "$work/proxy-b.err" 2>/dev/null; do sleep 0.1; done
    relays+=("baseline $(sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/proxy-b.err" | head -n 1) $proxyb_pid")
fi
if command -v mitmdump >/dev/null; then
    mitm_port=$(free_port)
    mitmdump -q --mode "reverse:$server" -p "$mitm_port" --listen-host 127.0.0.1 -w "$work/mitm.flows" &
    relays+=("mitmproxy http://127.0.0.1:$mitm_port $!")
    wait_port "$mitm_port"
fi

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $TRANSPORT, $CLIENTS clients, ${SECONDS_PER_RUN} s a run, median of $ROUNDS rounds, relays alternating"
results="$work/results.jsonl"
for round in $(seq "$ROUNDS"); do
    # Every other round in the reverse order: a relay measured later in a round measured worse
    # (by some 7 % on polling, from a swapped A/B), so a fixed order favours the first ones. An
    # even ROUNDS gives each order the same weight.
    order=("${relays[@]}")
    if (( round % 2 == 0 )); then
        order=(); for (( i = ${#relays[@]} - 1; i >= 0; i-- )); do order+=("${relays[i]}"); done
    fi
    for relay in "${order[@]}"; do
        read -r name url pid <<< "$relay"
        full=$("$PY" Benchmarks/relay_load.py "$url" "$CLIENTS" "$SECONDS_PER_RUN" - "$pid")
        paced=$("$PY" Benchmarks/relay_load.py "$url" "$CLIENTS" "$SECONDS_PER_RUN" 500 "$pid")
        echo "{\"relay\": \"$name\", \"full\": $full, \"paced\": $paced}" >> "$results"
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
names = list(dict.fromkeys(r["relay"] for r in runs))
med = lambda name, f: statistics.median(f(r) for r in runs if r["relay"] == name)
direct50, direct99 = med("direct", lambda r: r["paced"]["p50_ms"]), med("direct", lambda r: r["paced"]["p99_ms"])
nginx_cpu = med("nginx", lambda r: r["full"]["cpu_us_per_round_trip"]) if "nginx" in names else None
print(f"{'relay':<10} {'CPU us/rt':>10} {'x nginx':>8} {'full speed rt/s':>16} {'p50 @500/s':>11} {'p50 added':>10} {'p99 @500/s':>11} {'p99 added':>10}")
for name in names:
    cpu = med(name, lambda r: r["full"]["cpu_us_per_round_trip"])
    p50, p99 = med(name, lambda r: r["paced"]["p50_ms"]), med(name, lambda r: r["paced"]["p99_ms"])
    ratio = f"{cpu / nginx_cpu:8.2f}" if nginx_cpu and name != "direct" else f"{'-':>8}"
    added50 = f"{p50 - direct50:10.3f}" if name != "direct" else f"{'-':>10}"
    added99 = f"{p99 - direct99:10.3f}" if name != "direct" else f"{'-':>10}"
    print(f"{name:<10} {cpu:10.1f} {ratio} {med(name, lambda r: r['full']['per_second']):16.0f} {p50:11.3f} {added50} {p99:11.3f} {added99}")
PY
echo "(direct: the server's own CPU per round trip; relays: the relay process's. captures: $(cat "$work/capture-1.jsonl" "$work/capture.jsonl" | wc -l) records)"
