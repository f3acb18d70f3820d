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

# One venv per protocol generation: python-socketio 5.x speaks Engine.IO 4, 4.x speaks Engine.IO 3.
make_venv() {
    local venv=$1 requirements=$2 what=$3 python=${4:-python3}
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$venv/.requirements"; then
        echo "setup: creating $venv ($what)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.requirements"
    fi
}
make_venv .venv-peers scripts/peers-requirements.txt "python-socketio 5.x, PyJWT, pytest"
make_venv .venv-peers4 scripts/peers4-requirements.txt "python-socketio 4.x for Engine.IO 3"
# python-socketio 4.x's asyncio server needs Python 3.10 (3.11 refuses its asyncio.wait calls).
PY310=""
for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python /usr/bin/python3.10 python3.10; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
        PY310=$candidate
        break
    fi
done
if [ -z "$PY310" ]; then
    echo "setup: no Python 3.10 found (pyenv or python3.10): the Engine.IO 3 Python server tests need it" >&2
    exit 1
fi
make_venv .venv-peers4-server scripts/peers4-server-requirements.txt "python-socketio 4.x server on Python 3.10" "$PY310"
