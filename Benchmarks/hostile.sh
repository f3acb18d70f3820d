#!/usr/bin/env bash
# The hostile inputs of #25, each with its time and the peak memory it takes (release build):
# small files that expand to gigabytes or cost time out of all proportion (Benchmarks/hostile_files.py
# makes them), and clients that never finish (Benchmarks/hostile_network.py). Loopback only; every
# process started here is stopped.
#
#   Benchmarks/hostile.sh            # every case (about 3 minutes)
#   CASES="import har" Benchmarks/hostile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${CASES:-"import reassembly har capture slowloris sni patterns idle hoard"}
PY=${PY:-python3}
if [ -n "${SIOTAP_BIN:-}" ]; then BIN=$SIOTAP_BIN; else
    swift build -c release --product siotap >/dev/null
    BIN="$(swift build -c release --show-bin-path)/siotap"
fi
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $BIN"

# Runs a command; prints its wall time and peak RSS.
measure() {
    local label=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { echo "$label: failed"; tail -n 3 "$work/err"; return 1; }
    read -r seconds kilobytes < "$work/time"
    printf '%-58s %7.2f s  %6.0f MB peak\n' "$label" "$seconds" "$(echo "$kilobytes / 1024" | bc -l)"
}

serve() {  # serve ARGS...: starts siotap serve, sets $served (its port)
    "$BIN" serve --listen 127.0.0.1:0 "$@" > "$work/serve.out" 2> "$work/serve.err" &
    until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
    served=$(sed -E 's|.*127\.0\.0\.1:([0-9]+).*|\1|' "$work/serve.out" | head -n 1)
}

proxy() {  # proxy ARGS...: starts siotap proxy, sets $proxy_pid and $port (its listening port)
    "$BIN" proxy --listen 127.0.0.1:0 --quiet "$@" 2> "$work/proxy.err" &
    proxy_pid=$!
    until grep -qE "listening on|forward proxy on" "$work/proxy.err" 2>/dev/null; do sleep 0.1; done
    port=$(sed -nE 's|.* on https?://127\.0\.0\.1:([0-9]+).*|\1|p' "$work/proxy.err" | head -n 1)
}

stop_proxy() { kill -INT $proxy_pid; wait $proxy_pid || true; }

for case in $CASES; do
    case $case in
    import)
        "$PY" Benchmarks/hostile_files.py "$work" gzip-polling deflate-websocket | sed 's/^/  made /'
        measure "import: 16 gzip bodies of 60 MiB (985 kB pcap)" "$BIN" import "$work/gzip-polling.pcap" --quiet --record "$work/a.jsonl"
        measure "import: 32 deflate messages of 60 MiB (1.96 MB pcap)" "$BIN" import "$work/deflate-websocket.pcap" --quiet --record "$work/b.jsonl"
        echo "  records past the budget: $(grep -c import.inflate_limit "$work/a.jsonl") and $(grep -c import.inflate_limit "$work/b.jsonl")"
        rm -f "$work"/*.pcap "$work"/*.jsonl ;;
    reassembly)
        "$PY" Benchmarks/hostile_files.py "$work" reassembly | sed 's/^/  made /'
        measure "import: 80,000 one-byte segments, last first (5.7 MB)" "$BIN" import "$work/reassembly.pcap" --quiet --record "$work/c.jsonl"
        rm -f "$work"/*.pcap "$work"/*.jsonl ;;
    har)
        "$PY" Benchmarks/hostile_files.py "$work" har | sed 's/^/  made /'
        measure "import: a HAR of 10^6 entries (250 MB)" "$BIN" import "$work/big.har" --quiet --record "$work/d.jsonl"
        rm -f "$work"/big.har "$work"/*.jsonl ;;
    capture)
        "$PY" Benchmarks/hostile_files.py "$work" long-line no-newline | sed 's/^/  made /'
        measure "redact: a capture with a 40 MB record" "$BIN" redact "$work/long-line.jsonl" --output "$work/redacted.jsonl"
        measure "replay: a 200 MB last line without a newline" "$BIN" replay "$work/no-newline.jsonl" --app chat || true
        # view serves what came before the long line, at once.
        "$BIN" view "$work/no-newline.jsonl" --ui 127.0.0.1:0 > /dev/null 2> "$work/view.err" &
        view=$!
        started=$(date +%s.%N)
        until grep -q "the inspector is at" "$work/view.err" 2>/dev/null; do sleep 0.05; done
        url=$(sed -nE 's/.*the inspector is at ([^ ]+).*/\1/p' "$work/view.err")
        printf '%-58s %7.2f s  (%s records served)\n' "view: listening, with a 200 MB line in the file" "$(echo "$(date +%s.%N) - $started" | bc -l)" \
            "$(curl -s "${url%%/\?*}/match?filter=&${url##*\?}" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["seqs"]))')"
        kill -INT $view; wait $view || true
        rm -f "$work"/*.jsonl ;;
    slowloris)
        serve --app chat
        proxy --upstream "http://127.0.0.1:$served"
        "$PY" Benchmarks/hostile_network.py slowloris "$port" 500 50
        stop_proxy ;;
    sni)
        serve --app chat  # takes the tunnels' TCP; each TLS handshake is with the proxy, which mints for its SNI
        proxy --mode forward --ca-dir "$work/ca"
        "$PY" Benchmarks/hostile_network.py sni "$port" "$served" "$proxy_pid" "${NAMES:-10000}"
        stop_proxy ;;
    patterns)
        serve --app chat
        proxy --mode forward --ca-dir "$work/ca" --ignore-hosts '(a+)+$'
        "$PY" Benchmarks/hostile_network.py patterns "$port" "$served" 8
        stop_proxy ;;
    idle)
        serve --app chat
        proxy --upstream "http://127.0.0.1:$served"
        (ulimit -n 65536 2>/dev/null || true; "$PY" Benchmarks/hostile_network.py idle "$port" "$proxy_pid" "${SESSIONS:-2000}")
        stop_proxy ;;
    hoard)
        # Peers that make the observer hold what they send (stray binary before any Socket.IO
        # packet, nine of ten announced attachments), to an upstream that takes anything.
        upstream_port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        "$PY" Benchmarks/hostile_network.py hoard-upstream "$upstream_port" &
        upstream_pid=$!
        sleep 0.5
        proxy --upstream "http://127.0.0.1:$upstream_port" --record "$work/hoard.jsonl"
        "$PY" Benchmarks/hostile_network.py hoard "$port" "$proxy_pid" "${HOARDERS:-4}" "${HOARD_MB:-16}"
        stop_proxy
        kill "$upstream_pid" 2>/dev/null || true
        rm -f "$work/hoard.jsonl" ;;
    *) echo "unknown case $case"; exit 2 ;;
    esac
done
