"""The speech-service fault matrix's runner: the real engine with OpenAI Realtime and Fish Audio
clients against their loopback servers, mpv on the virtual sink, and the checks every fault must
pass (see tests/test_faults_services.py).

While the engine runs, a task samples ``engine.muted`` (with the state) every 10 ms and a handler
keeps every log record at every level, so a test can show that the microphone was muted only
while a reply was being spoken and that no key ever reached a log line or a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import magoo_espeak
import magoo_fish
import magoo_mpv
import magoo_openai_realtime
from magoo_core import Outcome, State
from magoo_core.engine import Engine, RunResult
from magoo_core.testing import build_plugins, make_profile
from magoo_core.testing.device_contract import CLIP  # espeak-ng "what time is it", shipped with the kit
from magoo_core.types import BackendFailure, TurnTimeline
from magoo_fish.loopback import LoopbackFishServer
from magoo_openai_realtime.loopback import LoopbackRealtimeServer

from probe import Probe

OPENAI_KEY = "sk-faults-3f9a1c7e5b2d8046QRSTUVWX"
FISH_KEY = "fish-faults-7c1e9a3b5d2f6048LMNOPQRS"
ENV = {"OPENAI_API_KEY": OPENAI_KEY, "FISH_API_KEY": FISH_KEY}
#: What the loopback Realtime server "hears" in every turn, and what it answers.
HEARD = "what time is it"
REPLY = "It is noon."
#: The engine's half-duplex windows in these runs (seconds).
MUTE_PRE, MUTE_POST = 0.1, 0.2
#: The Realtime client's reconnect backoff in these runs: 0.1 s doubling up to 0.8 s.
BACKOFF, BACKOFF_MAX = 0.1, 0.8

#: A beep the scripted wake detector takes for the wake word (its level 0.2 is reached at once).
BEEP = [{"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2}]


def spoken_turns(*, wake: bool, gap: float = 1.5, realtime: bool | None = None) -> dict[str, Any]:
    """A scripted microphone that says "what time is it" (the espeak-ng clip) again and again,
    each time after a beep when ``wake``. Without a wake word it plays in real time, as a
    conversation must; after a wake word it is read in lock-step with the turns (fast, and
    every turn starts only after the one before ended)."""
    segments = [{"seconds": 0.3}, *(BEEP if wake else []), {"file": str(CLIP)}, {"seconds": gap}]
    return {"backend": "scripted", "realtime": (not wake) if realtime is None else realtime,
            "loop": True, "segments": segments}


def command_turns() -> dict[str, Any]:
    """A lock-step scripted microphone for the scripted STT: a beep, then a tone it hears as the
    command, again and again."""
    return {
        "backend": "scripted", "realtime": False, "loop": True,
        "segments": [{"seconds": 0.3}, *BEEP, {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}, {"seconds": 1.0}],
    }


def realtime_stt(server: LoopbackRealtimeServer, **options: Any) -> dict[str, Any]:
    """``[stt]``: the real OpenAI Realtime client, pointed at the loopback server, quick backoff."""
    return {
        "backend": "openai-realtime", "api_key": {"env": "OPENAI_API_KEY"}, "url": server.url,
        "reconnect_backoff": BACKOFF, "reconnect_backoff_max": BACKOFF_MAX, "connect_timeout": 5.0, **options,
    }


def fish_tts(server: LoopbackFishServer, **options: Any) -> dict[str, Any]:
    """``[tts]``: the real Fish Audio client, pointed at the loopback server."""
    return {"backend": "fish", "api_key": {"env": "FISH_API_KEY"}, "base_url": server.base_url,
            "first_byte_timeout": 2.0, "read_timeout": 2.0, **options}


def services(
    realtime: LoopbackRealtimeServer | None,
    fish: LoopbackFishServer,
    *,
    wake: bool = True,
    stt: dict[str, Any] | None = None,
    tts: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Profile overrides: Realtime replies (or, with ``realtime`` None, the scripted STT and the
    echo responder), Fish speaks, mpv plays on the virtual sink."""
    if realtime is not None:
        sections: dict[str, Any] = {
            "audio_source": spoken_turns(wake=wake), "stt": realtime_stt(realtime, **(stt or {})), "responder": None,
        }
    else:
        sections = {"audio_source": command_turns(), "responder": {"backend": "echo", "template": REPLY}}
    if not wake:
        sections["wake"] = None
    return {
        **sections,
        "engine": {"mute_pre": MUTE_PRE, "mute_post": MUTE_POST, "reply_timeout": 20.0},
        "tts": fish_tts(fish, **(tts or {})),
        "player": {"backend": "mpv"},
        **overrides,
    }


