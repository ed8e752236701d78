"""The fault matrix, part 2: the speech services fail, and the assistant copes.

Every test runs the real engine with the real OpenAI Realtime client (speech-to-text and reply)
and the real Fish Audio client (text-to-speech) against their loopback servers, which speak the
real wire protocols, and plays each reply with mpv on the virtual PulseAudio sink. The
microphone is a scripted source (the espeak-ng clip "what time is it" after a beep the scripted
wake detector takes for the wake word, or without a wake word in real time for a conversation).

For every fault the run shows (see :mod:`service_fault_helpers`):

1. the assistant recovers by itself, or reports the fault in one readable line that says what
   to fix; neither API key is in any log record (at any level) or message;
2. the microphone is muted only while a reply is being spoken (``engine.muted`` sampled every
   10 ms), and unmuted at every turn's end and after the run;
3. every turn ends with an outcome (the asyncio timeouts only guard against a hang);
4. a later turn is OK.

Each test's docstring says how its fault is made. Four of them found bugs, since fixed: an HTTP
401 that did not name OPENAI_API_KEY, known events missing their ids dropped without a log line,
a ``speech_started`` without ``item_id`` opening a phantom turn, and a run that hung when the
speech-to-text stream failed after a file source had ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from magoo_core import Outcome, State
from magoo_core.testing.device_contract import CLIP
from magoo_fish.loopback import LoopbackFishServer
from magoo_fish.pipeline import RETRY_BASE

from service_fault_helpers import (
    BACKOFF,
    BACKOFF_MAX,
    ServiceRun,
    assert_never_left_muted,
    assert_no_key,
    assert_no_turn_hung,
    assert_readable,
    assert_recovered,
    attempts_allowed,
    fish_server,
    ok_after,
    realtime_server,
    run_services,
    services,
    spoken_turns,
)

pytestmark = pytest.mark.usefixtures("virtual_audio")

MODES = pytest.mark.parametrize("wake", [True, False], ids=["wake-word", "conversation"])


def at(event: str, fault: str, action: Callable[[], Any] | None = None, *, after_turns: int = 0):
    """``on_event``: make ``fault`` at the first ``event`` once ``after_turns`` turns have ended."""

    def on_event(run: ServiceRun, name: str, arguments: dict[str, Any]) -> None:
        if name == event and fault not in run.faults and len(run.timelines) >= after_turns:
            run.fault(fault, action)

    return on_event


def stt_link(run: ServiceRun):
    return run.engine.stt.last_instance.link


# ---- 1. the STT connection is dropped mid-turn ------------------------------------------------


@MODES
@pytest.mark.parametrize("point", ["speech_started", "committed", "response"])
async def test_stt_dropped_mid_turn_loses_that_turn_only(virtual_audio, wake, point):
    """The TCP connection is cut without a close frame when the user starts speaking, after the
    server committed the audio, or after the first words of the reply."""
    async with realtime_server() as realtime, fish_server() as fish:
        realtime.drop_next_turn(at=point)
        run = await run_services(virtual_audio, services(realtime, fish, wake=wake),
                                 on_event=at("startup", "drop"), until=ok_after("drop"))
    assert_recovered(run)
    assert run.outcomes == [Outcome.ERROR, Outcome.OK]
    (message,) = run.messages()
    assert message.startswith("[stt] openai-realtime: OpenAI Realtime connection lost: the connection closed")
    assert "reconnecting in" in message and message.endswith("the turn in progress is lost")
    assert run.timelines[0].error == message
    assert len(realtime.connections) == 2  # one reconnect, no more
    assert [r.text for r in fish.requests] == ["It is noon."]  # nothing of the lost turn was spoken


# ---- 2. the STT server refuses connections for a while ----------------------------------------


@MODES
@pytest.mark.parametrize("when", ["at-start", "mid-run"])
async def test_stt_refused_for_a_while_reconnects_on_the_backoff_schedule(virtual_audio, wake, when):
    """HTTP 503 at the websocket upgrade three times, then accepted; at start, or after the
    session of a first good turn ended (the server expired it)."""
    refusals = 3
    async with realtime_server() as realtime, fish_server() as fish:

        def refuse():
            realtime.refuse_connections(refusals, 503)
            return realtime.expire_all()

        if when == "at-start":
            realtime.refuse_connections(refusals, 503)
            on_event = at("startup", "refused")
        else:
            on_event = at("turn_end", "refused", refuse, after_turns=1)
        run = await run_services(virtual_audio, services(realtime, fish, wake=wake),
                                 on_event=on_event, until=ok_after("refused"))
    assert_recovered(run)
    link = stt_link(run)

    # the loopback saw exactly the refused attempts and the one that got through
    if when == "at-start":
        first, *reconnects = realtime.attempts
        since = first
    else:
        since = run.faults["refused"]
        reconnects = [moment for moment in realtime.attempts if moment >= since]
    assert len(reconnects) == refusals + (when == "mid-run")
    assert len(reconnects) <= attempts_allowed(reconnects[-1] - since, BACKOFF, BACKOFF_MAX)  # no storm
    assert link.stats["connect_failures"] == refusals
    # each wait was drawn from the capped exponential schedule: half to all of 0.1, 0.2, 0.4, 0.8 s
    delays = list(link.delays)
    assert len(delays) == len(reconnects)
    for k, delay in enumerate(delays):
        nominal = min(BACKOFF_MAX, BACKOFF * 2**k)
        assert nominal / 2 <= delay <= nominal

    # reported at most once per failed attempt, each time naming the refusal and the next attempt
    messages = run.messages("stt")
    assert len(messages) <= refusals + 1
    refused = [m for m in messages if "HTTP 503" in m]
    assert all("refused the connection (HTTP 503); next attempt in" in m for m in refused)
    assert len(realtime.connections) == 1 + (when == "mid-run")


# ---- 3. the server ends the session (its time limit) ------------------------------------------


@MODES
@pytest.mark.parametrize("when", ["between-turns", "mid-turn"])
async def test_stt_session_expiry_gets_a_new_session(virtual_audio, wake, when):
    """``session_expired`` and close 1001, as the real server does at its 60-minute limit."""
    async with realtime_server() as realtime, fish_server() as fish:
        if when == "between-turns":
            overrides = services(realtime, fish, wake=wake, audio_source=spoken_turns(wake=wake, realtime=True))
            on_event = at("turn_end", "expired", realtime.expire_all, after_turns=1)
        else:
            overrides = services(realtime, fish, wake=wake)
            on_event = at("speech_start", "expired", realtime.expire_all, after_turns=1)
        run = await run_services(virtual_audio, overrides, on_event=on_event, until=ok_after("expired"))
    assert_recovered(run)
    assert [c.close_code for c in realtime.connections] == [1001, 1000]  # expired; then left at the end
    messages = run.messages()
    if when == "mid-turn":
        assert run.outcomes == [Outcome.OK, Outcome.ERROR, Outcome.OK]
        (message,) = messages
        assert "connection lost: the connection closed (close 1001: Your session hit the maximum duration" in message
        assert message.endswith("the turn in progress is lost")
    else:
        assert set(run.outcomes) == {Outcome.OK}  # nobody was talking: nothing lost
        if wake:
            assert messages == []  # the next turn just waits for the new session
        else:  # the conversation stream is reopened: one line says so
            (message,) = messages
            assert "connection lost: the connection closed (close 1001" in message and "reconnecting in" in message


# ---- 4. a wrong key --------------------------------------------------------------------------


def assert_stopped_cleanly(run: ServiceRun) -> None:
    """A run that stopped on a fatal error: nothing muted, no key, no traceback."""
    assert run.result.exit_code == 1
    assert run.samples and not any(muted for _, muted, _ in run.samples) and run.engine.muted is False
    assert_no_key(run)
    assert_readable(run)


@MODES
@pytest.mark.parametrize("how", ["close-3000", "http-401"])
async def test_stt_wrong_key_stops_the_start_with_one_message_and_is_not_retried(virtual_audio, wake, how):
    """close-3000: the server accepts the websocket, sends ``invalid_api_key`` and closes with
    3000 (the loopback's model of the real server); http-401: the upgrade itself is refused."""
    async with realtime_server() as realtime, fish_server() as fish:
        if how == "close-3000":
            realtime.api_key = "sk-the-key-the-account-really-has-0000"
        else:
            realtime.refuse_connections(5, 401)
        run = await run_services(virtual_audio, services(realtime, fish, wake=wake), turns=1)
    assert_stopped_cleanly(run)
    assert run.timelines == []
    fatal = run.result.fatal
    assert fatal.startswith("could not start [stt] openai-realtime: ")
    assert "check the key in api_key" in fatal
    assert len(realtime.attempts) == 1  # not retried
    # the fatal is the one message (``magoo run`` prints it once); no log line repeats it
    assert [line for line in run.log if line.startswith(("WARNING", "ERROR"))] == []
    if how == "close-3000":
        assert "OpenAI rejected the API key (invalid_api_key)" in fatal and "OPENAI_API_KEY" in fatal


async def test_stt_http_401_names_the_variable_to_fix(virtual_audio):
    async with realtime_server() as realtime, fish_server() as fish:
        realtime.refuse_connections(1, 401)
        run = await run_services(virtual_audio, services(realtime, fish), turns=1)
    assert "OPENAI_API_KEY" in run.result.fatal


@MODES
async def test_stt_key_revoked_while_running_is_said_once_per_turn_and_never_retried(virtual_audio, wake):
    """After a good turn the key stops working: the session ends (expired) and the reconnect is
    answered ``invalid_api_key``. A conversation stops (exit 1, for the service manager); after a
    wake word each later turn fails at once with the same line, without a connection attempt."""
    async with realtime_server() as realtime, fish_server() as fish:

        def revoke():
            realtime.api_key = "sk-the-key-the-account-really-has-0000"
            return realtime.expire_all()

        run = await run_services(
            virtual_audio, services(realtime, fish, wake=wake),
            on_event=at("turn_end", "revoked", revoke, after_turns=1),
            until=lambda run, timeline: len(run.timelines) >= 4,
        )
    assert_no_turn_hung(run)
    assert_never_left_muted(run)
    assert_no_key(run)
    assert_readable(run)
    assert run.outcomes[0] is Outcome.OK
    assert len(realtime.attempts) == 2  # the first session, and the one reconnect that was refused
    rejected = [m for m in run.messages("stt") if "rejected the API key" in m]
    assert rejected and all("OPENAI_API_KEY" in m for m in rejected)
    assert len(set(rejected)) == 1
    if wake:
        assert run.result.fatal is None and len(run.timelines) >= 4
        assert run.outcomes[-1] is Outcome.ERROR and "OPENAI_API_KEY" in run.timelines[-1].error
    else:
        assert run.result.exit_code == 1 and "OPENAI_API_KEY" in run.result.fatal
        assert len(rejected) == 1


# ---- 5. malformed server messages -------------------------------------------------------------

GARBAGE = [
    "this is not json {",
    "[1, 2, 3]",  # JSON, but not an event
    {"type": "brand_new.event_type", "payload": {"nested": [1, 2]}},  # an event type nobody knows
    {"type": "response.output_text.delta"},  # known types, missing their fields
    {"type": "response.done", "response": "not an object"},
    {"type": "conversation.item.input_audio_transcription.completed"},
]


async def inject_all(realtime, frames) -> None:
    for frame in frames:
        await realtime.inject(frame)


@MODES
@pytest.mark.parametrize(
    "moment", ["turn_end", "speech_start", "reply"], ids=["between-turns", "mid-turn", "mid-reply"]
)
async def test_malformed_server_events_are_skipped_and_no_turn_is_lost(virtual_audio, wake, moment):
    async with realtime_server() as realtime, fish_server() as fish:
        run = await run_services(
            virtual_audio, services(realtime, fish, wake=wake),
            on_event=at(moment, "garbage", lambda: inject_all(realtime, GARBAGE), after_turns=1),
            until=ok_after("garbage", turns=2),
        )
    assert_recovered(run)
    assert set(run.outcomes) == {Outcome.OK}
    assert run.messages() == []
    assert len(realtime.connections) == 1  # never a reconnect
    assert stt_link(run).stats["malformed_events"] == 2
    assert sum("ignored a malformed event from the server" in line for line in run.log) == 2


@pytest.mark.parametrize("moment", ["turn_end", "speech_start"], ids=["between-turns", "mid-turn"])
async def test_an_error_event_without_details_is_logged_between_turns_and_drops_a_turn_in_progress(
    virtual_audio, moment
):
    async with realtime_server() as realtime, fish_server() as fish:
        run = await run_services(
            virtual_audio, services(realtime, fish),
            on_event=at(moment, "error", lambda: realtime.inject({"type": "error"}), after_turns=1),
            until=ok_after("error", turns=2),
        )
    assert_recovered(run)
    assert len(realtime.connections) == 1
    words = "OpenAI Realtime error unknown: the server reported an error without details"
    if moment == "turn_end":
        assert set(run.outcomes) == {Outcome.OK} and run.messages() == []
        assert any(words + " (between turns; nothing lost)" in line for line in run.log)
    else:
        assert run.outcomes == [Outcome.OK, Outcome.ERROR, Outcome.OK]
        assert run.messages() == [f"[stt] openai-realtime: {words}"]


async def test_a_known_event_missing_its_fields_leaves_a_log_line(virtual_audio):
    frames = GARBAGE[3:]
    async with realtime_server() as realtime, fish_server() as fish:
        run = await run_services(
            virtual_audio, services(realtime, fish),
            on_event=at("speech_start", "garbage", lambda: inject_all(realtime, frames), after_turns=1),
            until=ok_after("garbage", turns=2),
        )
    assert_recovered(run)
    client_log = run.logged("magoo.realtime", "magoo.engine")
    for frame in frames:
        assert any(frame["type"] in line for line in client_log), f"nothing logged about {frame}"


async def test_a_speech_started_without_item_id_opens_no_phantom_turn(virtual_audio):
    async with realtime_server() as realtime, fish_server() as fish:
        phantom = {"type": "input_audio_buffer.speech_started"}
        run = await run_services(
            virtual_audio, services(realtime, fish, wake=False),
            on_event=at("turn_end", "phantom", lambda: realtime.inject(phantom), after_turns=1),
            until=ok_after("phantom"),
        )
    assert_recovered(run)
    assert run.messages() == []
    second = run.timelines[1].turn
    assert len([a for a in run.probe.of("speech_start") if a["turn"] == second]) == 1


async def test_a_drop_while_the_last_words_of_a_file_are_answered_ends_the_run(virtual_audio):
    one_utterance = {"backend": "scripted", "realtime": True,
                     "segments": [{"seconds": 0.3}, {"file": str(CLIP)}, {"seconds": 0.3}]}
    async with realtime_server() as realtime, fish_server() as fish:
        realtime.drop_next_turn(at="committed")
        run = await run_services(virtual_audio, services(realtime, fish, wake=False, audio_source=one_utterance),
                                 timeout=20.0)
    assert run.outcomes == [Outcome.ERROR]
    assert run.result.exit_code == 0


# ---- 6 and 7. text-to-speech faults -----------------------------------------------------------


@dataclass
class TtsFault:
    make: Callable[[LoopbackFishServer], None]
    spoken: bool  # the turn with the fault still spoke its reply (retried in time)
    message: str | None  # what the turn's failure says, if it failed
    retries: int


TTS_FAULTS = {
    "http-500-once": TtsFault(lambda f: f.fail_next(500), True, None, 1),
    "http-503-three-times": TtsFault(lambda f: f.fail_next(503, times=3), False,
                                     "[tts] fish: Fish Audio is overloaded (HTTP 503: high load) after 3 attempts", 2),
    "http-429-retry-after-1": TtsFault(lambda f: f.fail_next(429, retry_after=1), True, None, 1),
    "http-429-retry-after-60": TtsFault(
        lambda f: f.fail_next(429, retry_after=60), False,
        "[tts] fish: Fish Audio is rate limiting (HTTP 429: Rate limit exceeded, please slow down); "
        "it asks to wait 60 s", 0),
    "stalled-before-audio": TtsFault(lambda f: f.stall_next(), True, None, 1),
    "first-byte-3s-late": TtsFault(lambda f: f.delay_next(3.0), True, None, 1),
    "stalled-mid-reply": TtsFault(lambda f: f.slow_chunks(3.0), False,
                                  "[tts] fish: Fish Audio's stream stalled: no audio for 2 s after 4096 bytes", 0),
    # row 7, the same fault as tests/test_speaking.py::test_fish_breaking_off_mid_reply_..., here
    # with the matrix's checks (mute samples, keys, the next turn)
    "dropped-mid-reply": TtsFault(lambda f: f.drop_next(after_bytes=8000), False,
                                  "[tts] fish: Fish Audio's stream broke off after 8000 bytes", 0),
}


@pytest.mark.parametrize("case", list(TTS_FAULTS))
async def test_tts_fault_is_retried_in_its_limits_or_reported_and_the_next_turn_speaks(virtual_audio, case):
    """Fish fails on the first reply (read and first-byte timeouts 2 s, two retries); the
    microphone side is scripted (wake, command, echo responder), since only speaking is tested."""
    fault = TTS_FAULTS[case]
    async with fish_server() as fish:

        def on_event(run: ServiceRun, name: str, arguments: dict[str, Any]) -> None:
            if name == "startup":
                run.fault("tts", lambda: fault.make(fish))
            elif name == "error":
                fish.slow_chunks(None)  # the stall was for that one reply

        run = await run_services(virtual_audio, services(None, fish), on_event=on_event,
                                 until=ok_after("tts", turns=2))
    assert_recovered(run)
    tts = run.engine.tts.last_instance
    first = run.timelines[0]
    if fault.spoken:
        assert set(run.outcomes) == {Outcome.OK} and run.messages() == []
    else:
        assert first.outcome is Outcome.ERROR and run.outcomes[1:] == [Outcome.OK]
        (message,) = run.messages()
        assert message.startswith(fault.message) and first.error == message
    assert len(tts.retry_delays) == fault.retries
    assert len(fish.requests) == 1 + fault.retries + len(run.timelines) - 1  # nothing retried beyond the limit
    if case == "http-429-retry-after-1":
        assert tts.retry_delays == [1.0]  # the server's Retry-After, not the backoff
    elif fault.retries and case.startswith("http-5"):
        assert all(RETRY_BASE / 2 <= d <= 2 * RETRY_BASE for d in tts.retry_delays)


async def test_fish_key_revoked_while_running_hands_over_to_the_espeak_backup(virtual_audio):
    """After a good turn the Fish key stops working (HTTP 401). That reply fails once, with the line
    naming FISH_API_KEY; Fish is not asked again, and espeak-ng speaks every later reply through mpv."""
    async with fish_server() as fish:

        def on_event(run: ServiceRun, name: str, arguments: dict[str, Any]) -> None:
            if name == "turn_end" and len(run.timelines) == 1:
                run.fault("revoked", lambda: setattr(fish, "api_key", "fish-revoked-by-the-account-owner"))

        run = await run_services(virtual_audio, services(None, fish, tts={"backup": {"backend": "espeak"}}),
                                 on_event=on_event, until=ok_after("revoked", turns=4))
    assert_recovered(run)
    assert run.outcomes == [Outcome.OK, Outcome.ERROR, Outcome.OK, Outcome.OK]
    (message,) = run.messages()
    assert message == "[tts] fish: Fish Audio rejected the API key (HTTP 401): check FISH_API_KEY (the [tts] api_key)"
    assert len(fish.requests) == 2  # the good reply and the refused one; never retried
    assert run.engine.tts.spec.section == "[tts.backup]" and run.engine.tts.spec.backend == "espeak"
    later = {timeline.turn for timeline in run.timelines[2:]}
    assert {a["turn"] for a in run.probe.of("speak_start")} >= later  # espeak's replies came out of mpv


# ---- 8. both services down at once, then back -------------------------------------------------


@MODES
async def test_both_services_down_for_a_while_then_back(virtual_audio, wake):
    """After a good turn, neither server listens (connection refused); the Realtime server comes
    back after 2 s, Fish after 4 s."""
    async with realtime_server() as realtime, fish_server() as fish:

        async def outage(run: ServiceRun) -> None:
            await realtime.stop()
            await fish.stop()
            await asyncio.sleep(2.0)
            await realtime.start()
            run.fault("stt back")
            await asyncio.sleep(2.0)
            await fish.start()
            run.fault("back")

        def on_event(run: ServiceRun, name: str, arguments: dict[str, Any]) -> None:
            if name == "turn_end" and "down" not in run.faults:
                run.fault("down", lambda: outage(run))

        run = await run_services(virtual_audio, services(realtime, fish, wake=wake), on_event=on_event,
                                 until=ok_after("back"))
    assert_recovered(run)
    for failure in run.failures:
        assert failure.role in ("stt", "tts")
        assert any(words in failure.message for words in ("cannot reach", "connection lost")), failure.message
    link = stt_link(run)
    outage_seconds = run.faults["stt back"] - run.faults["down"]
    assert link.stats["connect_failures"] <= attempts_allowed(outage_seconds, BACKOFF, BACKOFF_MAX)
    tts = run.engine.tts.last_instance
    assert len(tts.retry_delays) <= tts.config.retries * tts.stats()["requests"]  # each request: 2 retries at most
    assert run.probe.of("recovered")  # the failing backend said it works again
    assert State.LISTENING is run.engine.state
