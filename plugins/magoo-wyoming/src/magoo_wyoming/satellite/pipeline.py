"""One turn handed to Home Assistant's pipeline: the command's audio goes out until Home Assistant
sends the ``transcript``; its reply comes back as ``synthesize`` (the text) and the TTS audio; a
``played`` is owed once that sound has ended. An ``error`` ends it with Home Assistant's line."""

from __future__ import annotations

import asyncio

from magoo_core.errors import BackendError

from .audio import IncomingSound


class PipelineRun:
    """The state of one pipeline run, fed by the link's reader. Event-loop only.

    Steps: ``transcript`` resolves :meth:`transcript`; then ``synthesize`` gives :attr:`text` and
    ``audio-start`` opens :attr:`sound`, resolving :meth:`reply`. :meth:`fail` ends whatever is
    still awaited with one readable line.
    """

    def __init__(self, wake_word: str) -> None:
        loop = asyncio.get_running_loop()
        self.wake_word = wake_word
        self._transcript: asyncio.Future[str] = loop.create_future()
        self._reply: asyncio.Future[IncomingSound] = loop.create_future()
        self.text = ""
        self.sound: IncomingSound | None = None
        self.played_sent = False
        self.taken = False  # a turn took it (remote wake: the run begins before the turn does)
        self.failed: str | None = None

    @property
    def heard(self) -> bool:
        """Home Assistant has sent the transcript (the microphone's audio is no longer wanted)."""
        return self._transcript.done()

    @property
    def wants_reply_audio(self) -> bool:
        """An ``audio-start`` now is this run's reply (not an announcement)."""
        return self.heard and self.sound is None and self.failed is None

    def on_transcript(self, text: str) -> None:
        if not self._transcript.done():
            self._transcript.set_result(text)

    def on_synthesize(self, text: str) -> None:
        self.text = text

    def on_audio_start(self) -> IncomingSound:
        self.sound = IncomingSound()
        if not self._reply.done():
            self._reply.set_result(self.sound)
        return self.sound

    def fail(self, message: str) -> None:
        """End the run: what is awaited raises ``BackendError(message)``; a sound arriving is cut."""
        if self.failed is not None:
            return
        self.failed = message
        error = BackendError(message, restart=False)
        for future in (self._transcript, self._reply):
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: the turn that awaits it raises it itself
        if self.sound is not None:
            self.sound.fail(message)

    async def transcript(self) -> str:
        """What Home Assistant heard. :raises BackendError: it said error, or the link was lost."""
        return await asyncio.shield(self._transcript)

    async def reply(self) -> IncomingSound:
        """The reply's sound, once its ``audio-start`` came. :raises BackendError: as :meth:`transcript`."""
        return await asyncio.shield(self._reply)
