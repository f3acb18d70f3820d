#!/usr/bin/env bash
# #32's causal-order check, repeated: python-socketio clients (2 and 10) in python-socketio's chat,
# acked broadcasts on websocket, polling and both mixed, through `siotap proxy --record`; every
# delivery must be recorded after the emit that caused it, in every run. The test command runs
# each configuration once (Tests/interop/test_causal_order.py); this runs each RUNS times (10).
# Needs the peers' venv (scripts/setup-peers.sh, which the test command runs).
#
#   Benchmarks/causal-order.sh             # 10 runs of each of the 6 configurations (~8 minutes)
#   RUNS=3 Benchmarks/causal-order.sh -k websocket
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SIOTAP_BIN:-}" ]; then
    swift build --product siotap >/dev/null
    SIOTAP_BIN="$(swift build --show-bin-path)/siotap"
fi
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); $SIOTAP_BIN; ${RUNS:-10} runs each"
SIOTAP_BIN=$SIOTAP_BIN CAUSAL_ORDER_REPEAT=${RUNS:-10} .venv-peers/bin/python -m pytest -q -p no:cacheprovider \
    -W ignore::jwt.warnings.InsecureKeyLengthWarning Tests/interop/test_causal_order.py --durations=6 "$@"
