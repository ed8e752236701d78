"""The plugin contract: every hook a magoo plugin may implement.

Two families only:

* ``magoo_register_*`` — called once, on the main thread, while the plugin manager is built.
  The plugin calls ``register(BackendClass)`` for each backend it provides. Raising marks the
  plugin as failed (shown by ``magoo plugins``); it never stops other plugins from loading.
* ``magoo_on_*`` — events, broadcast to every implementation on the engine's event-loop thread.
  An implementation may be a plain function or ``async def``; the engine awaits coroutines,
  concurrently across plugins, and waits at most ``[engine] hook_timeout`` seconds before moving
  on (the slow call keeps running and is logged; until it ends, that plugin's next coroutines are
  not waited for, and beyond 8 left running the oldest is cancelled). Arguments are passed by keyword: take only the
  ones you need. Raising is logged with the plugin's name and never stops the other plugins or
  the engine. Event hooks must not block: do slow work in a task or a thread.

Every spec's docstring is mirrored in docs/plugin-hooks.md; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .control import Control
    from .profile_model import Profile
    from .speech import Speech
    from .timers import Timers
    from .tools import Tool
    from .types import BackendFailure, EngineStatus, Reply, State, Timer, Transcript, TurnTimeline, WakeEvent

hookspec = pluggy.HookspecMarker("magoo")

Register = Callable[[type], None]

# --------------------------------------------------------------------------------------------
# Registration: called once when the plugin manager is built
# --------------------------------------------------------------------------------------------


@hookspec
def magoo_register_audio_sources(register: Register) -> None:
    """Register audio source backends (microphones, files).

    Called once per plugin, on the main thread, while the plugin manager is built.

    :param register: call ``register(BackendClass)`` for each audio source backend; the class
        follows :class:`magoo_core.roles.AudioSource`. A name already registered by another
        distribution is an error naming both.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_wake_detectors(register: Register) -> None:
    """Register wake word detector backends.

    Called once per plugin, on the main thread, while the plugin manager is built.

    :param register: call ``register(BackendClass)`` for each detector; the class follows
        :class:`magoo_core.roles.WakeDetector`.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_stt(register: Register) -> None:
    """Register speech-to-text backends.

    Called once per plugin, on the main thread, while the plugin manager is built.

    :param register: call ``register(BackendClass)`` for each backend; the class follows
        :class:`magoo_core.roles.SpeechToText`.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_responders(register: Register) -> None:
    """Register responder backends (turn a final transcript into reply text).

    Called once per plugin, on the main thread, while the plugin manager is built.

    :param register: call ``register(BackendClass)`` for each backend; the class follows
        :class:`magoo_core.roles.Responder`.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_tts(register: Register) -> None:
    """Register text-to-speech backends.

    Called once per plugin, on the main thread, while the plugin manager is built.

    :param register: call ``register(BackendClass)`` for each backend; the class follows
        :class:`magoo_core.roles.TextToSpeech`.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_players(register: Register) -> None:
    """Register player backends (speakers, recorders).

    Called once per plugin, on the main thread, while the plugin manager is built.

    :param register: call ``register(BackendClass)`` for each backend; the class follows
        :class:`magoo_core.roles.Player`.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_actuators(register: Register) -> None:
    """Register actuator backends (servos, LEDs, webhooks) used in ``[[actuators]]``.

    Called once per plugin, on the main thread, while the plugin manager is built. The running
    instance of a configured actuator is itself registered with the plugin manager, so its
    ``@hookimpl`` methods receive every event with the instance's own config.

    :param register: call ``register(BackendClass)`` for each backend.

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_services(register: Register) -> None:
    """Register services: backends that serve several roles from one connection (a Home Assistant
    link is speech-to-text, responder and text-to-speech at once), used in ``[services.NAME]``.

    Called once per plugin, on the main thread, while the plugin manager is built. A profile's
    role sections name a configured service with ``service = "NAME"``; the engine then runs one
    instance for all of them (entered once, restarted once, left once) and each role's own
    ``backup`` answers while it cannot.

    :param register: call ``register(ServiceClass)`` for each service; the class has ``name``, a
        ``Config``, ``roles`` (a frozenset of :class:`magoo_core.roles.Role`) and the methods of
        each of those roles (``transcribe``, ``respond``, ``synthesize`` ...).

    Return value: ignored. Raising marks the plugin as failed; other plugins still load.
    """


@hookspec
def magoo_register_commands(app: Any) -> None:
    """Add sub-commands to the ``magoo`` command line.

    Called once per plugin, on the main thread, when a command line names a command that is
    neither magoo's own nor one of the ``magoo.commands`` entry points, and by ``magoo plugins``
    (which lists them). ``magoo --help`` does not call it and so does not list these commands:
    it imports no plugin. Prefer a ``magoo.commands`` entry point, which ``magoo --help`` lists.

    :param app: a :class:`typer.Typer` application; use ``@app.command()``.

    Return value: ignored. Raising is logged as a warning; the other plugins' commands still work.
    """


