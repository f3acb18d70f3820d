#!/usr/bin/env bash
# Proves the packages on a machine without Swift: a clean Debian bookworm root (debootstrap,
# kept in .build-dist/root for the next run), where, as a user who never built siotap would:
#   - the tarball's binary starts and `siotap demo` writes its capture with no libpcap installed,
#     and `siotap import` says what to install;
#   - with libpcap0.8 added: `siotap import` of a pcap works;
#   - `siotap proxy --ui` serves the inspector's page from the binary itself (fetched);
#   - the wheel installs into a fresh venv: `siotap --version`, `python -m siotap`, `siotap demo`;
#   - the npm package installs from its .tgz with Debian's node and npm: `npx siotap demo`.
# Opt-in (root; a few minutes once the root and the release build exist):
#   scripts/test-dist.sh                 package (release build) and test
#   scripts/test-dist.sh --dist DIR      test packages made already
#   scripts/test-dist.sh --from-source   also: a user who is not root clones the repository and
#                                        runs scripts/install.sh (a release build, ~15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

dist=""
from_source=no
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) dist="$2"; shift 2 ;;
        --from-source) from_source=yes; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test-dist.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "test-dist.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
if [ -z "$dist" ]; then
    scripts/package.sh
    dist=dist
fi
dist=$(cd "$dist" && pwd)
version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/SiotapCommands/Siotap.swift)

root=.build-dist/root
if [ ! -x "$root/usr/bin/apt-get" ]; then
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    rm -rf "$root.partial"
    mkdir -p "$root.partial"
    echo "test-dist: debootstrap bookworm (minbase) into $root"
    debootstrap --variant=minbase bookworm "$root.partial" http://deb.debian.org/debian >/dev/null
    mv "$root.partial" "$root"
fi
root=$(cd "$root" && pwd)

mounted=()
cleanup() {
    for point in "${mounted[@]}"; do umount -l "$point" 2>/dev/null || true; done
    pkill -f "$root/" 2>/dev/null || true
}
trap cleanup EXIT
for point in proc dev; do
    mountpoint -q "$root/$point" || { mount --bind "/$point" "$root/$point"; mounted+=("$root/$point"); }
done
cp /etc/resolv.conf "$root/etc/resolv.conf"

# The trial starts from a root without what it adds (libpcap, Python, node), and without the
# previous run's files.
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq libpcap0.8 >/dev/null 2>&1 || true
rm -rf "$root/trial"
mkdir -p "$root/trial/dist"
cp "$dist/siotap-$version-linux-x86_64.tar.gz" "$dist/siotap-$version.tgz" "$dist"/siotap-"$version"-py3-none-manylinux_*_x86_64.whl "$root/trial/dist/"

# A pcap of a real session, made here: the demo's story on loopback under tcpdump.
tar -xzf "$dist/siotap-$version-linux-x86_64.tar.gz" -C "$root/trial"
tcpdump -i lo -U --immediate-mode -s 0 -w "$root/trial/demo.pcap" tcp 2> "$root/trial/tcpdump.err" &
dump=$!
# Capturing only once tcpdump says it listens (a busy machine takes a while).
for _ in $(seq 100); do grep -q "listening on" "$root/trial/tcpdump.err" && break; sleep 0.1; done
"$root/trial/siotap-$version-linux-x86_64/siotap" demo --record "$root/trial/host-demo.jsonl" --json >/dev/null
sleep 0.5
kill -INT "$dump"; wait "$dump" || true

cat > "$root/trial/run.sh" <<TRIAL
#!/bin/bash
set -euo pipefail
cd /trial
fail() { echo "test-dist: FAILED: \$*" >&2; exit 1; }
step() { echo "test-dist: \$*"; }
bin=/trial/siotap-$version-linux-x86_64/siotap

step "no Swift here: \$(command -v swift || echo none); no libpcap: \$(ls /usr/lib/x86_64-linux-gnu/libpcap* 2>/dev/null || echo none)"
step "the tarball: \$(\$bin --version)"
\$bin demo --record /trial/demo.jsonl --json > /trial/demo.out
grep -q '"kind":"packet"' /trial/demo.jsonl || fail "the demo's capture has no packets"
grep -q '"kind":"jwt"' /trial/demo.jsonl || fail "the demo's capture has no tokens"
step "siotap demo wrote \$(wc -l < /trial/demo.jsonl) records"
set +e
\$bin import /trial/demo.pcap > /dev/null 2> /trial/import.err
code=\$?
set -e
[ \$code -eq 1 ] && grep -q "apt install libpcap0.8" /trial/import.err || fail "import without libpcap: exit \$code, \$(cat /trial/import.err)"
step "without libpcap, import says: \$(cut -c1-100 /trial/import.err)…"

