#!/usr/bin/env bash
# Fuzzes the decoders that face the wire or the disk with libFuzzer, each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#
# Targets: engine-payload socketio jwt capture-reader traffic-decoder websocket-stream tcp-reassembly
# http-stream msgpack har http-framing diagnoser gate hlog (default: all,
# 60 s each).
# Seeds come from the fixtures and the codec test vectors (scripts/fuzz_seeds.py); corpora grow in
# .build-fuzz/corpus/TARGET and any crashing input lands in .build-fuzz/crashes/TARGET. Prints one
# line per target with its executions; exits 1 if a target crashed (its input must then become a
# regression test in Tests/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(engine-payload socketio jwt capture-reader traffic-decoder websocket-stream tcp-reassembly http-stream msgpack har http-framing diagnoser gate hlog)

SIOTAP_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product siotap-fuzz -Xswiftc -sanitize=fuzzer >&2
binary=.build-fuzz/release/siotap-fuzz
python=.venv-peers/bin/python; [ -x "$python" ] || python=python3
"$python" scripts/fuzz_seeds.py .build-fuzz/seeds

status=0
for target in "${targets[@]}"; do
    corpus=.build-fuzz/corpus/$target
    crashes=.build-fuzz/crashes/$target
    mkdir -p "$corpus" "$crashes"
    log=.build-fuzz/$target.log
    set +e
    SWIFT_BACKTRACE=enable=no SIOTAP_FUZZ_TARGET=$target "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" ".build-fuzz/seeds/$target" >"$log" 2>&1
    code=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    if [ $code -eq 0 ]; then
        echo "$target: $runs executions in ${seconds} s, clean"
    else
        echo "$target: FAILED after $runs executions (exit $code); input in $crashes, log in $log"
        grep -m5 -E 'Fatal error|Precondition failed|ERROR:' "$log" || true
        status=1
    fi
done
exit $status
