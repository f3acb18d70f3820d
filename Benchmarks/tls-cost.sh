#!/usr/bin/env bash
# What TLS costs in the proxy: `siotap proxy --record` with a plain listener and with `--tls auto`
# (a leaf of a CA made here), in front of the built-in conformance server, one event loop each;
# nginx (one worker) plain and with TLS, as the reference for what TLS costs a relay. Alternating.
# Per listener: the set-up of a WebSocket session on a new connection (time, and the relay's CPU
# per connection: TLS adds the handshake), then messages on open connections (the relay's CPU per
# round trip and the latency at 500 round trips a second: TLS adds the record layer's encryption).
# Independent aiohttp clients (Benchmarks/connect_cost.py, relay_load.py).
#
#   ROUNDS=3 CONNECTIONS=600 SECONDS_PER_RUN=5 CLIENTS=20 Benchmarks/tls-cost.sh
# Release build; loopback only; every process started here is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-600}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-20}
PY=.venv-peers/bin/python
[ -x "$PY" ] || { echo "run scripts/setup-peers.sh first (it installs aiohttp)" >&2; exit 2; }
source Benchmarks/server-and-proxy.sh

"$BIN" ca init --dir "$work/ca" > /dev/null
start_proxy() {  # name, extra arguments...
    local name=$1
    shift
    NIO_SINGLETON_GROUP_LOOP_COUNT=1 "$BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/$name.jsonl" --quiet "$@" 2> "$work/$name.err" &
    echo $! > "$work/$name.pid"
    until grep -q "listening on" "$work/$name.err" 2>/dev/null; do sleep 0.1; done
}
start_proxy plain
start_proxy tls --tls auto --ca-dir "$work/ca"
url_of() { sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/$1.err" | head -n 1; }

# nginx's certificate: self-signed for 127.0.0.1 (the benchmark's own business; siotap mints its own).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Gives up after 10 s (a relay that failed to start, its error above) rather than waiting forever.
wait_port() {
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return; sleep 0.1; done
    echo "nothing listens on port $1 after 10 s" >&2; exit 1
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/nginx-key.pem" -out "$work/nginx-cert.pem" 2>/dev/null
start_nginx() {  # name, "ssl" or ""
    mkdir -p "$work/$1"
    local port
    port=$(free_port)
    local listen="listen 127.0.0.1:$port;"
    [ -n "$2" ] && listen="listen 127.0.0.1:$port ssl; ssl_certificate $work/nginx-cert.pem; ssl_certificate_key $work/nginx-key.pem;"
    sed -e "s|{dir}|$work/$1|g" -e "s|listen 127.0.0.1:{port};|$listen|" -e "s|{upstream_port}|${server##*:}|g" \
    -e "s|{servers}|server 127.0.0.1:${server##*:};|" -e "s|{read_timeout}|60s|" \
    -e 's|{upgrade_headers}|proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;|' \
        Tests/interop/stacks/nginx.conf > "$work/$1/nginx.conf"
    nginx -c "$work/$1/nginx.conf" -p "$work/$1" &
    echo $! > "$work/$1.pid"
    wait_port "$port"
    echo "$port" > "$work/$1.port"
}
start_nginx nginx ""
start_nginx nginx-tls ssl

# name url pid cafile
listeners=("siotap $(url_of plain) $(cat "$work/plain.pid") -"
           "siotap-tls $(url_of tls) $(cat "$work/tls.pid") $work/ca/ca.pem"
           "nginx http://127.0.0.1:$(cat "$work/nginx.port") $(cat "$work/nginx.pid") -"
           "nginx-tls https://127.0.0.1:$(cat "$work/nginx-tls.port") $(cat "$work/nginx-tls.pid") $work/nginx-cert.pem")

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $CONNECTIONS connections, $CLIENTS clients for ${SECONDS_PER_RUN} s, median of $ROUNDS rounds"
results="$work/results.jsonl"
for round in $(seq "$ROUNDS"); do
    for listener in "${listeners[@]}"; do
        read -r name url pid cafile <<< "$listener"
        if [ "$cafile" = - ]; then unset CAFILE; else export CAFILE=$cafile; fi
        connect=$("$PY" Benchmarks/connect_cost.py "$url" "$CONNECTIONS" "$pid")
        full=$("$PY" Benchmarks/relay_load.py "$url" "$CLIENTS" "$SECONDS_PER_RUN" - "$pid")
        paced=$("$PY" Benchmarks/relay_load.py "$url" "$CLIENTS" "$SECONDS_PER_RUN" 500 "$pid")
        echo "{\"listener\": \"$name\", \"connect\": $connect, \"full\": $full, \"paced\": $paced}" >> "$results"
    done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def median(name, part, field):
    return statistics.median(r[part][field] for r in rows if r["listener"] == name)
print(f"{'listener':10} {'set-up ms':>10} {'CPU us/conn':>12} {'CPU us/rt':>10} {'rt/s':>8} {'p50 ms @500/s':>14} {'p99 ms @500/s':>14}")
for name in ("siotap", "siotap-tls", "nginx", "nginx-tls"):
    print(f"{name:10} {median(name, 'connect', 'mean_ms'):10.2f} {median(name, 'connect', 'cpu_us_per_connection'):12.0f} "
          f"{median(name, 'full', 'cpu_us_per_round_trip'):10.1f} {median(name, 'full', 'per_second'):8.0f} "
          f"{median(name, 'paced', 'p50_ms'):14.3f} {median(name, 'paced', 'p99_ms'):14.3f}")
for relay in ("siotap", "nginx"):
    handshake = median(relay + "-tls", "connect", "cpu_us_per_connection") - median(relay, "connect", "cpu_us_per_connection")
    per_message = median(relay + "-tls", "full", "cpu_us_per_round_trip") - median(relay, "full", "cpu_us_per_round_trip")
    print(f"{relay}: TLS adds {handshake:.0f} us of CPU per connection (the handshake) and {per_message:.1f} us per round trip")
PY