def realtime_server(**options: Any) -> LoopbackRealtimeServer:
    return LoopbackRealtimeServer(api_key=OPENAI_KEY, transcripts=[HEARD], replies=lambda text: REPLY, **options)


def fish_server(**options: Any) -> LoopbackFishServer:
    options.setdefault("realtime_factor", 3.0)
    return LoopbackFishServer(FISH_KEY, **options)


class _Records(logging.Handler):
    """Keeps every log record, formatted with its traceback (a key in an exception counts too)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class ServiceRun:
    """One run: events (the probe), 10 ms samples of ``(time, muted, state)``, every log line."""

    engine: Engine
    probe: Probe
    result: RunResult
    samples: list[tuple[float, bool, State]]
    log: list[str]
    tasks: list[asyncio.Task] = field(default_factory=list)
    #: when the test made each fault, by name (monotonic seconds)
    faults: dict[str, float] = field(default_factory=dict)

    def fault(self, name: str, action: Callable[[], Any] | None = None) -> None:
        """Note the moment of fault ``name`` and do ``action``; a coroutine it returns runs as a
        task, awaited after the run (so its exceptions are not lost)."""
        self.faults[name] = time.monotonic()
        result = action() if action is not None else None
        if asyncio.iscoroutine(result):
            self.tasks.append(asyncio.ensure_future(result))

    @property
    def timelines(self) -> list[TurnTimeline]:
        """The turns ended so far (during the run too), from the turn_end events."""
        return [a["timeline"] for a in self.probe.of("turn_end")]

    @property
    def outcomes(self) -> list[Outcome]:
        return [t.outcome for t in self.timelines]

    @property
    def failures(self) -> list[BackendFailure]:
        return self.result.failures

    def messages(self, role: str | None = None) -> list[str]:
        """The failures' messages (of one role), as magoo_on_error reported them."""
        return [a["failure"].message for a in self.probe.of("error") if role is None or a["failure"].role == role]

    def logged(self, *loggers: str) -> list[str]:
        """The log lines of exactly these loggers (not their children: ``magoo.realtime``
        leaves out the websocket frames its ``.websocket`` child logs at DEBUG)."""
        return [line for line in self.log if line.split(" ", 2)[1].rstrip(":") in loggers]

    def text(self) -> str:
        """Everything a user or an operator could read: log lines, failure messages, the fatal."""
        return "\n".join([*self.log, *self.messages(), *(f.message for f in self.failures), self.result.fatal or ""])


async def run_services(
    virtual_audio: Any,
    overrides: dict[str, Any],
    *,
    until: Callable[[ServiceRun, TurnTimeline], bool] | None = None,
    turns: int | None = None,
    on_event: Callable[[ServiceRun, str, dict[str, Any]], None] | None = None,
    timeout: float = 90.0,
) -> ServiceRun:
    """Run the engine until ``until(run, timeline)`` is true at a turn's end, or ``turns`` turns.

    ``on_event(run, event, arguments)`` is called on the loop after each event is recorded, to
    make a fault at a precise moment with :meth:`ServiceRun.fault`. ``virtual_audio`` is the
    fixture (mpv plays on its sink). The timeout only guards against a hang: hitting it fails
    the test with the last events and where every task was waiting.
    """
    assert virtual_audio is not None, "mpv needs the private PulseAudio server of the virtual_audio fixture"
    manager = build_plugins(magoo_openai_realtime, magoo_fish, magoo_mpv, magoo_espeak)
    engine = Engine(make_profile(overrides, manager, environ=ENV), manager, max_turns=turns)
    probe = Probe(engine)
    records = _Records()
    run = ServiceRun(engine, probe, RunResult(), [], records.lines)
    recorded = probe._add

    def add(event: str, **arguments: Any) -> None:
        recorded(event, **arguments)
        if on_event is not None:
            on_event(run, event, arguments)
        if event == "turn_end" and until is not None and until(run, arguments["timeline"]):
            engine.request_stop()

    probe._add = add
    manager.pm.register(probe, name="probe")

    async def sample() -> None:
        while True:
            run.samples.append((time.monotonic(), engine.muted, engine.state))
            await asyncio.sleep(0.01)

    root = logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    sampler = asyncio.ensure_future(sample())
    stacks: list[str] = []
    loop = asyncio.get_running_loop()
    snapshot = loop.call_later(timeout - 0.5, lambda: stacks.extend(_stack(t) for t in asyncio.all_tasks(loop)))
    try:
        async with asyncio.timeout(timeout):
            run.result = await engine.run()
    except TimeoutError:
        stuck = "\n".join(stacks)
        raise AssertionError(
            f"the run hung: still going after {timeout} s; last events {probe.names()[-12:]}; tasks:\n{stuck}"
        ) from None
    finally:
        snapshot.cancel()
        sampler.cancel()
        root.removeHandler(records)
        root.setLevel(level)
    run.samples.append((time.monotonic(), engine.muted, engine.state))
    await asyncio.gather(*run.tasks)
    return run


