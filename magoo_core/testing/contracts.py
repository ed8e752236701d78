"""Contract test suites, one per role, for plugin authors to subclass in their own tests.

::

    from magoo_core.testing.contracts import ResponderContract
    from magoo_hello import HelloResponder

    class TestHelloContract(ResponderContract):
        backend_class = HelloResponder
        config = {"greeting": "Hi"}

Each suite checks what the engine relies on: the class is registrable (name, strict described
``Config``), it enters and leaves cleanly, and the role's methods produce the right types.
The tests are plain functions (no pytest-asyncio needed): coroutines run with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from ..audio import silence, tone
from ..plugins import BACKEND_NAME, Role, _check_backend_class
from ..roles import STT_OUTPUTS, TTS_OUTPUTS
from ..types import AudioChunk, AudioFormat, EncodedAudio, Reply, Transcript, WakeEvent

#: Upper bound for any single call in these suites; a backend that takes longer is hanging.
CALL_TIMEOUT = 30.0


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, CALL_TIMEOUT))


class BackendContract:
    """Checks every backend shares. Set ``backend_class`` and ``config`` in the subclass."""

    role: ClassVar[Role]
    backend_class: ClassVar[type]
    config: ClassVar[dict[str, Any]] = {}

    def make(self) -> Any:
        return self.backend_class(self.backend_class.Config.model_validate(self.config))

    async def entered(self, coro_factory: Any) -> Any:
        """Run ``coro_factory(backend)`` inside the backend's async context."""
        backend = self.make()
        enter = getattr(backend, "__aenter__", None)
        if enter is None:
            return await coro_factory(backend)
        await enter()
        try:
            return await coro_factory(backend)
        finally:
            await backend.__aexit__(None, None, None)

    def test_registrable(self) -> None:
        assert BACKEND_NAME.match(self.backend_class.name)
        assert _check_backend_class(self.role, self.backend_class) is None

    def test_config_forbids_unknown_keys(self) -> None:
        with pytest.raises(ValidationError):
            self.backend_class.Config.model_validate({**self.config, "no_such_key_in_any_config": 1})

    def test_every_config_field_is_described(self) -> None:
        undocumented = [k for k, f in self.backend_class.Config.model_fields.items() if not f.description]
        assert not undocumented, f"fields without a description: {undocumented}"

    def test_enters_and_leaves(self) -> None:
        async def nothing(backend: Any) -> None:
            return None

        run(self.entered(nothing))


class AudioSourceContract(BackendContract):
    """An audio source yields well-formed chunks of one format with rising timestamps."""

    role = Role.AUDIO_SOURCE
    chunks_to_read: ClassVar[int] = 5

    def test_yields_audio_chunks(self) -> None:
        async def take(source: Any) -> list[AudioChunk]:
            got = []
            stream = source.stream()
            try:
                async for chunk in stream:
                    got.append(chunk)
                    if len(got) >= self.chunks_to_read:
                        break
            finally:
                await stream.aclose()
            return got

        chunks = run(self.entered(take))
        assert chunks, "the source yielded nothing"
        assert all(isinstance(c, AudioChunk) for c in chunks)
        assert len({c.format for c in chunks}) == 1, "the format changed between chunks"
        assert all(len(c.pcm) % (c.channels * c.sample_width) == 0 for c in chunks)
        stamps = [c.timestamp for c in chunks]
        assert stamps == sorted(stamps)


class WakeDetectorContract(BackendContract):
    """A wake detector declares its input, stays quiet on silence, and resets."""

    role = Role.WAKE

    def frames(self, seconds: float) -> list[AudioChunk]:
        detector = self.make()
        fmt: AudioFormat = detector.input_format
        size = detector.frame_samples or round(fmt.sample_rate * 0.08)
        count = max(1, math.ceil(seconds * fmt.sample_rate / size))
        return [silence(fmt, size / fmt.sample_rate) for _ in range(count)]

    def test_declares_input(self) -> None:
        detector = self.make()
        assert isinstance(detector.input_format, AudioFormat)
        assert detector.frame_samples is None or detector.frame_samples > 0

    def test_silence_does_not_wake(self) -> None:
        async def score(detector: Any) -> list[WakeEvent]:
            events = [detector.process(frame) for frame in self.frames(2.0)]
            detector.reset()
            return [e for e in events if e is not None]

        assert run(self.entered(score)) == []

    def test_scores_when_given_are_by_label_with_a_threshold_each(self) -> None:
        """The optional ``scores``/``thresholds``: absent, None, or 0..1 for every label after a frame."""

        async def score(detector: Any) -> tuple[Any, Any]:
            for frame in self.frames(0.5):
                detector.process(frame)
            return getattr(detector, "scores", None), getattr(detector, "thresholds", None)

        scores, thresholds = run(self.entered(score))
        if scores is None:
            return
        assert scores, "a detector that gives scores gives them after the first frame"
        assert all(isinstance(label, str) and 0.0 <= value <= 1.0 for label, value in scores.items()), scores
        assert thresholds is not None and set(scores) <= set(thresholds), (scores, thresholds)


