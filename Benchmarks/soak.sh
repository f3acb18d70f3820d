#!/usr/bin/env bash
# Many sessions through `siotap proxy --record` for a long time, and the proxy's resident memory
# along the way. Defaults are the issue's target: 1,000 websocket sessions, one round trip per
# second each, for 10 minutes. Release build; loopback only; everything started here is stopped.
#
#   CLIENTS=1000 RATE=1 DURATION=600 Benchmarks/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${CLIENTS:-1000}
RATE=${RATE:-1}
DURATION=${DURATION:-600}
source Benchmarks/server-and-proxy.sh

rss() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$proxy_pid/status"; }
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $CLIENTS websocket clients, $RATE round trips/s each, $DURATION s"
echo "proxy RSS at start: $(rss) MB"
"$BIN" bench --target "$proxy" --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" --json > "$work/bench.json" 2> "$work/bench.err" &
bench_pid=$!
samples=()
while kill -0 "$bench_pid" 2>/dev/null; do
    sleep 10
    kill -0 "$bench_pid" 2>/dev/null || break
    sample=$(rss)
    samples+=("$sample")
    echo "  $(date -u +%H:%M:%S)  proxy RSS ${sample} MB, fds $(ls /proc/$proxy_pid/fd | wc -l), capture $(( $(stat -c %s "$work/capture.jsonl") / 1048576 )) MB, $(tail -n 1 "$work/bench.err")"
done
wait "$bench_pid" || { echo "bench failed:"; cat "$work/bench.err"; exit 1; }
printf '%s\n' "${samples[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "proxy RSS over the run: min %.1f MB, max %.1f MB\n", v[1], v[NR] }'
if [ ${#samples[@]} -ge 6 ]; then
    # Flat: the last minute's mean against the second minute's (after the sessions are all up).
    python3 - "${samples[@]}" <<'PY'
import sys
s = [float(v) for v in sys.argv[1:]]
early, late = sum(s[6:12]) / len(s[6:12]) if len(s) >= 12 else s[len(s) // 2], sum(s[-6:]) / len(s[-6:])
print(f"second minute mean {early:.1f} MB, last minute mean {late:.1f} MB, growth {late - early:+.1f} MB")
PY
fi
echo "bench: $(cat "$work/bench.json")"
echo "capture: $(wc -l < "$work/capture.jsonl") records"
