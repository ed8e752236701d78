"""End of speech by Silero VAD in the pocketsphinx backend: a short end_silence that does not cut
commands that pause, because a pause after unfinished words waits longer.

The commands are synthesized now by espeak-ng with a pause written into them (SSML ``<break>``,
pocketsphinx_helpers.paused_clip); each is judged against what a bare decoder hears in the whole
clip with an end_silence that cannot cut it, so a command the recognizer does not hear at all is
not blamed on end of speech."""

from __future__ import annotations

import asyncio
import functools

import pytest
from pydantic import ValidationError

from magoo_core.types import SpeechActivity, Transcript

from magoo_pocketsphinx import PocketsphinxSpeechToText, command_words
from magoo_pocketsphinx.unfinished import unfinished_test
from pocketsphinx_helpers import PAUSED, PAUSED_COMMANDS, paused_clip, room, shipped_clip, stream

PAUSE_MS = 450  # heard as about 0.55 s of silence: 0.3 s ends an utterance there


def heard(config: dict, pcm: bytes) -> tuple[list[str], list]:
    """The finals of a continuous stream over ``pcm``, and every item."""
    results = asyncio.run(stream(config, pcm, continuous=True))
    found = [item for _, _, item in results]
    return [i.text for i in found if isinstance(i, Transcript) and i.final], found


@functools.cache
def paused_commands() -> list[tuple[str, bytes]]:
    """(command, room quiet + the paused command + room quiet), for the commands the backend hears
    when end of speech waits 1.2 s (longer than any pause here)."""
    clips = []
    for before, after in PAUSED:
        pcm = room(0.3) + paused_clip(before, after, PAUSE_MS) + room(1.5)
        if heard({"commands": PAUSED_COMMANDS, "end_silence": 1.2, "unfinished_silence": None}, pcm)[0] == [f"{before} {after}"]:
            clips.append((f"{before} {after}", pcm))
    assert len(clips) >= 3, "espeak-ng's commands are no longer heard at all: the test would prove little"
    return clips


def test_commands_that_pause_are_not_cut_at_a_short_end_silence():
    config = {"commands": PAUSED_COMMANDS}  # vad = "silero", end_silence 0.3, unfinished_silence 1.0
    assert PocketsphinxSpeechToText.Config.model_validate(config).end_silence < 0.6
    for command, pcm in paused_commands():
        finals, _ = heard(config, pcm)
        assert finals == [command]


def test_without_the_longer_wait_the_same_commands_are_cut_in_their_pause():
    """The other side of the test above: it can fail, and the pause is where it would."""
    config = {"commands": PAUSED_COMMANDS, "unfinished_silence": None}
    cut = [command for command, pcm in paused_commands() if len(heard(config, pcm)[0]) > 1]
    assert len(cut) >= 2


def test_a_whole_command_ends_at_end_silence_and_a_paused_one_waits():
    async def run(config: dict, pcm: bytes) -> tuple[int, dict]:
        stt = PocketsphinxSpeechToText(PocketsphinxSpeechToText.Config.model_validate(config))
        from pocketsphinx_helpers import chunks

        consumed = 0

        async def audio():
            nonlocal consumed
            for piece in chunks(pcm):
                consumed += 1
                yield piece

        from magoo_core.roles import AudioStream

        async with stt:
            async for item in stt.transcribe(AudioStream(audio(), continuous=False)):
                if isinstance(item, Transcript) and item.final:
                    return consumed, dict(stt.stats())
        raise AssertionError("no final")

    config = {"commands": PAUSED_COMMANDS}
    consumed, stats = asyncio.run(run(config, room(0.3) + shipped_clip() + room(1.5)))
    # 0.3 s + 0.96 s of words + end_silence 0.3 s = 1.56 s, 20 chunks of 80 ms; pocketsphinx's own detector needs 24
    assert consumed <= 21 and stats["held"] == 0
    command, pcm = paused_commands()[0]
    _, stats = asyncio.run(run(config, pcm))
    assert stats["held"] == 1


def test_speech_activity_brackets_each_utterance():
    command, pcm = paused_commands()[0]
    finals, found = heard({"commands": PAUSED_COMMANDS}, pcm + room(0.5) + shipped_clip() + room(1.2))
    assert finals == [command, "what time is it"]
    assert [i.started for i in found if isinstance(i, SpeechActivity)] == [True, False, True, False]


def test_what_looks_unfinished():
    with_commands = unfinished_test(["set a timer for five minutes", "what time is it"], command_words)
    assert with_commands("set a timer for") and with_commands("") and with_commands("what time")
    assert not with_commands("what time is it") and not with_commands("Set a timer for five minutes.")
    free = unfinished_test(None, command_words)
    assert free("set a timer for") and free("turn on the") and free("tell me a joke and")
    assert not free("") and not free("what time is it")


def test_unfinished_silence_is_at_least_end_silence():
    with pytest.raises(ValidationError, match=r"unfinished_silence \(0.2 s\) must be at least end_silence \(0.3 s\)"):
        PocketsphinxSpeechToText.Config.model_validate({"unfinished_silence": 0.2})
    assert PocketsphinxSpeechToText.Config.model_validate({"unfinished_silence": None}).unfinished_silence is None
