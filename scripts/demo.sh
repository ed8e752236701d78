#!/usr/bin/env bash
# Set everything up, then run the demo: a whole turn on fake devices (no sound card, network or keys).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$MAGOO_ROOT"
magoo run --profile examples/test.toml "$@"