@hookspec
def magoo_register_tools(register: Callable[[Tool], None]) -> None:
    """Offer tools a language model may call (a servo's ``nod``, a configured webhook, a timer).

    Called once per run on the event-loop thread, after every backend has started and before
    ``magoo_on_startup``; a running actuator's own ``@hookimpl`` method is called too, so its
    tools can use its config. The profile's responder section chooses which tools are on.

    :param register: call ``register(Tool(...))`` for each tool (:class:`magoo_core.tools.Tool`:
        name, description, a pydantic model of the arguments, an ``async`` function, a timeout).
        A name already taken is left out with a warning.

    Return value: ignored. Raising is logged with the plugin's name; the other plugins' tools stay.
    """


# --------------------------------------------------------------------------------------------
# Lifecycle events
# --------------------------------------------------------------------------------------------


@hookspec
def magoo_on_startup(profile: Profile, speech: Speech, timers: Timers, control: Control) -> None:
    """The engine has entered every backend and is about to listen.

    Called once per run on the event-loop thread, before the first audio is processed.

    :param profile: the validated profile being run. Secret fields are ``SecretStr`` and show as
        ``**********``; never log values you unwrap.
    :param speech: the way to make the assistant say something outside a turn, for the whole
        run: ``await speech.say("text")`` on the loop, ``speech.say_soon("text")`` from any
        thread (see :class:`magoo_core.speech.Speech`). Keep it; take it only if you need it.
    :param timers: the run's timers (:class:`magoo_core.timers.Timers`), on the loop: ``list()``,
        ``set(seconds, name)``, ``cancel(name)``, and ``remote.started/updated/cancelled/finished``
        for timers another system counts down (they are listed and ring like magoo's own).
    :param control: what a watcher sees and may ask of the run (:class:`magoo_core.control.Control`),
        on the loop: ``snapshot()``, ``levels()``, ``subscribe()`` (every event as JSON),
        ``listen()``, ``stop()``, ``mute(bool)``, ``say(text)``, ``set_volume(percent)``. For a
        control API, MQTT, LEDs that show the level.

    Return value: ignored. Raising is logged with the plugin's name; startup continues.
    """


@hookspec
def magoo_on_state_change(old: State, new: State, turn: int | None) -> None:
    """The engine moved from one state to another (listening → awake → thinking → speaking).

    Called on the event-loop thread for every transition, before the work of the new state starts.

    :param old: the previous state.
    :param new: the new state.
    :param turn: the number of the turn in progress, or None when listening between turns.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_heartbeat(status: EngineStatus) -> None:
    """A periodic status snapshot, every ``[engine] heartbeat_interval`` seconds.

    Called on the event-loop thread, also while a turn is in progress.

    :param status: state, uptime, counters (frames, overflows, restarts) and each backend's stats.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_error(failure: BackendFailure) -> None:
    """A backend failed (the turn was dropped and the engine keeps listening) or a plugin's hook raised.

    Called on the event-loop thread after the failure was logged. An ``on_error`` implementation
    that raises is logged but does not trigger another ``on_error``.

    :param failure: role, backend, a readable message (never a secret) and whether retrying helps.

    Return value: ignored.
    """


@hookspec
def magoo_on_recovered(role: str, backend: str, failures: int, downtime: float) -> None:
    """A backend that had failed works again: the microphone delivers audio after a reopen, a
    speech service answers after a dropped connection.

    Called on the event-loop thread when the backend first succeeds after one or more
    ``magoo_on_error`` reports for it.

    :param role: the role's section name (``"audio_source"``, ``"stt"`` ...).
    :param backend: the backend's short name.
    :param failures: consecutive failures before this success.
    :param downtime: seconds from the first of those failures to now.

    Return value: ignored.
    """


@hookspec
def magoo_on_shutdown() -> None:
    """The engine is stopping: capture has ended and backends are about to be left.

    Called once on the event-loop thread. Return actuators to a safe rest position here.

    Return value: ignored. Raising is logged; shutdown continues.
    """


# --------------------------------------------------------------------------------------------
# Turn events
# --------------------------------------------------------------------------------------------


