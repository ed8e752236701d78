"""A plugin that records every event it receives; the base of the log actuator and the test kit."""

from __future__ import annotations

from typing import Any

from .plugins import hookimpl


class EventRecorder:
    """A plugin that records every event, in order, as ``(name, arguments)``."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _add(self, event: str, **arguments: Any) -> None:
        """Called on the event loop for every event; override to do more than keep it."""
        self.events.append((event, arguments))

    @hookimpl
    def magoo_on_startup(self, profile):
        self._add("startup", profile=profile)

    @hookimpl
    def magoo_on_state_change(self, old, new, turn):
        self._add("state_change", old=old, new=new, turn=turn)

    @hookimpl
    def magoo_on_heartbeat(self, status):
        self._add("heartbeat", status=status)

    @hookimpl
    def magoo_on_error(self, failure):
        self._add("error", failure=failure)

    @hookimpl
    def magoo_on_recovered(self, role, backend, failures, downtime):
        self._add("recovered", role=role, backend=backend, failures=failures, downtime=downtime)

    @hookimpl
    def magoo_on_shutdown(self):
        self._add("shutdown")

    @hookimpl
    def magoo_on_wake(self, wake, turn):
        self._add("wake", wake=wake, turn=turn)

    @hookimpl
    def magoo_on_speech_start(self, timestamp, turn):
        self._add("speech_start", timestamp=timestamp, turn=turn)

    @hookimpl
    def magoo_on_speech_end(self, timestamp, turn):
        self._add("speech_end", timestamp=timestamp, turn=turn)

    @hookimpl
    def magoo_on_transcript(self, transcript, turn):
        self._add("transcript", transcript=transcript, turn=turn)

    @hookimpl
    def magoo_on_reply(self, reply, turn):
        self._add("reply", reply=reply, turn=turn)

    @hookimpl
    def magoo_on_speak_start(self, text, turn):
        self._add("speak_start", text=text, turn=turn)

    @hookimpl
    def magoo_on_speak_chunk(self, level, duration, turn):
        self._add("speak_chunk", level=level, duration=duration, turn=turn)

    @hookimpl
    def magoo_on_speak_end(self, turn, interrupted):
        self._add("speak_end", turn=turn, interrupted=interrupted)

    @hookimpl
    def magoo_on_turn_end(self, timeline):
        self._add("turn_end", timeline=timeline)

    @hookimpl
    def magoo_on_timer_started(self, timer):
        self._add("timer_started", timer=timer)

    @hookimpl
    def magoo_on_timer_updated(self, timer):
        self._add("timer_updated", timer=timer)

    @hookimpl
    def magoo_on_timer_cancelled(self, timer):
        self._add("timer_cancelled", timer=timer)

    @hookimpl
    def magoo_on_timer_finished(self, timer):
        self._add("timer_finished", timer=timer)
