"""The servo backend on gpiozero's own MockFactory with PWM pins: what the pin is really sent.

A mock PWM pin's ``state`` is the duty cycle, so the pulse width is ``state × frame_width``;
``frequency`` is None when no pulses are sent (``detach()``). Most tests build the servo with
``drive=False`` and move time themselves with ``tick()``; nothing depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from magoo_core import BackendError, BackendFailure, MissingDependency, State
from magoo_core.testing.contracts import ActuatorContract
from magoo_servo import ServoActuator, pins

from servo_helpers import angle_of, mock_config, pulses, speak, ticks, unused_port, width_of


class TestServoContract(ActuatorContract):
    backend_class = ServoActuator
    config = {"pin": 18, "pin_factory": "mock"}


async def entered(config, **kwargs) -> ServoActuator:
    servo = ServoActuator(config, drive=False, **kwargs)
    await servo.__aenter__()
    return servo


def best_lagged_correlation(signal: list[float], reference: list[float], max_lag: int) -> tuple[float, int]:
    """The highest correlation of ``signal`` with ``reference`` delayed by 0..max_lag steps."""
    a, b = np.asarray(signal), np.asarray(reference)
    scores = [(float(np.corrcoef(a[lag:], b[: len(b) - lag])[0, 1]), lag) for lag in range(max_lag + 1)]
    return max(scores)


# ---- the mouth ----------------------------------------------------------------------------------


async def test_the_pulse_width_follows_the_speech_envelope_within_the_limits_and_the_speed_limit():
    config = mock_config(min_angle=-10, max_angle=25, speak={"open_angle": 25}, max_speed=200)
    servo = await entered(config)
    servo.magoo_on_state_change(new=State.SPEAKING)
    trace = speak(servo, 3.0)
    await servo.__aexit__(None, None, None)

    angles = trace.angles(config)
    # it follows the voice, a few steps behind (smoothing, speed limit)
    correlation, lag = best_lagged_correlation(angles, trace.levels(), max_lag=10)
    assert correlation > 0.8, (correlation, lag)
    assert lag * servo.period <= 0.1
    settled = angles[25:]
    assert max(settled) - min(settled) > 10  # really opens and closes with the syllables
    # never faster than max_speed: 200 °/s is 4° per 20 ms step, and that limit was reached
    steps = np.abs(np.diff(angles))
    assert steps.max() <= 200 * servo.period + 1e-6
    assert steps.max() == pytest.approx(200 * servo.period)
    # every pulse it was ever sent, leaving included, commands an angle inside the limits
    widths = pulses(servo.pin)
    assert min(widths) >= width_of(-10, config) - 1e-9 and max(widths) <= width_of(25, config) + 1e-9


async def test_after_speaking_it_returns_to_rest_and_then_stops_the_pulses():
    config = mock_config(rest_angle=-5, detach_after=0.5)
    servo = await entered(config)
    servo.magoo_on_state_change(new=State.SPEAKING)
    speak(servo, 1.0)
    assert servo.pin.frequency == 50
    servo.magoo_on_speak_end()
    servo.magoo_on_state_change(new=State.LISTENING)
    sent = list(ticks(servo, 2.0))
    arrived = sent.index(-5)
    stopped = sent.index(None)
    assert (stopped - arrived) * servo.period == pytest.approx(0.5, abs=servo.period)
    assert all(a == -5 for a in sent[arrived:stopped]) and all(a is None for a in sent[stopped:])
    assert servo.pin.frequency is None and servo.pin.state == 0  # detached: no pulses at all
    assert angle_of(pulses(servo.pin)[-1] / 0.02, config) == pytest.approx(-5)  # the last pulse was rest
    assert servo.stats()["attached"] == 0
    await servo.__aexit__(None, None, None)


async def test_an_error_sends_it_to_rest_and_stops_the_pulses():
    config = mock_config(detach_after=0.2)
    servo = await entered(config)
    servo.magoo_on_state_change(new=State.SPEAKING)
    speak(servo, 0.6)
    servo.magoo_on_error(failure=BackendFailure("player", "mpv", "[player] mpv: died"))
    sent = list(ticks(servo, 1.0))
    assert 0.0 in sent and sent[-1] is None
    assert servo.pin.frequency is None
    await servo.__aexit__(None, None, None)


async def test_another_plugins_failing_hook_does_not_stop_the_mouth():
    servo = await entered(mock_config())
    servo.magoo_on_state_change(new=State.SPEAKING)
    speak(servo, 0.3, lambda t: 0.2)
    servo.magoo_on_error(failure=BackendFailure("plugin", "leds", "plugin leds: magoo_on_speak_chunk raised"))
    speak(servo, 0.3, lambda t: 0.2)
    assert angle_of(servo.pin.state, servo.config) == pytest.approx(24, abs=0.5)  # 0.2 × gain 4 × 30°
    await servo.__aexit__(None, None, None)


async def test_leaving_moves_to_rest_stops_the_pulses_and_frees_the_pin():
    config = mock_config(max_speed=100, detach_after=0.3)
    with pins.shared_factory(config) as factory:
        servo = await entered(config)
        servo.magoo_on_state_change(new=State.SPEAKING)
        speak(servo, 0.5, lambda t: 0.25)  # held wide open at 30°
        assert angle_of(servo.pin.state, config) == pytest.approx(30, abs=0.1)
        before = len(servo.pin.states)
        await servo.__aexit__(None, None, None)

        leaving = [angle_of(s.state, config) for s in servo.pin.states[before - 1 :] if s.state]
        assert leaving[-1] == pytest.approx(0.0)  # to rest first ...
        assert np.abs(np.diff(leaving)).max() <= 100 * servo.period + 1e-6  # ... at max_speed
        assert servo.pin.frequency is None and servo.pin.state == 0  # ... then no pulses
        assert servo.device is None
        # the pin is free again: another servo can take it
        again = await entered(config)
        assert again.pin is factory.pin(18)
        await again.__aexit__(None, None, None)


async def test_shutdown_sends_it_to_rest_and_later_events_do_not_move_it():
    servo = await entered(mock_config(detach_after=0.1))
    servo.magoo_on_state_change(new=State.AWAKE)
    servo.magoo_on_wake()
    list(ticks(servo, 0.1))
    servo.magoo_on_shutdown()
    servo.magoo_on_state_change(new=State.SPEAKING)
    servo.magoo_on_wake()
    assert list(ticks(servo, 1.0))[-1] is None
    await servo.__aexit__(None, None, None)
    assert servo.pin.frequency is None


async def test_it_starts_at_rest():
    config = mock_config(rest_angle=12)
    servo = await entered(config)
    assert angle_of(servo.pin.state, config) == pytest.approx(12)
    assert servo.pin.frequency == 50
    await servo.__aexit__(None, None, None)


# ---- the head -----------------------------------------------------------------------------------


async def test_the_wake_nod_goes_to_its_angle_and_back_and_the_listening_pose_is_held():
    config = mock_config(wake={"angle": 25, "seconds": 0.4}, listening_angle=10, speak=False)
    servo = await entered(config)
    servo.magoo_on_wake()
    servo.magoo_on_state_change(new=State.AWAKE)
    nod = list(ticks(servo, 0.5))
    assert max(nod) == pytest.approx(25)
    assert nod[-1] == pytest.approx(10)
    servo.magoo_on_state_change(new=State.THINKING)
    servo.magoo_on_state_change(new=State.SPEAKING)
    servo.magoo_on_speak_chunk(level=0.5, duration=1.0)  # no mouth: the voice does not move it
    assert set(ticks(servo, 3.0)) == {10}
    assert angle_of(servo.pin.state, config) == pytest.approx(10)
    await servo.__aexit__(None, None, None)


async def test_a_reversed_servo_is_driven_by_angle_not_by_pulse():
    # calibrated backwards: the longest pulse is -90°
    config = mock_config(angle_at_min_pulse=90, angle_at_max_pulse=-90, listening_angle=45)
    servo = await entered(config)
    servo.magoo_on_state_change(new=State.AWAKE)
    list(ticks(servo, 1.0))
    assert servo.pin.state * 0.02 == pytest.approx(0.0015 - 0.0005, abs=1e-9)
    await servo.__aexit__(None, None, None)


async def test_stats():
    servo = await entered(mock_config(detach_after=0.0))
    list(ticks(servo, 0.1))
    servo.magoo_on_state_change(new=State.AWAKE)
    servo.magoo_on_wake()
    list(ticks(servo, 0.1))
    stats = servo.stats()
    assert stats["moves"] >= 3 and stats["detaches"] == 1 and stats["attached"] == 1
    assert stats["angle"] == pytest.approx(angle_of(servo.pin.state, servo.config), abs=0.01)
    await servo.__aexit__(None, None, None)


async def test_each_turn_is_described_once_for_the_story():
    config = mock_config(min_angle=-10, max_angle=25, speak={"open_angle": 25}, wake={"angle": 20, "seconds": 0.3})
    servo = await entered(config)
    assert servo.describe_turn() is None  # put at rest on start: nothing to tell yet
    servo.magoo_on_wake()
    servo.magoo_on_state_change(new=State.AWAKE)
    list(ticks(servo, 0.5))
    servo.magoo_on_state_change(new=State.SPEAKING)
    trace = speak(servo, 2.0)
    servo.magoo_on_speak_end()
    servo.magoo_on_state_change(new=State.LISTENING)
    list(ticks(servo, 1.0))

    story = servo.describe_turn()
    low, high = min(trace.angles(config)), max(trace.angles(config))
    speaking = sum(1 for _ in trace.angles(config))
    assert story.startswith("servo GPIO18: nodded; moved with the voice, ")
    assert f"{low:.0f}°–{high:.0f}°" in story and high - low > 10
    assert story.endswith("at rest (0°)")
    assert 0 < int(story.split("(")[1].split(" positions")[0]) <= speaking
    assert servo.describe_turn() is None, "told once"
    await servo.__aexit__(None, None, None)


# ---- its own loop -------------------------------------------------------------------------------


async def test_its_own_loop_moves_it_and_leaving_parks_it():
    servo = ServoActuator(mock_config(detach_after=0.1))
    async with servo:
        servo.magoo_on_state_change(new=State.SPEAKING)
        for _ in range(200):  # until it moved; the loop runs on real time
            servo.magoo_on_speak_chunk(level=0.25, duration=0.02)
            await asyncio.sleep(0.01)
            if servo.stats()["angle"] > 20:
                break
        assert servo.stats()["angle"] > 20
    assert servo.pin.frequency is None
    assert angle_of(pulses(servo.pin)[-1] / 0.02, servo.config) == pytest.approx(0.0)


async def test_leaving_cut_short_by_the_engine_still_stops_the_pulses():
    servo = ServoActuator(mock_config(detach_after=5.0))  # would hold rest for 5 s before detaching
    await servo.__aenter__()
    servo.magoo_on_state_change(new=State.AWAKE)
    servo.magoo_on_wake()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(servo.__aexit__(None, None, None), 0.1)  # the engine's shutdown_timeout
    assert servo.device is None
    assert servo.pin.frequency is None and servo.pin.state == 0


async def test_a_servo_that_stops_answering_is_left_and_closes_cleanly(caplog):
    servo = ServoActuator(mock_config())
    async with servo:
        real = servo.device

        class Failing:
            value = property(lambda self: real.value)

            @property
            def angle(self):
                return real.angle

            @angle.setter
            def angle(self, value):
                raise OSError("pigpio connection lost")

            def detach(self):
                real.detach()

            def close(self):
                real.close()

        servo.device = Failing()
        servo.magoo_on_state_change(new=State.AWAKE)
        servo.magoo_on_wake()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if servo.stats()["broken"]:
                break
        assert servo.stats()["broken"] == 1
    assert "pigpio connection lost" in caplog.text
    assert servo.pin.frequency is None


# ---- what goes wrong at start -------------------------------------------------------------------


async def test_a_busy_pin_is_one_clear_error_and_the_first_servo_keeps_working():
    first = await entered(mock_config())
    with pytest.raises(BackendError) as caught:
        await entered(mock_config())
    assert caught.value.message.startswith("GPIO18 is already in use by another program or another servo")
    assert not caught.value.retryable
    first.magoo_on_state_change(new=State.AWAKE)
    first.magoo_on_wake()
    assert max(ticks(first, 0.3)) == pytest.approx(20)
    await first.__aexit__(None, None, None)


async def test_a_stopped_pigpio_daemon_is_one_clear_error():
    port = unused_port()
    servo = ServoActuator(mock_config(pin_factory="pigpio", pigpio_port=port), drive=False)
    with pytest.raises(BackendError) as caught:
        await servo.__aenter__()
    assert caught.value.message == (
        f"cannot reach the pigpio daemon at localhost:{port}: start it with `sudo systemctl start pigpiod`"
        ' (or use pin_factory = "lgpio")'
    )
    assert not caught.value.retryable
    assert servo.device is None


async def test_gpiozeros_own_pigpio_factory_failing_to_connect_gives_the_same_error(monkeypatch, capsys):
    # the daemon went away between the check and gpiozero's connection: gpiozero's PiGPIOFactory
    # really tries to connect and raises OSError (pigpio prints its banner)
    async def daemon_is_there(config):
        return None

    monkeypatch.setattr(pins, "check_pigpio_daemon", daemon_is_there)
    port = unused_port()
    with pytest.raises(BackendError, match=rf"^cannot reach the pigpio daemon at localhost:{port}: start it with"):
        await ServoActuator(mock_config(pin_factory="pigpio", pigpio_port=port), drive=False).__aenter__()
    assert "Can't connect to pigpio" in capsys.readouterr().out


async def test_a_remote_pigpio_daemon_names_where_to_start_it():
    port = unused_port()
    config = mock_config(pin_factory="pigpio", pigpio_host="127.0.0.2", pigpio_port=port)
    with pytest.raises(BackendError, match=r"at 127\.0\.0\.2:\d+: start it there with `sudo systemctl start pigpiod`"):
        await ServoActuator(config, drive=False).__aenter__()


@pytest.mark.parametrize(
    ("factory", "module", "install"),
    [
        ("pigpio", "pigpio", "sudo apt install python3-pigpio"),
        ("lgpio", "lgpio", "sudo apt install python3-lgpio"),
        ("mock", "gpiozero", "uv pip install magoo-servo"),
    ],
)
async def test_a_missing_gpio_library_names_its_install_command(monkeypatch, factory, module, install):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    with pytest.raises(MissingDependency) as caught:
        await ServoActuator(mock_config(pin_factory=factory), drive=False).__aenter__()
    assert caught.value.module == module
    assert install in caught.value.message


async def test_no_gpio_library_at_all_with_the_default_factory(monkeypatch):
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    def none_loads():
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(none_loads))
    with pytest.raises(BackendError) as caught:
        await ServoActuator(mock_config(pin_factory="default"), drive=False).__aenter__()
    assert "no GPIO library found" in caught.value.message
    assert "sudo apt install python3-lgpio" in caught.value.message
    assert 'pin_factory = "mock"' in caught.value.message


async def test_a_pin_name_gpiozero_does_not_know_is_a_clear_error():
    with pytest.raises(BackendError, match=r"'GPIO99' is not a GPIO pin .*give a BCM number such as 18"):
        await entered(mock_config(pin="GPIO99"))