@hookspec
def magoo_on_wake(wake: WakeEvent, turn: int) -> None:
    """A wake word was detected and a turn begins.

    Called on the event-loop thread right after detection, before capture for the turn starts.

    :param wake: model, label, score, threshold, every model's score, the frame's capture time.
    :param turn: the number of the turn it starts.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_speech_start(timestamp: float, turn: int | None) -> None:
    """The speech-to-text backend's voice activity detection heard the user start speaking.

    Called on the event-loop thread; only for backends that report speech boundaries.

    :param timestamp: monotonic time of the speech onset.
    :param turn: the turn in progress, or None in continuous mode before the turn is known.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_speech_end(timestamp: float, turn: int | None) -> None:
    """The user stopped speaking (reported by the STT backend's VAD).

    Called on the event-loop thread.

    :param timestamp: monotonic time of the end of speech.
    :param turn: the turn in progress, or None in continuous mode before the turn is known.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_transcript(transcript: Transcript, turn: int) -> None:
    """A transcript arrived: partial ones while the user speaks, then one final.

    Called on the event-loop thread for each transcript, in order.

    :param transcript: the text; ``transcript.final`` tells partial from final.
    :param turn: the turn it belongs to.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_reply(reply: Reply, turn: int) -> None:
    """The assistant's reply text is ready (from the responder, or from the STT backend itself).

    Called on the event-loop thread before synthesis starts; partial replies (``final`` False)
    may come first from backends that stream text. A streamed reply (a responder that yields text
    deltas) sends a partial reply, the text so far, before each sentence is synthesized, and the
    final one once the whole text is written, while its first sentences may already be playing.
    A reply given as sound comes once, with ``audio`` set (the engine plays it: do not read it).

    :param reply: the reply.
    :param turn: the turn it answers.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_speak_start(text: str, turn: int | None) -> None:
    """Sound of the reply (or of an announcement, or a sound) is really coming out of the speaker now.

    Called on the event-loop thread when the player reports the first sound, after the
    microphone was muted.

    :param text: the text being spoken; for a streamed reply its first sentence (the rest is not
        written yet); for a reply given as sound its text, or ``<audio reply>`` when it has none;
        ``<sound NAME>`` for a sound, ``<audio>`` for other audio played as is.
    :param turn: the turn; None for speech outside a turn (announcements, sounds).

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_speak_chunk(level: float, duration: float, turn: int | None) -> None:
    """A piece of the reply is audible now; for mouths, jaws and LEDs that follow the voice.

    Called on the event-loop thread 20–50 times a second while speaking, as the player reports
    progress. Keep it very cheap.

    :param level: RMS level of the piece, 0..1 of full scale.
    :param duration: seconds of audio in the piece.
    :param turn: the turn; None for speech outside a turn.

    Return value: ignored. Raising is logged with the plugin's name; the same failure repeated is
    reported at most once a minute.
    """


@hookspec
def magoo_on_speak_end(turn: int | None, interrupted: bool) -> None:
    """The reply's sound (or an announcement's, or a sound) has ended (or was stopped by
    barge-in, the stop command, or a failure).

    Called on the event-loop thread when the player returned, before the microphone is
    unmuted after ``[engine] mute_post``.

    :param turn: the turn; None for speech outside a turn.
    :param interrupted: True when playback did not finish on its own.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_turn_end(timeline: TurnTimeline) -> None:
    """A turn is over, whatever its outcome; carries the turn's timeline for latency metrics.

    Called on the event-loop thread once per turn, after the microphone was unmuted.

    :param timeline: when each step happened, the outcome and, if it failed, why.

    Return value: ignored. Raising is logged with the plugin's name.
    """


# --------------------------------------------------------------------------------------------
# Timer events
# --------------------------------------------------------------------------------------------


@hookspec
def magoo_on_timer_started(timer: Timer) -> None:
    """A timer was set (by the ``timer_set`` tool, or by code through the engine's ``timers``).

    Called on the event-loop thread once per timer, after it was stored. Named like Home
    Assistant's timer-started event; for an LED ring that shows the time left, a display.

    :param timer: id, name, ``total_seconds`` and ``ends_at`` (wall-clock Unix seconds).

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_timer_updated(timer: Timer) -> None:
    """A running timer was set again under its name: it has a new duration and end, the same id.

    Called on the event-loop thread, after it was stored.

    :param timer: the timer as it is now.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_timer_cancelled(timer: Timer) -> None:
    """A running timer was cancelled before it ended (the ``timer_cancel`` tool).

    Called on the event-loop thread, after it was removed from the store. Not called for a
    timer that is ringing and is silenced.

    :param timer: the timer; ``ends_at`` is when it would have ended.

    Return value: ignored. Raising is logged with the plugin's name.
    """


@hookspec
def magoo_on_timer_finished(timer: Timer) -> None:
    """A timer ended and starts ringing (the sound and ``[engine.timers] say``, as speech outside a turn).

    Called on the event-loop thread once per timer, when it ends; for a timer that ended while
    magoo was not running, at start if it ended within ``[engine.timers] late_for`` (then
    ``ends_at`` is in the past).

    :param timer: the timer; ``ends_at`` is when it ended.

    Return value: ignored. Raising is logged with the plugin's name.
    """
