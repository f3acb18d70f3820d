#!/usr/bin/env bash
# What building siotap needs beyond Swift 6.2 or later: libpcap's header (`siotap import` and
# `siotap sniff` load libpcap itself at run time). Installs it when missing, with sudo unless
# run as root; a second run only checks. Elsewhere than Debian or Ubuntu it says what to install.
set -euo pipefail

have_header() {
    printf '#include <pcap/pcap.h>\n' | cc -E -x c - >/dev/null 2>&1
}

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: swift is not on PATH: install Swift 6.2 or later (https://www.swift.org/install/)" >&2
    exit 1
fi
if have_header; then
    exit 0
fi
case "$(uname -s)" in
    Darwin)
        # The macOS SDK has libpcap; its header is missing only without the command line tools.
        echo "setup: pcap.h not found: run xcode-select --install" >&2
        exit 1 ;;
esac
if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "setup: libpcap-dev is missing and there is no sudo: as root, run apt-get install libpcap-dev" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "setup: installing libpcap-dev"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev >/dev/null
elif command -v dnf >/dev/null 2>&1; then
    echo "setup: pcap.h not found: sudo dnf install libpcap-devel" >&2
    exit 1
elif command -v apk >/dev/null 2>&1; then
    echo "setup: pcap.h not found: sudo apk add libpcap-dev" >&2
    exit 1
else
    echo "setup: pcap.h not found: install libpcap's development package" >&2
    exit 1
fi