step "installing libpcap0.8, python3-venv, nodejs, npm (Debian's)"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpcap0.8 python3 python3-venv nodejs npm >/dev/null
\$bin import /trial/demo.pcap --json > /trial/imported.jsonl
grep -q '"kind":"packet"' /trial/imported.jsonl || fail "the import of the demo's pcap has no packets"
step "siotap import: \$(grep -c '"kind":"packet"' /trial/imported.jsonl) packets from the pcap"

\$bin serve --listen 127.0.0.1:23001 > /trial/serve.log 2>&1 &
serve=\$!
\$bin proxy --upstream http://127.0.0.1:23001 --listen 127.0.0.1:28080 --ui 127.0.0.1:28081 > /trial/proxy.out 2> /trial/proxy.err &
proxy=\$!
for _ in \$(seq 50); do grep -q "token=" /trial/proxy.err && break; sleep 0.2; done
url=\$(grep -o 'http://127.0.0.1:28081/?token=[A-Za-z0-9_-]*' /trial/proxy.err | head -1)
[ -n "\$url" ] || fail "the proxy printed no inspector URL: \$(cat /trial/proxy.err)"
python3 - "\$url" <<'PY' || fail "the inspector's page"
import sys, urllib.request
base = sys.argv[1].split("?")[0]
page = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
script = urllib.request.urlopen(base + "inspector.js", timeout=5).read().decode()
assert "<html" in page.lower() and "inspector.js" in page, page[:200]
assert "WebSocket" in script, script[:200]
PY
kill \$proxy \$serve; wait \$proxy \$serve 2>/dev/null || true
step "siotap proxy --ui served its page and script from the binary"

python3 -m venv /trial/venv
/trial/venv/bin/pip install -q --no-index /trial/dist/siotap-$version-*.whl
[ "\$(/trial/venv/bin/siotap --version)" = "$version" ] || fail "the wheel's siotap --version"
[ "\$(/trial/venv/bin/python -m siotap --version)" = "$version" ] || fail "python -m siotap"
(cd /tmp && /trial/venv/bin/siotap demo --record /trial/wheel-demo.jsonl --json > /dev/null)
grep -q '"kind":"packet"' /trial/wheel-demo.jsonl || fail "the wheel's demo"
step "the wheel: pip install, siotap --version, python -m siotap, siotap demo"

mkdir -p /trial/app && cd /trial/app
npm init -y > /dev/null
npm install --offline --no-audit --no-fund /trial/dist/siotap-$version.tgz > /dev/null 2>&1 || fail "npm install"
npx --no-install siotap demo --record /trial/npm-demo.jsonl --json > /dev/null
grep -q '"kind":"packet"' /trial/npm-demo.jsonl || fail "npx siotap demo"
step "the npm package: npm install (node \$(node --version), npm \$(npm --version)), npx siotap demo"
step "all passed"
TRIAL
chmod +x "$root/trial/run.sh"
chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root /trial/run.sh

[ "$from_source" = yes ] || exit 0
# From source, as a user who is not root, on this machine (it has Swift): a clone, then
# scripts/install.sh into that user's ~/.local.
user=siotap-trial
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
rm -rf "$home/siotap" "$home/.local/bin/siotap"
# This machine serves GitHub's packages from root-owned mirrors (/etc/gitconfig says where),
# which git refuses to read for another user unless told to trust them.
printf '[safe]\n\tdirectory = *\n' > "$home/.gitconfig"
chown "$user:" "$home/.gitconfig"
su - "$user" -c "git clone -q '$repo' siotap"
su - "$user" -c "export PATH='$(dirname "$(command -v swift)")':\$PATH; cd siotap && scripts/install.sh" 2>&1 | tail -3
installed=$(su - "$user" -c ".local/bin/siotap --version")
[ "$installed" = "$version" ] || { echo "test-dist: FAILED: install.sh as $user: $installed" >&2; exit 1; }
echo "test-dist: scripts/install.sh as $user (not root): ~/.local/bin/siotap $installed"
