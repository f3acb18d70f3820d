#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the peers the tests talk to (Debian's reference
# Socket.IO parser, Python venvs with python-socketio 5.x and 4.x and PyJWT), runs the Swift
# tests, then the interop and conformance tests (pytest) against the built `siotap`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-peers.sh
swift build --build-tests
swift test --skip-build "$@"
# A test that hangs fails after 10 minutes instead of taking CI's whole time with it.
SIOTAP_BIN="$PWD/.build/debug/siotap" .venv-peers/bin/python -m pytest -q -p no:cacheprovider --timeout 600 \
    -W ignore::jwt.warnings.InsecureKeyLengthWarning Tests/interop
