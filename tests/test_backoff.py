"""Restart and reconnect delays: capped exponential growth with jitter."""

import random

import pytest

from magoo_core.backoff import Backoff


def test_delays_double_up_to_the_cap_and_are_jittered_downwards():
    backoff = Backoff(1.0, 30.0, jitter=0.5, rng=random.Random(7))
    nominal = [1, 2, 4, 8, 16, 30, 30, 30]
    delays = [backoff.next() for _ in nominal]
    for delay, expected in zip(delays, nominal):
        assert expected * 0.5 <= delay <= expected
    assert len(set(delays)) == len(delays), "jitter spreads devices that failed together"


def test_no_jitter_gives_the_nominal_delays_and_reset_starts_over():
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_many_attempts_never_overflow():
    backoff = Backoff(1.0, 60.0, jitter=0.0)
    for _ in range(5000):
        delay = backoff.next()
    assert delay == 60.0


@pytest.mark.parametrize("base, cap, jitter", [(0, 1, 0.5), (2, 1, 0.5), (1, 2, 1.5)])
def test_nonsense_settings_are_refused(base, cap, jitter):
    with pytest.raises(ValueError):
        Backoff(base, cap, jitter=jitter)
