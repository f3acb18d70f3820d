#!/usr/bin/env bash
# Codec speed: siotap's decoder/encoder (release build, one core) against the reference JS parser
# (Debian's node-socket.io-parser) on the same vectors, in one run, with the ratio per vector.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product CodecBenchmark >/dev/null
ours=$(mktemp) theirs=$(mktemp)
trap 'rm -f "$ours" "$theirs"' EXIT
"$(swift build -c release --show-bin-path)/CodecBenchmark" > "$ours"
NODE_PATH=/usr/share/nodejs node Benchmarks/reference-codec.js > "$theirs"
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)"
printf "%-46s %14s %10s %14s %10s %7s\n" vector "siotap pkt/s" "MB/s" "reference pkt/s" "MB/s" ratio
join -t $'\t' <(tail -n +2 "$ours" | sort) <(tail -n +2 "$theirs" | sort) | while IFS=$'\t' read -r name a amb b bmb; do
    printf "%-46s %14s %10s %14s %10s %7.2f\n" "$name" "$a" "$amb" "$b" "$bmb" "$(echo "$a / $b" | bc -l)"
done
grep polling "$ours" | awk -F'\t' '{printf "%-46s %14s %10s %14s %10s %7s\n", $1, $2, $3, "-", "-", "-"}'
