#!/usr/bin/env bash
# Set everything up, then run the offline demo: one whole turn with real speech models
# (openWakeWord, pocketsphinx, espeak-ng), no microphone, network or keys.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$MAGOO_ROOT"
magoo run --profile examples/demo.toml "$@"
