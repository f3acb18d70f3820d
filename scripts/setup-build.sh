#!/usr/bin/env bash
# What building siotap needs beyond Swift: libpcap's headers (Debian libpcap-dev), for
# `siotap import` and `siotap sniff`. Installs it once if missing; a second run only checks.
set -euo pipefail
if ! dpkg -s libpcap-dev >/dev/null 2>&1; then
    echo "setup: installing libpcap-dev (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq libpcap-dev >/dev/null
fi
