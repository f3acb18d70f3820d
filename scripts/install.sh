#!/usr/bin/env bash
# Builds siotap from source (release) and installs it as PREFIX/bin/siotap, by default into
# ~/.local: no root needed. The binary is self-contained (the inspector's page is inside it).
#
#   scripts/install.sh              ~/.local/bin/siotap
#   scripts/install.sh /usr/local   with sudo when that folder is not yours
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-$HOME/.local}"
case "$prefix" in -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

scripts/setup-build.sh
swift build -c release --product siotap
built="$(swift build -c release --show-bin-path)/siotap"
mkdir -p "$prefix/bin"
install -m 755 "$built" "$prefix/bin/siotap"
echo "install: $prefix/bin/siotap ($("$prefix/bin/siotap" --version))"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "install: $prefix/bin is not on your PATH; add it, e.g. echo 'export PATH=\"$prefix/bin:\$PATH\"' >> ~/.bashrc" ;;
esac
