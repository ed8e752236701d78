"""A ``magoo run`` profile whose one turn plays a long reply in real time: for the tests that stop
or kill a run in the middle of a reply (tests/test_shutdown.py, tests/test_ducking.py)."""

from __future__ import annotations

from pathlib import Path

LONG_REPLY = 60.0  # seconds of tone the reply would play


def long_reply_profile(folder: Path, more: str = "") -> str:
    """A wake word, a command, then a 60 s reply played in real time; a status file and an event log.

    :param more: TOML tables added at the end (``[engine.ducking]`` ...).
    """
    return f"""\
[magoo]
name = "long"

[engine]
status_file = "status.json"
status_interval = 0.2
shutdown_timeout = 120  # longer than the reply: only cutting it off stops in time

[audio_source]
backend = "scripted"
realtime = true
segments = [{{ seconds = 0.3 }}, {{ seconds = 0.4, tone = 660.0, amplitude = 0.5 }}, {{ seconds = 0.2 }},
            {{ seconds = 0.6, tone = 440.0, amplitude = 0.3 }}, {{ seconds = 300 }}]

[wake]
backend = "scripted"
level = 0.2

[stt]
backend = "scripted"

[responder]
backend = "echo"

[tts]
backend = "tone"
seconds_per_char = 3.0
max_seconds = {LONG_REPLY}

[player]
backend = "wav"
realtime = true
path = "{folder / 'reply.wav'}"

[[actuators]]
backend = "log"
path = "{folder / 'events.jsonl'}"
{more}"""