def _stack(task: asyncio.Task) -> str:
    """Where ``task`` waits: its chain of awaited coroutines, outermost first."""
    where, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            where.append(f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return f"  {task.get_name()}: {' -> '.join(where) or 'not started'}"


def ok_after(fault: str, *, turns: int = 1) -> Callable[[ServiceRun, TurnTimeline], bool]:
    """``until``: a turn that ended after fault ``fault`` was made ended OK, and at least
    ``turns`` turns have ended."""

    def done(run: ServiceRun, timeline: TurnTimeline) -> bool:
        since = run.faults.get(fault)
        return (since is not None and timeline.ended > since and timeline.outcome is Outcome.OK
                and len(run.timelines) >= turns)

    return done


# ---- the checks every fault must pass ----------------------------------------------------------


def assert_never_left_muted(run: ServiceRun) -> None:
    """Muted only while a reply was being spoken (between a turn's reply and its end, in the
    speaking state), unmuted at every turn's end and after the run."""
    windows = [(t.reply, t.ended) for t in run.timelines if t.reply is not None]
    for moment, muted, state in run.samples:
        if muted:
            assert state is State.SPEAKING, f"muted in state {state.value} at {moment:.3f}"
            assert any(start <= moment <= end for start, end in windows), f"muted outside any reply at {moment:.3f}"
    assert run.samples and not run.samples[-1][1], "still muted after the run"
    assert run.probe.muted_during("turn_end") == [False] * len(run.timelines)
    assert run.engine.muted is False


def assert_no_turn_hung(run: ServiceRun) -> None:
    """Every turn that any event named ended with an outcome, and none had to be cancelled at
    shutdown."""
    assert run.timelines == run.result.timelines and run.timelines
    named = {a["turn"] for _, a in run.probe.events if isinstance(a.get("turn"), int)}
    unended = named - {t.turn for t in run.timelines}
    assert not unended, f"turns {sorted(unended)} never ended"
    assert Outcome.CANCELLED not in run.outcomes, [(t.turn, t.outcome.value, t.error) for t in run.timelines]
    if run.engine.wake is not None:
        assert len(run.probe.of("wake")) == len(run.timelines)


def assert_readable(run: ServiceRun) -> None:
    """Every failure is one line; no log record carries a traceback (an expected fault is not a
    crash)."""
    for message in run.messages():
        assert "\n" not in message and "Traceback" not in message, message
    assert not [line for line in run.log if "Traceback" in line], [l for l in run.log if "Traceback" in l][0]


def assert_no_key(run: ServiceRun) -> None:
    """Neither key, nor its distinctive end, in any log record (any level) or any message."""
    text = run.text()
    for key in (OPENAI_KEY, FISH_KEY):
        assert key not in text and key[-12:] not in text


def assert_recovered(run: ServiceRun) -> None:
    """The four checks of the matrix that hold for every fault the assistant survives."""
    assert_no_turn_hung(run)
    assert_never_left_muted(run)
    assert_no_key(run)
    assert_readable(run)
    assert run.outcomes[-1] is Outcome.OK, run.outcomes
    assert run.result.fatal is None


def attempts_allowed(span: float, base: float, cap: float) -> int:
    """The most connection attempts capped exponential backoff with equal jitter can make in
    ``span`` seconds after a drop: the k-th attempt waits at least half of ``min(cap, base·2^k)``
    first, so a count above this is a reconnect storm (slowness only makes ``span`` larger)."""
    attempts, waited = 0, 0.0
    while True:
        waited += min(cap, base * 2**attempts) / 2
        if waited > span:
            return attempts
        attempts += 1
