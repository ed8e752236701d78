"""Every servo test leaves no pin factory behind: the next one starts from fresh mock pins."""

from __future__ import annotations

import pytest

from magoo_servo import pins


@pytest.fixture(autouse=True)
def no_factory_left_behind():
    assert not pins._shared, "a test before this one left a pin factory open"
    yield
    leaked = list(pins._shared)
    pins._shared.clear()
    assert not leaked, f"pin factories still held after the test: {leaked}"
