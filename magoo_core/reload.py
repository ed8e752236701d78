"""Hot reload: a running engine takes a changed profile without stopping (SIGHUP, or the file
watched: ``[engine] watch_profile``).

:class:`Reloader` loads and validates the profile with the code ``magoo check`` runs. A profile
with problems changes nothing: each problem is logged on a line of its own and the old profile
keeps running. Otherwise :func:`plan` compares it with what runs (:mod:`magoo_core.profile_diff`)
and the reload is applied **between turns**: a turn in progress finishes with the old settings
(its voice, its responder), and the changes are applied the moment it ends, so the next turn has
them. Then:

- a changed ``[engine]`` setting of :data:`LIVE_ENGINE_SETTINGS` takes effect at once
  (:class:`~magoo_core.live_settings.LiveSettings`);
- a changed backend section (its backup, a ``by_wake`` table, an ``[[actuators]]`` table) is first
  offered to the running instance's optional ``reconfigure(config) -> bool`` (True: taken in place,
  e.g. a wake threshold, without reloading the model), else its slot alone is restarted with the new
  settings (:meth:`~magoo_core.backend_slot.BackendSlot.swap`); if the new settings cannot start,
  the old ones are started again. Nothing else is touched: the microphone's stream stays open;
- anything else (``[audio_source]``, ``[magoo]``, a service, ``[wake.verify]``, a section added or removed, which
  also switches wake-word and continuous mode, an ``[engine]`` setting read only at start) is not
  applied: one line says what needs ``magoo`` to be restarted, and the rest is applied.

Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .backend_slot import BackendSlot
from .errors import ProfileError
from .plugins import hookimpl
from .profile import BackendSpec, Profile, load_profile
from .profile_diff import SectionChange, changed_keys, diff_profiles, spec_changed
from .reload_watch import ProfileWatch
from .roles import ROLES, Role
from .settings import EngineSettings

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("magoo.reload")

__all__ = ["LIVE_ENGINE_SETTINGS", "Plan", "Reloader", "live_setting", "plan"]

#: ``[engine]`` settings the running engine reads each time it uses them (through
#: :class:`~magoo_core.live_settings.LiveSettings`) or that the reload hands over (``sounds``,
#: ``hook_timeout``, ``watch_profile``, the restart settings): a change takes effect at once. Any other setting, also
#: one added later, needs a restart unless its ``Field`` says ``json_schema_extra={"reload": "live"}``.
LIVE_ENGINE_SETTINGS = frozenset({
    "mute_pre", "mute_post", "barge_in", "follow_up", "capture_timeout", "reply_timeout", "speakable_replies",
    "max_reply_chars", "muted_audio", "hook_timeout", "sounds", "watch_profile",
    # handed to every slot and the restart budget (Backends.use)
    "shutdown_timeout", "max_failures", "restart_backoff", "restart_backoff_max", "exit_after_restarts", "restart_window",
})


def live_setting(name: str) -> bool:
    """Whether a change of ``[engine] name`` takes effect in a running engine."""
    if name in LIVE_ENGINE_SETTINGS:
        return True
    found = EngineSettings.model_fields.get(name)
    extra = found.json_schema_extra if found is not None else None
    return isinstance(extra, Mapping) and extra.get("reload") == "live"


@dataclass
class Plan:
    """What a reload does to a running engine.

    :param changes: every changed section (what ``magoo run`` prints).
    :param engine: the ``[engine]`` settings to run with: the new ones, but the old value of each
        setting that needs a restart.
    :param settings: the live ``[engine]`` keys that change (``sounds``, ``reply_timeout``).
    :param slots: each slot to change, with the section's new spec (section name → spec).
    :param restart: what is not applied, each ``"[section]"`` or ``"[engine] key"``.
    :param running: the profile that runs once it is applied (what the next reload compares with).
    """

    changes: list[SectionChange]
    engine: EngineSettings
    settings: list[str] = field(default_factory=list)
    slots: dict[str, BackendSpec] = field(default_factory=dict)
    restart: list[str] = field(default_factory=list)
    running: Profile | None = None


def plan(old: Profile, new: Profile, *, continuous: bool, runs: set[str]) -> Plan:
    """What applying ``new`` to an engine running ``old`` means.

    :param continuous: the engine runs without a wake word (its ``[stt]`` stream never ends).
    :param runs: the sections that have a running slot (an actuator left out at start has none).
    """
    keys = changed_keys(old.engine, new.engine)
    live = [key for key in keys if live_setting(key)]
    engine = old.engine.model_copy(update={key: getattr(new.engine, key) for key in live})
    result = Plan(diff_profiles(old, new), engine, live)
    result.restart += [f"[engine] {key}" for key in keys if key not in live]
    if old.magoo != new.magoo:
        result.restart.append("[magoo]")
    result.restart += [f"[services.{name}]" for name in sorted(set(old.services) | set(new.services))
                       if old.services.get(name) != new.services.get(name)]
    running = dataclasses.replace(old, engine=engine)
    for info in ROLES:
        olds, news = old.of(info.role), new.of(info.role)
        for index in range(max(len(olds), len(news))):
            if index >= len(olds) or index >= len(news):
                result.restart.append(f"{(news[index] if index < len(news) else olds[index]).section} "
                                      f"{'added' if index >= len(olds) else 'removed'}")
                continue
            spec = _section(olds[index], news[index], continuous, runs, result)
            running = running.with_spec(spec)
    result.running = running
    return result


def _section(old: BackendSpec, new: BackendSpec, continuous: bool, runs: set[str], result: Plan) -> BackendSpec:
    """Plan one role section and its ``by_wake`` tables; the spec that runs afterwards."""
    fixed = old.role is Role.AUDIO_SOURCE or (continuous and old.role is Role.STT) or old.service or new.service
    if old.verify != new.verify:  # the wake worker builds its verifier once, at start
        result.restart.append("[wake.verify]")
        new = dataclasses.replace(new, verify=old.verify)
    by_wake: dict[str, BackendSpec] = {}
    for label, before in old.by_wake.items():
        after = new.by_wake.get(label)
        if after is None:
            result.restart.append(f"{before.section} removed")
        by_wake[label] = _slot(before, after, bool(fixed), runs, result) if after is not None else before
    result.restart += [f"{spec.section} added" for label, spec in new.by_wake.items() if label not in old.by_wake]
    section = _slot(old, new, bool(fixed), runs, result)
    return dataclasses.replace(section, by_wake=by_wake)


def _slot(old: BackendSpec, new: BackendSpec, fixed: bool, runs: set[str], result: Plan) -> BackendSpec:
    if not spec_changed(old, new):
        return old
    if fixed or old.section not in runs:
        result.restart.append(old.section)
        return old
    result.slots[old.section] = new
    return new


class Reloader:
    """Reloads the profile of a running :class:`~magoo_core.engine.Engine`: on SIGHUP (it is the
    engine's ``stopping.on_reload``), and when the file changes while ``[engine] watch_profile``
    is on. Register it as a plugin of the run (``plugins.pm.register(reloader)``): the engine's
    startup starts the watch and allows reloads, its shutdown ends both.

    A reload asked for while one runs is done once more after it. Runs on the event loop.

    :param path: the profile's file, as given to ``magoo run``.
    :param environ: where secrets are read first (``os.environ``).
    """

    def __init__(self, engine: Engine, path: Path, *, environ: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.path = path
        self.environ = environ
        #: what runs: the profile the engine started with, then each reload's :attr:`Plan.running`
        self.profile = engine.profile
        self.watch = ProfileWatch(path, self.request)
        self.reloads = 0  # reloads done (applied or refused), for tests and the log
        self._task: asyncio.Task | None = None
        self._again = False  # asked for again while a reload runs, or before the backends started
        self._phase = "starting"  # then "running" (reloads are applied), then "stopping"
        engine.stopping.on_reload = self.request

    # ---- the run's events -----------------------------------------------------------------------

    @hookimpl
    def magoo_on_startup(self) -> None:
        self._phase = "running"
        if self.profile.engine.watch_profile:
            self.watch.start()
        if self._again:  # SIGHUP while the backends started: the file may have changed meanwhile
            self.request()

    @hookimpl
    async def magoo_on_shutdown(self) -> None:
        self._phase = "stopping"
        await self.watch.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # ---- reloading --------------------------------------------------------------------------------

    def request(self) -> None:
        """Reload soon (from a signal handler or the watch, on the loop); never waits. Asked for
        while the backends start, it is done once they run; while magoo stops, never."""
        if self._phase == "stopping":
            log.info("reload: magoo is stopping; not reloading")
            return
        if self._phase == "starting" or (self._task is not None and not self._task.done()):
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._reload_until_done(), name="magoo-reload")

    async def _reload_until_done(self) -> None:
        while True:
            self._again = False
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reload failed; still running the profile as it was")
            if not self._again or self._phase != "running":
                return

    async def reload(self) -> Plan | None:
        """Load, check and apply the profile once; the plan applied, or None (problems, no change)."""
        self.reloads += 1
        try:
            # a thread: reading and checking the file (its InputFile paths too) must not hold up the loop
            new = await asyncio.to_thread(load_profile, self.path, self.engine.plugins, environ=self.environ)
        except ProfileError as exc:
            count = len(exc.issues)
            log.error("reload: %s: %d problem%s; still running the profile as it was", self.path, count, "" if count == 1 else "s")
            for issue in exc.issues:
                log.error("  %s", issue)
            return None
        if new.secret_values - self.profile.secret_values:
            log.warning("reload: the profile has a secret ({ env = ... }) that this run does not know to mask;"
                        " restart magoo to use it; still running the profile as it was")
            return None
        steps = plan(self.profile, new, continuous=self.engine.continuous,
                     runs={slot.configured.section for slot in self.engine.backends.slots()})
        if not steps.changes:
            log.info("reload: %s: no change", self.path)
            return None
        for change in steps.changes:
            log.info("reload: %s", change)
        if steps.restart:
            log.warning("reload: restart magoo to apply: %s (the rest is applied)", ", ".join(steps.restart))
        await self._apply(steps)
        return steps

    async def _apply(self, steps: Plan) -> None:
        """Apply ``steps`` between turns: once no turn is in progress and nothing is being said (a
        turn ends with the settings it began with), in one step on the loop, so no turn starts
        half-way; only the wake detector's ``reconfigure`` is awaited, last (no turn needs it)."""
        engine = self.engine
        await self._between_turns()
        engine.settings.use(steps.engine)
        engine.plugins.hook_timeout = steps.engine.hook_timeout
        engine.backends.use(steps.engine)
        if "sounds" in steps.settings:
            engine.speaker.sounds.use(steps.engine.sounds)
        swaps: dict[str, asyncio.Task] = {}
        wake: tuple[BackendSlot, BackendSpec] | None = None
        for section, spec in steps.slots.items():
            slot = engine.backends.running(section)
            if slot is None:
                continue
            if slot is engine.backends.wake:
                wake = (slot, spec)
            elif await self._in_place(slot, spec):
                log.info("reload: %s took its new settings in place", section)
            else:
                swaps[section] = slot.swap(spec)
        if wake is not None:
            slot, spec = wake
            if await self._in_place(slot, spec):
                log.info("reload: %s took its new settings in place", spec.section)
            else:
                swaps[spec.section] = slot.swap(spec)
        if "watch_profile" in steps.settings:
            self.watch.start() if steps.engine.watch_profile else await self.watch.stop()
        running = steps.running
        for section, task in swaps.items():
            try:
                failed = await task
            except asyncio.CancelledError:
                failed = "stopped before it started"
            if failed is None:
                log.info("reload: %s restarted with its new settings", section)
            else:
                running = _revert(running, self.profile, section)
        self.profile = running

    async def _between_turns(self) -> None:
        """Until no turn is in progress and nothing is being said (an announcement, a timer ringing)."""
        while True:
            await self.engine.turns.wait_no_turn()
            if not self.engine.speaker.muted:
                return
            await asyncio.sleep(0.05)  # speech outside a turn: it ends within mute_post of its sound

    async def _in_place(self, slot: BackendSlot, spec: BackendSpec) -> bool:
        """Offer ``spec``'s config to the running instance of a slot through its optional
        ``reconfigure`` (the wake detector's on the thread that scores it, others on the loop);
        True when it took it in place."""
        if not _same_backend(slot, spec):
            return False
        try:
            if slot is self.engine.backends.wake:
                took = await self.engine.wake_worker.reconfigure(spec.config)
            else:
                method = getattr(slot.instance, "reconfigure", None)
                took = callable(method) and bool(method(spec.config))
        except Exception:
            log.warning("%s %s: reconfigure() raised; restarting it instead", spec.section, spec.backend, exc_info=True)
            return False
        if took:
            slot.reconfigured(spec)
        return took


def _same_backend(slot: BackendSlot, spec: BackendSpec) -> bool:
    """The slot runs its section's own backend (not its backup, not restarting), the one ``spec`` names."""
    old = slot.configured
    return slot.spec is old and not slot.restarting and slot.instance is not None and old.info.cls is spec.info.cls


def _revert(running: Profile, old: Profile, section: str) -> Profile:
    """``running`` with the old spec of ``section`` (a slot that could not start its new settings)."""
    for spec in old.specs():
        if spec.section == section:
            current = next(s for s in running.specs() if s.section == section)
            return running.with_spec(dataclasses.replace(spec, by_wake=current.by_wake))
        for label, override in spec.by_wake.items():
            if override.section == section:
                current = next(s for s in running.specs() if s.section == spec.section)
                return running.with_spec(dataclasses.replace(current, by_wake={**current.by_wake, label: override}))
    return running
