#!/usr/bin/env bash
# Set everything up, then run the whole test suite (what CI runs). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$MAGOO_ROOT"
python -m pytest "$@"
