#!/usr/bin/env bash
# Codec speed: siotap's decoder/encoder (release build, one core) against the reference JS parser
# (Debian's node-socket.io-parser) on the same vectors, in one run, with the ratio per vector; and
# the msgpack parser against msgpack-python with python-socketio's packet layer.
# The two alternate for ROUNDS rounds and each keeps its best rate per vector: on a shared
# machine, the best of a few runs is the figure least disturbed by neighbours.
#
#   ROUNDS=3 Benchmarks/codec.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
swift build -c release --product CodecBenchmark >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in $(seq "$ROUNDS"); do
    "$(swift build -c release --show-bin-path)/CodecBenchmark" | tail -n +2 >> "$work/ours"
    NODE_PATH=/usr/share/nodejs node Benchmarks/reference-codec.js | tail -n +2 >> "$work/theirs"
    # The msgpack parser's reference: msgpack-python with python-socketio's packet layer.
    if [ -x .venv-peers/bin/python ] && .venv-peers/bin/python -c 'import msgpack' 2>/dev/null; then
        .venv-peers/bin/python Benchmarks/reference-msgpack.py | tail -n +2 >> "$work/theirs"
    fi
done
best() { sort -t $'\t' -k1,1 -k2,2nr "$1" | awk -F'\t' '$1 != last { print; last = $1 }'; }
best "$work/ours" > "$work/ours.best"
best "$work/theirs" > "$work/theirs.best"
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d); best of $ROUNDS alternating rounds"
printf "%-46s %14s %10s %14s %10s %7s\n" vector "siotap pkt/s" "MB/s" "reference pkt/s" "MB/s" ratio
join -t $'\t' "$work/ours.best" "$work/theirs.best" | while IFS=$'\t' read -r name a amb b bmb; do
    printf "%-46s %14s %10s %14s %10s %7.2f\n" "$name" "$a" "$amb" "$b" "$bmb" "$(echo "$a / $b" | bc -l)"
done
grep -E "polling|observe" "$work/ours.best" | awk -F'\t' '{printf "%-46s %14s %10s %14s %10s %7s\n", $1, $2, $3, "-", "-", "-"}'
