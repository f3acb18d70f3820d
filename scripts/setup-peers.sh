#!/usr/bin/env bash
# Installs what the tests talk to: Debian's reference Socket.IO parser (for node) and a local venv
# with pinned python-socketio / PyJWT peers. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-build.sh

# Debian's packages: the reference parser; nginx in front of servers; Chromium for the official
# JavaScript client in a real browser (certutil, from libnss3-tools, makes it trust the local CA);
# ws and xmlhttprequest for the 2.x client in node; tcpdump records the sessions siotap import reads.
debian_packages=(node-socket.io-parser nginx-light chromium node-ws node-xmlhttprequest libnss3-tools tcpdump)
missing=()
for package in "${debian_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# npm installs the npm package in the README's test (any npm will do: Debian's or NodeSource's).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
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

# The official JavaScript client, without npm: socket.io-client 4.8.1 as the nicegui wheel ships
# it, and 2.3.0 (Engine.IO 3) as Debian's onionshare-cli ships it. Only those files are kept.
bundles=.peers/js
if [ ! -s "$bundles/socket.io-4.8.1.min.js" ] || [ ! -s "$bundles/socket.io-2.3.0.js" ]; then
    echo "setup: fetching the socket.io-client bundles (4.8.1 from PyPI nicegui, 2.3.0 from Debian onionshare-cli)"
    mkdir -p "$bundles"
    scratch=$(mktemp -d)
    .venv-peers/bin/pip download -q --disable-pip-version-check --no-deps -d "$scratch" nicegui==3.18.0
    .venv-peers/bin/python -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("nicegui/static/socket.io.min.js"))' \
        "$scratch"/nicegui-3.18.0-*.whl >"$bundles/socket.io-4.8.1.min.js"
    # apt-get download needs the package lists; a machine that had every package may have none.
    (cd "$scratch" && { apt-get download -qq onionshare-cli >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get download -qq onionshare-cli >/dev/null 2>&1; }; } \
        && dpkg-deb -x onionshare-cli_*.deb extracted)
    cp "$scratch/extracted/usr/share/onionshare-cli/static/js/socket.io.js" "$bundles/socket.io-2.3.0.js"
    rm -rf "$scratch"
fi
