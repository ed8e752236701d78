"""The servo's tools (issue 19): ``nod`` and ``shake`` for a language model, on gpiozero's mock
pins: they move within the configured range and speed, and a servo that does not work gives the
model an error, never a failed turn. Time is moved by hand with ``tick()``."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pydantic import ValidationError

from magoo_core.tools import Toolbox
from magoo_servo import ServoActuator

from servo_helpers import angle_of, mock_config, pulses, ticks


async def entered(config) -> ServoActuator:
    servo = ServoActuator(config, drive=False)
    await servo.__aenter__()
    return servo


def toolbox(servo: ServoActuator) -> Toolbox:
    return Toolbox.collect(servo.magoo_register_tools)


def angles_sent(servo: ServoActuator, config) -> list[float]:
    return [round(angle_of(width / config.frame_width, config), 3) for width in pulses(servo.pin, config.frame_width)]


async def test_a_nod_goes_to_its_angle_and_back_to_rest_within_the_speed_limit():
    config = mock_config(gestures={"nod_angle": 20, "swing": 0.2}, max_speed=200)
    servo = await entered(config)
    result = await toolbox(servo).call("nod", {"times": 2})
    assert (result.ok, result.content) == (True, "Nodded twice.")
    list(ticks(servo, 1.5))
    angles = angles_sent(servo, config)
    await servo.__aexit__(None, None, None)

    assert max(angles) == pytest.approx(20, abs=0.01)
    peaks = [i for i in range(1, len(angles) - 1) if angles[i] >= 19.99 and angles[i + 1] < angles[i]]
    assert len(peaks) == 2  # there and back, twice
    assert angles[-1] == pytest.approx(0, abs=0.01)  # back at rest
    assert np.abs(np.diff(angles)).max() <= 200 * servo.period + 1e-6


async def test_a_shake_never_leaves_min_angle_and_max_angle():
    config = mock_config(gestures={"shake_angle": 45, "swing": 0.3}, min_angle=-10, max_angle=30)
    servo = await entered(config)
    result = await toolbox(servo).call("shake", {"times": 1})
    assert (result.ok, result.content) == (True, "Shook the head once.")
    list(ticks(servo, 1.5))
    angles = angles_sent(servo, config)
    await servo.__aexit__(None, None, None)
    assert min(angles) == pytest.approx(-10, abs=0.01) and max(angles) == pytest.approx(30, abs=0.01)


async def test_the_model_cannot_ask_for_more_than_the_tool_allows():
    servo = await entered(mock_config(gestures=True))
    result = await toolbox(servo).call("nod", {"times": 50})
    await servo.__aexit__(None, None, None)
    assert not result.ok and "times: Input should be less than or equal to 4" in result.content


async def test_a_servo_that_failed_or_is_not_running_tells_the_model_and_the_turn_goes_on():
    config = mock_config(gestures=True)
    idle = ServoActuator(config, drive=False)  # never started (its pin library was missing, say)
    result = await toolbox(idle).call("nod", {})
    assert not result.ok and result.content == "error: nod failed: the servo on GPIO18 is not running; it cannot move"

    servo = ServoActuator(config)  # driven by its own task, like in a run
    await servo.__aenter__()
    real = servo.device

    class Unplugged:
        value = None

        @property
        def angle(self):
            return 0.0

        @angle.setter
        def angle(self, value):
            raise OSError("the pigpio daemon went away")

    servo.device = Unplugged()
    await toolbox(servo).call("nod", {"times": 1})  # starts; the first write fails in the servo's task
    for _ in range(50):  # a real wait: the servo's own task writes, at most a second for it
        await asyncio.sleep(servo.period)
        if servo.stats()["broken"]:
            break
    result = await toolbox(servo).call("shake", {})
    servo.device = real
    await servo.__aexit__(None, None, None)
    assert not result.ok
    assert result.content == "error: shake failed: the servo on GPIO18 is not working (OSError: the pigpio daemon went away); it cannot move"


def test_tools_are_offered_only_with_a_gestures_table_and_named_with_its_prefix():
    assert toolbox(ServoActuator(mock_config(), drive=False)) == {}
    neck = toolbox(ServoActuator(mock_config(gestures={"prefix": "neck_", "shake": False}), drive=False))
    assert list(neck) == ["neck_nod"]
    assert "the servo on GPIO18" in neck["neck_nod"].description


def test_a_nod_angle_outside_the_limits_is_refused_with_the_profile():
    with pytest.raises(ValidationError, match=r"gestures.nod_angle \(50\) is outside the limits min_angle..max_angle"):
        mock_config(gestures={"nod_angle": 50}, max_angle=40)
    with pytest.raises(ValidationError, match="prefix"):
        mock_config(gestures={"prefix": "Neck nod"})



async def test_a_running_servo_offers_its_tools_to_the_responder_of_a_run():
    import magoo_servo
    from magoo_core.engine import Engine
    from magoo_core.testing import build_plugins, make_profile

    neck = {"backend": "servo", "pin": 18, "pin_factory": "mock", "gestures": {"prefix": "neck_"}}
    jaw = {"backend": "servo", "pin": 17, "pin_factory": "mock"}  # no gestures: no tools
    plugins = build_plugins(magoo_servo)
    engine = Engine(make_profile({"actuators": [neck, jaw]}, plugins), plugins, max_turns=1)
    result = await engine.run()
    assert result.fatal is None
    (context,) = engine.responder.last_instance.contexts
    assert [name for name in context.tools if name.startswith(("neck_", "jaw_", "nod", "shake"))] == ["neck_nod", "neck_shake"]
