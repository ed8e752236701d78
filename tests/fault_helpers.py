"""Running the real engine under a fault, and checking that the assistant came back.

Shared by tests/test_faults.py (devices, players, actuators) and tests/test_faults_services.py
(network services). The API is small on purpose:

* :func:`run_with_faults` runs one profile with a fault script beside it and returns a
  :class:`FaultRun`: every event with its time, the microphone's mute state sampled every 10 ms,
  and the run's result.
* :func:`sample_muted` is the sampler on its own, for a test that runs the engine itself.
* :func:`audio_flowing` waits, inside a fault script, until audio really reaches the engine.
* :func:`assert_recovered` checks the four things every fault test asks: the fault was reported
  (or needed no report), the microphone was muted only while a reply played, every turn ended
  with an outcome, and a turn after the fault was OK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magoo_core import BackendFailure, Outcome, State
from magoo_core.engine import Engine, RunResult
from magoo_core.testing import build_plugins, make_profile

from probe import Probe

MUTE_SAMPLE_PERIOD = 0.01  # seconds between two samples of engine.muted
EVENT_TIMEOUT = 30.0  # waiting longer than this for an event is a hang

Fault = Callable[[Engine, "TimedProbe"], Awaitable[None]]


class TimedProbe(Probe):
    """A :class:`~probe.Probe` that also keeps when each event came (``time.monotonic()``)."""

    def __init__(self, engine: Engine, *, stop_on: str | None = None) -> None:
        super().__init__(engine, stop_on=stop_on)
        self.timed: list[tuple[float, str, dict[str, Any]]] = []

    def _add(self, event: str, **arguments: Any) -> None:
        self.timed.append((time.monotonic(), event, arguments))
        super()._add(event, **arguments)

    async def wait_for(
        self,
        event: str,
        where: Callable[[dict[str, Any]], bool] = lambda arguments: True,
        *,
        after: float = 0.0,
        timeout: float = EVENT_TIMEOUT,
    ) -> dict[str, Any]:
        """The arguments of the first ``event`` at or after monotonic time ``after`` for which
        ``where(arguments)`` is true; waits for it (polling every 10 ms).

        :raises AssertionError: none came within ``timeout`` seconds (the events seen are listed).
        """
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for moment, name, arguments in self.timed[seen:]:
                if name == event and moment >= after and where(arguments):
                    return arguments
            seen = len(self.timed)
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event!r} event within {timeout:g} s; events: {self.names()}")
            await asyncio.sleep(0.01)

    def moments(self, event: str) -> list[float]:
        return [moment for moment, name, _ in self.timed if name == event]


async def audio_flowing(engine: Engine, seconds: float = 0.5, timeout: float = EVENT_TIMEOUT) -> None:
    """Wait until the engine has taken in ``seconds`` more audio: every backend has started and
    the source delivers (a device opened at start is not yet capturing)."""
    target = engine.counters["audio_seconds"] + seconds
    deadline = time.monotonic() + timeout
    while engine.counters["audio_seconds"] < target:
        if time.monotonic() > deadline:
            raise AssertionError(f"no audio reached the engine for {timeout:g} s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def sample_muted(engine: Engine, every: float = MUTE_SAMPLE_PERIOD) -> AsyncIterator[list[tuple[float, bool]]]:
    """Sample ``engine.muted`` every ``every`` seconds into a list of ``(monotonic time, muted)``
    while the block runs; one last sample is taken when it ends."""
    samples: list[tuple[float, bool]] = []

    async def sample() -> None:
        while True:
            samples.append((time.monotonic(), engine.muted))
            await asyncio.sleep(every)

    task = asyncio.create_task(sample(), name="mute-sampler")
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        samples.append((time.monotonic(), engine.muted))


@dataclass
class FaultRun:
    """What one run under a fault did."""

    engine: Engine
    probe: TimedProbe
    result: RunResult
    mutes: list[tuple[float, bool]]

    @property
    def outcomes(self) -> list[Outcome]:
        return [timeline.outcome for timeline in self.result.timelines]

    def failures(self, role: str | None = None) -> list[BackendFailure]:
        """The failures reported through ``magoo_on_error``, in order; only ``role``'s if given."""
        reported = [arguments["failure"] for arguments in self.probe.of("error")]
        return [f for f in reported if role is None or f.role == role]

    def speaking_windows(self) -> list[tuple[float, float]]:
        """(start, end) of each turn's speaking: from its switch to speaking to its turn_end.

        The engine mutes in the same loop step as that switch and unmutes before turn_end, so a
        muted sample outside every window is a microphone left muted.
        """
        started: dict[int, float] = {}
        windows = []
        for moment, name, arguments in self.probe.timed:
            if name == "state_change" and arguments["new"] is State.SPEAKING:
                started[arguments["turn"]] = moment
            elif name == "turn_end" and arguments["timeline"].turn in started:
                windows.append((started.pop(arguments["timeline"].turn), moment))
        windows += [(start, float("inf")) for start in started.values()]  # never ended: caught elsewhere
        return windows

    def muted_outside_replies(self) -> list[float]:
        """Times at which the microphone was sampled muted while no reply was being spoken."""
        windows = self.speaking_windows()
        return [moment for moment, muted in self.mutes if muted and not any(a <= moment <= b for a, b in windows)]


