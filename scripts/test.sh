#!/usr/bin/env bash
# Set everything up, then run the whole test suite (what CI runs). Extra arguments go to pytest.
#
# The tests run in parallel on MAGOO_TEST_WORKERS pytest-xdist workers (default 4: most tests wait
# on real-time audio, so more workers than cores pays off; on 2 cores 4 took 497 s and used 61 % of
# the CPU, 6 took 415-452 s and 77 %, but a fresh clone's first run with 6 starved two real-time
# tests: an echo canceller fell behind, a stalled stream was not seen), each with its own
# PulseAudio server and temporary folders.
# --dist loadgroup hands out single tests, so one slow file does not keep one worker busy to the
# end; a backend's device contract and the CPU-bound benches stay together (see xdist_group). Extra
# arguments come after these, so `-n 0` runs everything in this process, one test at a time.
set -euo pipefail
MAGOO_SETUP_TESTS=1  # setup.sh installs the test-only system packages too
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$MAGOO_ROOT"
python -m pytest -n "${MAGOO_TEST_WORKERS:-4}" --dist loadgroup "$@"
