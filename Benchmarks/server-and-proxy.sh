# Sourced by the proxy benchmarks: builds siotap in release mode, starts the built-in conformance
# server and `siotap proxy --record` in front of it on loopback, and stops both on exit.
# Sets BIN, work (a temporary folder), server and proxy (their URLs), server_pid and proxy_pid.
# SIOTAP_BIN=path skips the build (a smoke test with a debug build; figures need release).
if [ -n "${SIOTAP_BIN:-}" ]; then
    BIN=$SIOTAP_BIN
else
    swift build -c release --product siotap >/dev/null
    BIN="$(swift build -c release --show-bin-path)/siotap"
fi
work=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$BIN" serve --app conformance --listen 127.0.0.1:0 > "$work/serve.out" 2>/dev/null &
server_pid=$!
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
server=$(sed -E 's|.*listening on (http://[^/]+)/.*|\1|' "$work/serve.out" | head -n 1)
"$BIN" proxy --upstream "$server" --listen 127.0.0.1:0 --record "$work/capture.jsonl" --quiet 2> "$work/proxy.err" &
proxy_pid=$!
until grep -q "listening on" "$work/proxy.err" 2>/dev/null; do sleep 0.1; done
proxy=$(sed -E 's|.*listening on ([^,]+),.*|\1|' "$work/proxy.err" | head -n 1)
