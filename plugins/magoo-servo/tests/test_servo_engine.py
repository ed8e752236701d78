"""Servos in a whole turn of the engine, on the test profile's fake devices and mock pins."""

from __future__ import annotations

import pytest

import magoo_servo
from magoo_core import ProfileError, State
from magoo_core.testing import build_plugins, make_profile, run_profile
from magoo_servo import pins

from servo_helpers import angle_of, mock_config, unused_port

MOUTH = {"backend": "servo", "pin": 17, "pin_factory": "mock", "wake": False}
HEAD = {
    "backend": "servo",
    "pin": 18,
    "pin_factory": "mock",
    "min_angle": -45,
    "max_angle": 45,
    "speak": False,
    "wake": {"angle": 25, "seconds": 0.4},
    "listening_angle": 10,
}
#: the tone TTS at the pace of speech, so the mouth gets its levels 20 times a second
SPEAKING = {"tts": {"backend": "tone", "realtime": True}}


async def test_two_servos_each_follow_their_own_motions_through_a_turn():
    with pins.shared_factory(mock_config()) as factory:  # held, so the pins' histories outlive the run
        run = await run_profile({**SPEAKING, "actuators": [MOUTH, HEAD]}, plugins=[magoo_servo])
        mouth_pin, head_pin = factory.pin(17), factory.pin(18)
    assert run.replies == ["You said: what time is it"] and not run.failures
    assert len(run.of("speak_chunk")) >= 10

    mouth_config, head_config = (mock_config(**{k: v for k, v in s.items() if k != "backend"}) for s in (MOUTH, HEAD))
    mouth = [angle_of(s.state, mouth_config) for s in mouth_pin.states if s.state]
    head = [angle_of(s.state, head_config) for s in head_pin.states if s.state]
    # the mouth opened with the voice; the head nodded and held its listening pose; neither did the other's
    assert max(mouth) > 10 and min(mouth) >= 0
    assert max(head) == pytest.approx(25) and any(a == pytest.approx(10) for a in head)
    assert max(head) <= 45 and min(head) >= 0
    # both ended at rest with no pulses
    for pin, angles in ((mouth_pin, mouth), (head_pin, head)):
        assert angles[-1] == pytest.approx(0.0)
        assert pin.frequency is None and pin.state == 0


def test_the_profile_says_what_is_wrong_with_a_servo():
    plugins = build_plugins(magoo_servo)
    bad = {
        "backend": "servo",
        "pin": 18,
        "angle_at_min_pulse": -60,
        "angle_at_max_pulse": 60,
        "min_angle": -70,  # beyond what the calibration covers
        "max_angle": 40,
        "rest_angle": 50,  # beyond the limits
    }
    with pytest.raises(ProfileError) as caught:
        make_profile({"actuators": [bad, {"backend": "servo", "pin": 99}]}, plugins)
    text = str(caught.value)
    assert "[[actuators]] #1" in text and "[[actuators]] #2" in text  # every problem, together
    assert "min_angle (-70) is outside the calibrated range -60..60" in text
    assert "rest_angle (50) is outside the limits min_angle..max_angle (-70..40)" in text
    assert "99 is not a BCM GPIO number" in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_angle": 30, "max_angle": 10}, "min_angle (30) must be less than max_angle (10)"),
        ({"max_angle": 20}, "speak.open_angle (30) is outside the limits"),
        ({"wake": {"angle": -95}}, "wake.angle (-95) is outside the limits"),
        ({"listening_angle": 91}, "listening_angle (91) is outside the limits"),
        ({"min_pulse_width": 0.003}, "max_pulse_width must be longer than min_pulse_width"),
        ({"max_pulse_width": 0.03}, "max_pulse_width must be shorter than frame_width"),
        ({"angle_at_max_pulse": -90}, "angle_at_min_pulse and angle_at_max_pulse must differ"),
    ],
)
def test_limits_and_calibration_are_checked(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        mock_config(**changes)


def test_false_turns_a_motion_off_and_true_or_an_empty_table_means_the_defaults():
    assert mock_config(wake=False, speak=False).wake is None
    assert mock_config(wake=True).wake.angle == 20
    assert mock_config(speak={}).speak.open_angle == 30
    assert mock_config(pin="GPIO18").pin_label() == "GPIO18"
    assert mock_config(pin="18").pin == 18


async def test_a_servo_that_cannot_start_is_reported_and_the_assistant_runs_without_it():
    port = unused_port()
    broken = {"backend": "servo", "pin": 18, "pin_factory": "pigpio", "pigpio_port": port}
    run = await run_profile({"actuators": [broken, {"backend": "log"}]}, plugins=[magoo_servo])
    assert run.result.fatal is None
    assert run.replies == ["You said: what time is it"]
    [failure] = run.failures
    assert failure.role == "actuators" and failure.backend == "servo" and not failure.retryable
    assert f"cannot reach the pigpio daemon at localhost:{port}: start it with `sudo systemctl start pigpiod`" in failure.message
    assert [kwargs["new"] for kwargs in run.of("state_change")][-1] is State.LISTENING
