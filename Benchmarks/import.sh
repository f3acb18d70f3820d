#!/usr/bin/env bash
# siotap import's speed and memory on a big pcap, against tshark in the same run (Debian tshark:
# `-Y websocket -T fields -e websocket.payload`, which only extracts WebSocket payloads and
# decodes no Socket.IO). The pcap: one session recorded here with tcpdump on lo (python-socketio
# to python-socketio: polling, the upgrade, events, acks, binary), repeated on other client ports
# and later times (Benchmarks/grow_pcap.py) until it holds SIZE_MB. Times are wall clock, best of
# ROUNDS; memory is the peak RSS (/usr/bin/time), which must not grow with the file.
#
#   SIZE_MB=200 ROUNDS=3 Benchmarks/import.sh
# Needs root (tcpdump) and tshark (apt-get install tshark). Release build; loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-200}
ROUNDS=${ROUNDS:-3}
PY=.venv-peers/bin/python
[ -x "$PY" ] || { echo "run scripts/setup-peers.sh first" >&2; exit 2; }
# tshark is the comparison, not the measure: without it, siotap's figures alone.
command -v tshark >/dev/null || echo "tshark is not installed (apt-get install tshark): siotap's figures only" >&2
if [ -n "${SIOTAP_BIN:-}" ]; then BIN=$SIOTAP_BIN; else
    swift build -c release --product siotap >/dev/null
    BIN="$(swift build -c release --show-bin-path)/siotap"
fi
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$PY" Tests/interop/python_server.py conformance secret-for-the-benchmark-0123456789 aiohttp socket.io > "$work/server.out" 2>&1 &
until grep -q "listening on" "$work/server.out" 2>/dev/null; do sleep 0.1; done
url=$(sed -E 's|.*listening on (http://[^/]+)/.*|\1|' "$work/server.out" | head -n 1)
port=${url##*:}
tcpdump -i lo -U -B 65536 -s 0 -w "$work/seed.pcap" "tcp port $port" 2> "$work/tcpdump.err" &
dump=$!
until grep -q "listening on" "$work/tcpdump.err" 2>/dev/null; do sleep 0.1; done
"$PY" - "$url" <<'PY'
import asyncio, sys
import socketio

async def main():
    client = socketio.AsyncClient(reconnection=False)
    backs = []
    client.on("message-back", lambda *args: backs.append(args))
    await client.connect(sys.argv[1], transports=["polling", "websocket"])
    for index in range(200):
        await client.emit("message", {"index": index, "text": "benchmark " * 5, "float": 1.50})
        await client.call("message-with-ack", [index, b"\x00\x01"])
    await client.emit("message", b"\x00" * 300)
    while len(backs) < 201:
        await asyncio.sleep(0.01)
    await client.disconnect()

asyncio.run(main())
PY
sleep 0.3
kill -INT $dump
wait $dump 2>/dev/null || true
copies=$(python3 Benchmarks/grow_pcap.py "$work/seed.pcap" "$work/big.pcap" "$SIZE_MB" "$port")
size=$(du -m "$work/big.pcap" | cut -f1)
# KEEP_SEED=FILE keeps the one-session seed, for profiling (grow it again with grow_pcap.py).
[ -n "${KEEP_SEED:-}" ] && cp "$work/seed.pcap" "$KEEP_SEED" && echo "seed kept in $KEEP_SEED (server port $port)"
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); pcap of $size MB: $copies copies of one session ($(du -k "$work/seed.pcap" | cut -f1) KB)"

best() {  # command...: prints "seconds peak_kb", the best time of ROUNDS
    local best_time="" best_rss=""
    for _ in $(seq "$ROUNDS"); do
        /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
        read -r seconds rss < "$work/time"
        if [ -z "$best_time" ] || awk "BEGIN { exit !($seconds < $best_time) }"; then best_time=$seconds; best_rss=$rss; fi
    done
    echo "$best_time $best_rss"
}
read -r siotap_s siotap_kb <<< "$(best "$BIN" import "$work/big.pcap" --quiet --record "$work/out.jsonl")"
tail -n 1 "$work/err"
if command -v tshark >/dev/null; then
    read -r tshark_s tshark_kb <<< "$(best tshark -r "$work/big.pcap" -Y websocket -T fields -e websocket.payload)"
fi
# The same on a tenth of the file: memory that grows with the file shows here.
python3 Benchmarks/grow_pcap.py "$work/seed.pcap" "$work/small.pcap" $((SIZE_MB / 10)) "$port" > /dev/null
read -r small_s small_kb <<< "$(best "$BIN" import "$work/small.pcap" --quiet --record "$work/out-small.jsonl")"
printf '%-28s %10s %12s\n' "" "seconds" "peak RSS MB"
printf '%-28s %10s %12s\n' "siotap import ($size MB)" "$siotap_s" "$((siotap_kb / 1024))"
printf '%-28s %10s %12s\n' "siotap import ($((SIZE_MB / 10)) MB)" "$small_s" "$((small_kb / 1024))"
if [ -n "${tshark_s:-}" ]; then
    printf '%-28s %10s %12s\n' "tshark -Y websocket ($size MB)" "$tshark_s" "$((tshark_kb / 1024))"
    awk "BEGIN { printf \"siotap is %.1fx tshark's speed; %.0f MB/s\n\", $tshark_s / $siotap_s, $size / $siotap_s }"
else
    awk "BEGIN { printf \"siotap: %.0f MB/s\n\", $size / $siotap_s }"
fi
