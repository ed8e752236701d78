"""The espeak tests run the real espeak-ng (helpers are in espeak_helpers.py)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(autouse=True, scope="session")
def espeak_installed() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: sudo apt install espeak-ng (scripts/setup.sh installs it)")