async def run_with_faults(
    overrides: Mapping[str, Any],
    *plugins: object,
    fault: Fault | None = None,
    turns: int | None = None,
    timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> FaultRun:
    """Run the engine on the test profile changed by ``overrides``, with ``fault(engine, probe)``
    running beside it (it injects the fault and repairs it, waiting for events as it goes).

    :param turns: stop after this many turns; None: when the source ends.
    :param timeout: a hang guard: the run is cancelled after this many seconds and
        ``TimeoutError`` raised.
    :raises AssertionError: the run ended before the fault script did (it waited for something
        that never came), or the script raised (its exception is chained).
    """
    manager = build_plugins(*plugins)
    profile = make_profile(overrides, manager, base_dir=base_dir, environ=environ)
    engine = Engine(profile, manager, max_turns=turns)
    probe = TimedProbe(engine)
    manager.pm.register(probe, name="probe")
    script: asyncio.Task | None = None
    async with sample_muted(engine) as mutes:
        running = asyncio.create_task(engine.run(), name="engine")
        if fault is not None:
            script = asyncio.create_task(fault(engine, probe), name="fault-script")

            def stop_if_failed(task: asyncio.Task) -> None:
                if not task.cancelled() and task.exception() is not None:
                    engine.request_stop()

            script.add_done_callback(stop_if_failed)
        try:
            result = await asyncio.wait_for(running, timeout)
        finally:
            if script is not None and not script.done():
                script.cancel()
                await asyncio.gather(script, return_exceptions=True)
    if script is not None:
        if script.cancelled():
            raise AssertionError(f"the run ended before the fault script did; events: {probe.names()}")
        if script.exception() is not None:
            raise AssertionError(f"the fault script failed; events: {probe.names()}") from script.exception()
    return FaultRun(engine, probe, result, mutes)


def assert_recovered(
    run: FaultRun,
    *,
    role: str | None = None,
    message_has: Iterable[str] = (),
    errors: int | None = None,
    ok_after: bool = True,
) -> list[BackendFailure]:
    """Assert that the assistant got through the fault; returns the failures reported for ``role``.

    * **Reported**: with ``role``, at least one failure of that role was reported (exactly
      ``errors`` if given), the first one contains every string of ``message_has``; every
      reported failure is one readable line, not a traceback. Without ``role``, nothing may
      have been reported at all unless ``errors`` says how many.
    * **Never left muted**: every mute sample taken while no reply was being spoken is False,
      the last sample is False and ``engine.muted`` is False.
    * **No turn hung**: every turn that any event named has a timeline, none was cancelled, and
      the run did not stop on a fatal error.
    * **The next turn works** (``ok_after``): the last turn is OK, and it came after the first
      failure of ``role``.
    """
    result = run.result
    assert result.fatal is None, f"the run stopped: {result.fatal}"

    reported = run.failures(role)
    for failure in run.failures():
        assert "\n" not in failure.message and "Traceback" not in failure.message, failure.message
    if role is not None:
        assert reported, f"no failure of {role!r} was reported; events: {run.probe.names()}"
        for part in message_has:
            assert part in reported[0].message, f"{part!r} is not in {reported[0].message!r}"
    if errors is not None:
        assert len(reported) == errors, [f.message for f in reported]
    elif role is None:
        assert not reported, [f.message for f in reported]

    left_muted = run.muted_outside_replies()
    assert not left_muted, f"the microphone was muted with no reply playing, {len(left_muted)} samples from {left_muted[0]:.2f}"
    assert run.mutes[-1][1] is False and run.engine.muted is False, "the microphone was left muted"
    muted_at_end = run.probe.muted_during("turn_end")
    assert not any(muted_at_end), f"the microphone was muted when turns ended: {muted_at_end}"

    named = {a["turn"] for _, _, a in run.probe.timed if isinstance(a.get("turn"), int)}
    ended = {timeline.turn for timeline in result.timelines}
    assert named <= ended, f"turns {sorted(named - ended)} never ended"
    assert Outcome.CANCELLED not in run.outcomes, [(t.turn, t.outcome, t.error) for t in result.timelines]

    if ok_after:
        assert result.timelines and result.timelines[-1].outcome is Outcome.OK, [
            (t.turn, t.outcome.value, t.error) for t in result.timelines
        ]
        if reported:
            first_failure = next(m for m, name, a in run.probe.timed if name == "error" and a["failure"] is reported[0])
            last_end = run.probe.moments("turn_end")[-1]
            assert last_end > first_failure, "no turn ended after the fault was reported"
    return reported


def logged_tracebacks(records: Iterable[logging.LogRecord]) -> list[str]:
    """The messages of log records that carry a traceback (an expected fault should log none)."""
    return [record.getMessage() for record in records if record.exc_info]
