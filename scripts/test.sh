#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the peers the tests talk to (Debian's reference
# Socket.IO parser, a Python venv with python-socketio and PyJWT), then `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-peers.sh
swift test "$@"
