"""The plugin-author kit, used the way a plugin's tests use it: contract suites and fixtures."""

import pytest

from magoo_core import Outcome
from magoo_core.default_plugins.fakes import (
    EchoResponder,
    EventLogActuator,
    ScriptedSpeechToText,
    ScriptedWakeDetector,
    ToneSpeech,
)
from magoo_core.errors import MissingDependency, require
from magoo_core.testing import MemoryPlayer
from magoo_core.testing.contracts import (
    ActuatorContract,
    PlayerContract,
    ResponderContract,
    SpeechToTextContract,
    TextToSpeechContract,
    WakeDetectorContract,
)


class TestScriptedWakeContract(WakeDetectorContract):
    backend_class = ScriptedWakeDetector
    config = {"level": 0.2}


class TestScriptedSttContract(SpeechToTextContract):
    backend_class = ScriptedSpeechToText
    config = {"transcripts": ["hello"]}


class TestEchoContract(ResponderContract):
    backend_class = EchoResponder


class TestToneSpeechContract(TextToSpeechContract):
    backend_class = ToneSpeech


class TestMemoryPlayerContract(PlayerContract):
    backend_class = MemoryPlayer


class TestLogActuatorContract(ActuatorContract):
    backend_class = EventLogActuator


def test_a_contract_catches_a_backend_that_breaks_it():
    class Loud(ScriptedWakeDetector):
        name = "loud"

        def process(self, chunk):  # wakes on anything, silence included
            return super().process(chunk) or self._fire(chunk)

        def _fire(self, chunk):
            from magoo_core import WakeEvent

            return WakeEvent("x", 1.0, 0.5, chunk.timestamp)

    class TestLoud(WakeDetectorContract):
        backend_class = Loud

    with pytest.raises(AssertionError):
        TestLoud().test_silence_does_not_wake()


def test_the_magoo_run_fixture_runs_a_turn(magoo_run):
    run = magoo_run({"responder": {"backend": "echo", "template": "ok: {text}"}})
    assert run.replies == ["ok: what time is it"]
    assert [t.outcome for t in run.timelines] == [Outcome.OK]
    assert run.names[0] == "startup" and run.names[-1] == "shutdown"


def test_the_magoo_plugins_fixture_has_the_kit_player(magoo_plugins):
    from magoo_core import Role

    plugins = magoo_plugins()
    assert "memory" in plugins.names(Role.PLAYER)
    assert plugins.backend(Role.PLAYER, "wav").distribution == "magoo"


def test_the_magoo_tone_fixture(magoo_tone):
    chunk = magoo_tone(0.5, frequency=1000, sample_rate=8000)
    assert chunk.frames == 4000 and chunk.sample_rate == 8000


def test_require_names_the_install_command_for_a_missing_library():
    with pytest.raises(MissingDependency) as caught:
        require("definitely_not_installed_lib", backend="pyaudio", install="uv pip install pyaudio")
    assert "backend 'pyaudio'" in str(caught.value) and "uv pip install pyaudio" in str(caught.value)
    assert caught.value.retryable is False
    assert require("json", backend="x", install="-").dumps([1]) == "[1]"
