#!/usr/bin/env bash
# Builds siotap for people without Swift: one self-contained binary for Linux x86_64 (the Swift
# runtime linked in, the inspector's page compiled in, libpcap loaded only by import and sniff),
# then three ways to get it, all into dist/:
#   siotap-VERSION-linux-x86_64.tar.gz          the binary, LICENSE, README, INSTALL
#   siotap-VERSION-py3-none-manylinux_….whl      pip install: puts `siotap` on PATH (as ruff's wheel does)
#   siotap-VERSION.tgz                           npm install: a `bin` entry, so `npx siotap` works
# Nothing is published. scripts/test-dist.sh tries all three on a Debian root without Swift.
#
#   scripts/package.sh                     release build (about 15 minutes the first time on 2 cores)
#   scripts/package.sh --binary PATH       package a binary built already (the tests use the debug one)
#   scripts/package.sh --out DIR           somewhere else than dist/
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/SiotapCommands/Siotap.swift)
[ -n "$version" ] || { echo "package.sh: no version in Sources/SiotapCommands/Siotap.swift" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "package.sh: builds for x86_64 only, this machine is $(uname -m)" >&2; exit 1; }

packaging_release=no
if [ -z "$binary" ]; then
    packaging_release=yes
    scripts/setup-build.sh
    # The Swift runtime and Foundation statically (--static-swift-stdlib); libstdc++, libgcc and
    # zlib (compress-nio's) too, so that the binary asks the system for glibc and nothing else. A
    # folder holding only their static archives, searched first, makes -lstdc++ and -lz pick them.
    static=.build/static-libs
    mkdir -p "$static"
    for archive in libstdc++.a libz.a; do
        found=$(gcc -print-file-name="$archive")
        [ -f "$found" ] || { echo "package.sh: $archive is missing (Debian: libstdc++-12-dev, zlib1g-dev)" >&2; exit 1; }
        ln -sf "$(readlink -f "$found")" "$static/$archive"
    done
    swift build -c release --product siotap --static-swift-stdlib \
        -Xswiftc -L -Xswiftc "$(pwd)/$static" -Xswiftc -Xclang-linker -Xswiftc -static-libgcc
    binary=$(swift build -c release --show-bin-path)/siotap
fi
[ -x "$binary" ] || { echo "package.sh: no binary at $binary" >&2; exit 1; }

# What the binary needs from the system: glibc's libraries only, when it is the release one.
needed=$(readelf -d "$binary" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
echo "package.sh: siotap $version needs: $needed"
if [ "$packaging_release" = yes ]; then
    for library in $needed; do
        case "$library" in
            libc.so.6|libm.so.6|libpthread.so.0|libdl.so.2|librt.so.1|ld-linux-x86-64.so.2) ;;
            *) echo "package.sh: the binary needs $library, which is not glibc's: it would not run everywhere" >&2; exit 1 ;;
        esac
    done
fi
# The newest glibc symbol version it uses names the oldest glibc it runs on (the wheel's tag).
glibc=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n | tail -1)

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
name="siotap-$version-linux-x86_64"
mkdir -p "$stage/$name"
# Debug information is most of a release binary's size; the symbols stay for backtraces.
strip --strip-debug -o "$stage/$name/siotap" "$binary"
chmod 755 "$stage/$name/siotap"
cp LICENSE README.md "$stage/$name/"
sed "s/@VERSION@/$version/g; s/@GLIBC@/$glibc/g" scripts/dist/INSTALL.md > "$stage/$name/INSTALL.md"
scripts/dist/third-party.sh > "$stage/$name/THIRD_PARTY_LICENSES"
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
echo "package.sh: $out/$name.tar.gz"

python3 scripts/dist/make_wheel.py --binary "$stage/$name/siotap" --version "$version" --glibc "$glibc" \
    --license LICENSE --third-party "$stage/$name/THIRD_PARTY_LICENSES" --readme README.md --out "$out"

npm_root="$stage/npm/package"
mkdir -p "$npm_root/bin"
cp "$stage/$name/siotap" "$npm_root/bin/siotap"
cp LICENSE README.md "$stage/$name/THIRD_PARTY_LICENSES" "$npm_root/"
sed "s/@VERSION@/$version/g" scripts/dist/package.json > "$npm_root/package.json"
(cd "$npm_root" && npm pack --silent --pack-destination "$out" >/dev/null)
echo "package.sh: $out/siotap-$version.tgz"
