"""The control law on its own: no pins, no clock, every step's ``dt`` given by the test."""

from __future__ import annotations

import math

import pytest

from magoo_servo import Mode, Motion

from servo_helpers import mock_config

DT = 0.02


def run(motion: Motion, seconds: float) -> list[float | None]:
    return [motion.step(DT) for _ in range(round(seconds / DT))]


def test_the_first_step_sends_rest_and_idle_detaches_after_detach_after():
    motion = Motion(mock_config(rest_angle=10, detach_after=0.3))
    assert motion.step(0.0) == 10
    sent = run(motion, 1.0)
    held = sent.index(None)  # steps at rest before the pulses stopped
    assert held * DT == pytest.approx(0.3, abs=DT)
    assert all(a == 10 for a in sent[:held]) and all(a is None for a in sent[held:])


def test_no_step_is_faster_than_max_speed_and_no_angle_leaves_the_limits():
    config = mock_config(max_speed=120, min_angle=-20, max_angle=20, listening_angle=-20, wake={"angle": 20}, speak=False)
    motion = Motion(config)
    motion.step(0.0)
    motion.set_mode(Mode.LISTENING)
    motion.nod()
    angles = [a for a in run(motion, 1.0) if a is not None]
    steps = [abs(b - a) for a, b in zip([0.0, *angles], angles, strict=False)]
    assert max(steps) <= 120 * DT + 1e-9
    assert max(steps) == pytest.approx(120 * DT)  # the limit was what held it back
    assert min(angles) >= -20 and max(angles) <= 20


def test_the_mouth_opens_with_the_attack_and_closes_with_the_release():
    config = mock_config(speak={"open_angle": 30, "gain": 2.0, "attack": 0.04, "release": 0.2}, max_speed=1e6)
    motion = Motion(config)
    motion.set_mode(Mode.SPEAKING)
    motion.step(0.0)
    angles = []
    for _ in range(25):  # level 0.5 × gain 2 = open all the way
        motion.hear(0.5, DT)
        angles.append(motion.step(DT))
    assert angles[1] == pytest.approx(30 * (1 - math.exp(-1)), abs=0.01)  # one attack time constant
    assert angles[-1] == pytest.approx(30, abs=0.01)
    motion.quiet()
    run(motion, 0.2)  # one release time constant: 1/e of the way left
    assert motion.angle == pytest.approx(30 * math.exp(-1), abs=0.01)


def test_a_voice_that_stops_reporting_closes_the_mouth():
    motion = Motion(mock_config(max_speed=1e6))
    motion.set_mode(Mode.SPEAKING)
    motion.hear(0.3, 0.025)  # and then nothing: the player stalled
    run(motion, 0.1)
    assert motion.angle > 10
    run(motion, 1.5)
    assert motion.angle == pytest.approx(0.0, abs=0.1)


def test_the_nod_goes_to_its_angle_and_back_to_the_listening_pose():
    motion = Motion(mock_config(wake={"angle": 25, "seconds": 0.4}, listening_angle=-10))
    motion.step(0.0)
    motion.set_mode(Mode.LISTENING)
    motion.nod()
    angles = run(motion, 1.0)
    assert max(angles) == pytest.approx(25)
    assert angles[-1] == pytest.approx(-10)
    assert angles.index(max(angles)) * DT < 0.2  # there in the first half


def test_the_listening_pose_is_held_and_never_detached():
    motion = Motion(mock_config(listening_angle=15, detach_after=0.1))
    motion.set_mode(Mode.LISTENING)
    assert run(motion, 3.0)[-1] == 15


def test_speaking_without_a_mouth_holds_the_listening_pose():
    motion = Motion(mock_config(speak=False, listening_angle=15))
    motion.set_mode(Mode.SPEAKING)
    motion.hear(0.9, 1.0)
    assert set(run(motion, 1.0)[-10:]) == {15}


def test_after_detaching_the_next_motion_starts_from_where_the_servo_was():
    motion = Motion(mock_config(detach_after=0.0, max_speed=100))
    run(motion, 0.2)
    assert not motion.attached
    motion.set_mode(Mode.LISTENING)
    motion.nod()
    assert motion.step(DT) == pytest.approx(100 * DT)  # from rest, at max_speed


def test_rest_ends_the_nod_and_the_mouth_at_once():
    motion = Motion(mock_config(max_speed=1e6))
    motion.set_mode(Mode.SPEAKING)
    motion.nod()
    motion.hear(0.5, 1.0)
    run(motion, 0.1)
    motion.rest()
    assert motion.target() == 0.0
    assert run(motion, 1.0)[-1] is None