class SpeechToTextContract(BackendContract):
    """A speech-to-text backend yields only transcripts, replies and speech boundaries, and ends."""

    role = Role.STT

    def utterance(self, fmt: AudioFormat) -> list[AudioChunk]:
        """Audio to transcribe; override with real speech for a real backend."""
        pieces = [silence(fmt, 0.3), tone(300.0, 1.0, fmt.sample_rate, 0.3), silence(fmt, 1.0)]
        return pieces

    def test_transcribes_and_ends(self) -> None:
        async def transcribe(stt: Any) -> list[Any]:
            async def audio() -> AsyncIterator[AudioChunk]:
                for chunk in self.utterance(stt.input_format):
                    yield chunk

            return [item async for item in stt.transcribe(audio())]

        items = run(self.entered(transcribe))
        assert all(isinstance(item, STT_OUTPUTS) for item in items)
        finals = [i for i in items if isinstance(i, Transcript) and i.final]
        assert len(finals) <= 1, "one utterance gives at most one final transcript"

    def test_declares_input_and_replies(self) -> None:
        stt = self.make()
        assert isinstance(stt.input_format, AudioFormat)
        assert isinstance(stt.replies, bool)


class ResponderContract(BackendContract):
    """A responder answers a transcript with a Reply, None, or a stream of text deltas (that may
    end with a ``Reply(text="")``, its follow-up)."""

    role = Role.RESPONDER
    question: ClassVar[str] = "what time is it"

    def test_answers(self) -> None:
        async def respond(responder: Any) -> Any:
            answered = responder.respond(Transcript(self.question))
            if inspect.isawaitable(answered):
                answered = await answered
            if answered is not None and not isinstance(answered, Reply) and hasattr(answered, "__aiter__"):
                return [item async for item in answered]
            return answered

        reply = run(self.entered(respond))
        if isinstance(reply, list):
            deltas, last = (reply[:-1], reply[-1]) if reply and isinstance(reply[-1], Reply) else (reply, None)
            assert all(isinstance(delta, str) for delta in deltas), f"a streamed reply yields text: {reply!r}"
            assert last is None or last.text == "", f"a stream may only end with a Reply(text=''): {last!r}"
        else:
            assert reply is None or (isinstance(reply, Reply) and isinstance(reply.text, str))


class TextToSpeechContract(BackendContract):
    """A TTS backend streams audio for a sentence."""

    role = Role.TTS
    sentence: ClassVar[str] = "Hello, this is magoo speaking."

    def test_synthesizes_audio(self) -> None:
        async def synthesize(tts: Any) -> list[Any]:
            return [piece async for piece in tts.synthesize(self.sentence)]

        pieces = run(self.entered(synthesize))
        assert pieces, "no audio for a whole sentence"
        assert all(isinstance(p, TTS_OUTPUTS) for p in pieces)
        size = sum(len(p.pcm) if isinstance(p, AudioChunk) else len(p.data) for p in pieces)
        assert size > 0

    def test_output_kind_matches_the_started_output_format(self) -> None:
        """``output_kind(config)`` (what ``magoo check`` pairs with the player) is what the started
        backend announces as ``output_format``, when the backend has both."""
        output_kind = getattr(self.backend_class, "output_kind", None)
        if not callable(output_kind):
            pytest.skip("no output_kind: magoo check trusts the player with this TTS")

        async def announced(tts: Any) -> Any:
            return getattr(tts, "output_format", None)

        config = self.backend_class.Config.model_validate(self.config)
        started = run(self.entered(announced))
        if started is not None:
            assert output_kind(config) == started, f"output_kind says {output_kind(config)!r}, the backend {started!r}"


class _Progress:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def started(self) -> None:
        self.calls.append("started")

    def played(self, level: float, duration: float) -> None:
        assert 0.0 <= level <= 1.0 and duration >= 0
        self.calls.append("played")


class PlayerContract(BackendContract):
    """A player reports the start before progress, and stop() ends play() promptly."""

    role = Role.PLAYER

    def audio(self) -> list[AudioChunk | EncodedAudio]:
        """What to play: 0.5 s of tone by default; override for a player that wants encoded audio."""
        return [tone(440.0, 0.05, 16000, 0.3, phase_samples=i * 800) for i in range(10)]

    async def _stream(self) -> AsyncIterator[AudioChunk | EncodedAudio]:
        for piece in self.audio():
            yield piece
            await asyncio.sleep(0)

    def test_plays_and_reports_progress(self) -> None:
        progress = _Progress()

        async def play(player: Any) -> None:
            await player.play(self._stream(), progress)

        run(self.entered(play))
        assert progress.calls and progress.calls[0] == "started"
        assert progress.calls.count("started") == 1

    def test_stop_ends_play(self) -> None:
        async def endless() -> AsyncIterator[AudioChunk | EncodedAudio]:
            while True:
                for piece in self.audio():
                    yield piece
                    await asyncio.sleep(0.01)

        async def play_then_stop(player: Any) -> None:
            task = asyncio.create_task(player.play(endless(), _Progress()))
            await asyncio.sleep(0.2)
            await player.stop()
            await asyncio.wait_for(task, 10.0)

        run(self.entered(play_then_stop))


class ActuatorContract(BackendContract):
    """An actuator's event hooks match the specs (a typo would fail here)."""

    role = Role.ACTUATOR

    def test_hooks_are_valid(self) -> None:
        from . import build_plugins

        plugins = build_plugins()
        actuator = self.make()
        plugins.register_instance(actuator, name="contract-actuator")
        plugins.unregister_instance(actuator)
