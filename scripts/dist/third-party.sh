#!/usr/bin/env bash
# The licenses of what a release binary has inside it: the Swift runtime and Foundation, and each
# package SwiftPM checked out (with BoringSSL, which swift-crypto and swift-nio-ssl carry).
set -euo pipefail
cd "$(dirname "$0")/../.."
cat <<'HEAD'
siotap's binary contains the Swift runtime, its standard library, Foundation and Dispatch
(Apache License 2.0 with the Runtime Library Exception, https://swift.org/LICENSE.txt), and the
packages below, each under its own license, given here in full.
HEAD
for package in .build/checkouts/*/; do
    name=$(basename "$package")
    for file in "$package"LICENSE* "$package"NOTICE* "$package"NOTICES*; do
        [ -f "$file" ] || continue
        printf '\n==== %s: %s ====\n\n' "$name" "$(basename "$file")"
        cat "$file"
    done
done
