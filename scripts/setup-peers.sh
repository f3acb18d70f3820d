#!/usr/bin/env bash
# Installs what the tests talk to: Debian's reference Socket.IO parser (for node) and a local venv
# with pinned python-socketio / PyJWT peers. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s node-socket.io-parser >/dev/null 2>&1; then
    echo "setup: installing node-socket.io-parser (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq node-socket.io-parser >/dev/null
fi

VENV=.venv-peers
STAMP="$VENV/.requirements"
REQUIREMENTS="scripts/peers-requirements.txt"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQUIREMENTS" "$STAMP"; then
    echo "setup: creating $VENV (python-socketio 5.x, PyJWT)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$STAMP"
fi
