"""Plugin loading: built-ins, real entry points, broken plugins, hook typos, and ``emit()``."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import ClassVar

import pytest
from magoo_core import Backend, BackendConfig, PluginError, ProfileError, WakeEvent, hookimpl
from magoo_core.plugins import _check_backend_class, create_plugin_manager
from magoo_core.profile import parse_profile
from magoo_core.roles import Role
from plugin_sources import LAMP_PLUGIN

#: Fake installed distributions: magoo-broken 0.3.0 (needs a missing library) and magoo-secretstt.
PLUGIN_SITE = Path(__file__).parent / "fixtures" / "site"
WAKE = WakeEvent("hey_magoo", 0.9, 0.5, 0.0)

GOOD_PLUGIN = '''
    """A healthy third-party plugin: one responder."""
    from typing import ClassVar

    from magoo_core import Backend, BackendConfig, Reply, hookimpl


    class GoodResponder(Backend):
        """Always answers "good"."""

        name: ClassVar[str] = "goodtest"

        class Config(BackendConfig):
            pass

        async def respond(self, transcript):
            return Reply("good")


    @hookimpl
    def magoo_register_responders(register):
        register(GoodResponder)
'''

#: A profile that needs only built-ins; tests add the section they are about.
PROFILE = {
    "audio_source": {"backend": "silence"},
    "stt": {"backend": "scripted"},
    "responder": {"backend": "echo"},
}


def by_name(plugins) -> dict:
    return {info.name: info for info in plugins.plugins}


# ---- built-ins ----------------------------------------------------------------------------------


def test_builtins_register_through_the_hooks():
    plugins = create_plugin_manager(builtins=True, entry_points=False, environ={})

    expected = {
        Role.AUDIO_SOURCE: {"scripted", "tone", "silence", "wav"},
        Role.WAKE: {"scripted"},
        Role.STT: {"scripted"},
        Role.RESPONDER: {"echo"},
        Role.TTS: {"tone"},
        Role.PLAYER: {"wav"},
        Role.ACTUATOR: {"log"},
    }
    for role, names in expected.items():
        assert names <= set(plugins.names(role)), role
    every = [info for role in Role for info in plugins.backends[role].values()]
    assert {info.distribution for info in every} == {"magoo"}
    assert all(info.plugin.startswith("magoo:") for info in every)
    assert plugins.plugins and all(p.builtin and p.loaded and p.distribution == "magoo" for p in plugins.plugins)


def test_without_builtins_the_registry_is_empty():
    plugins = create_plugin_manager(builtins=False, entry_points=False, environ={})

    assert all(plugins.names(role) == [] for role in Role)


# ---- entry points -------------------------------------------------------------------------------


@pytest.fixture
def installed(tmp_path, plugin_path, fake_dist):
    """magoo-goodtest in tmp_path, and the fixture site (magoo-broken first on sys.path)."""
    fake_dist(tmp_path, "magoo-goodtest", "1.2.0", GOOD_PLUGIN)
    plugin_path(tmp_path)
    plugin_path(PLUGIN_SITE)


def test_broken_entry_point_is_recorded_and_the_others_still_load(installed):
    plugins = create_plugin_manager(environ={})
    infos = by_name(plugins)

    broken = infos["magoo-broken"]
    assert not broken.loaded
    assert broken.module == "magoo_broken"
    assert "definitely_missing_lib" in broken.error
    assert broken.missing_module == "definitely_missing_lib"
    assert "definitely-missing-lib>=1" in broken.install
    assert broken.version == "0.3.0"
    assert broken.distribution == "magoo-broken"

    good = infos["magoo-goodtest"]
    assert good.loaded and good.version == "1.2.0"
    names = list(infos)
    assert names.index("magoo-broken") < names.index("magoo-goodtest")  # loaded after the failure
    backend = plugins.backend(Role.RESPONDER, "goodtest")
    assert backend is not None and backend.distribution == "magoo-goodtest"
    assert "magoo_register_responders" in good.hooks


def test_the_example_plugin_is_discovered_by_entry_point():
    plugins = create_plugin_manager(environ={})

    hello = by_name(plugins)["magoo-hello"]
    assert hello.loaded and not hello.builtin and hello.module == "magoo_hello"
    assert plugins.backend(Role.RESPONDER, "hello").distribution == "magoo-hello"


def test_a_broken_plugin_is_fatal_only_when_the_profile_uses_it(installed, tmp_path):
    plugins = create_plugin_manager(environ={})

    profile = parse_profile(PROFILE, plugins, base_dir=tmp_path, environ={})
    assert profile.responder.backend == "echo"

    with pytest.raises(ProfileError) as caught:
        parse_profile({**PROFILE, "tts": {"backend": "broken"}, "player": {"backend": "wav"}}, plugins,
                      base_dir=tmp_path, environ={})
    [issue] = caught.value.issues
    assert (issue.section, issue.key) == ("[tts]", "backend")
    text = str(issue)
    for part in ("magoo-broken", "0.3.0", "definitely_missing_lib", "uv pip install 'definitely-missing-lib>=1'"):
        assert part in text


def test_load_plugins_empty_loads_only_builtins(installed):
    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": ""})

    assert [p.name for p in plugins.plugins if not p.builtin] == []
    assert plugins.backend(Role.RESPONDER, "echo") is not None
    assert plugins.backend(Role.RESPONDER, "goodtest") is None


def test_load_plugins_names_the_ones_to_load(installed):
    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-goodtest"})

    assert [p.name for p in plugins.plugins if not p.builtin] == ["magoo-goodtest"]
    assert plugins.backend(Role.RESPONDER, "goodtest") is not None
    assert plugins.backend(Role.RESPONDER, "hello") is None


SAME_NAME = '''
    from typing import ClassVar

    from magoo_core import Backend, BackendConfig, hookimpl


    class Same(Backend):
        name: ClassVar[str] = "same"

        class Config(BackendConfig):
            pass

        async def respond(self, transcript):
            return None


    @hookimpl
    def magoo_register_responders(register):
        register(Same)
'''


def test_two_installed_plugins_with_the_same_backend_name_both_fail_naming_each_other(tmp_path, plugin_path, fake_dist):
    fake_dist(tmp_path, "magoo-dupa", "1.0", SAME_NAME)
    fake_dist(tmp_path, "magoo-dupb", "2.0", SAME_NAME)
    plugin_path(tmp_path)

    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-dupa,magoo-dupb,magoo-hello"})

    infos = by_name(plugins)
    assert "'same'" in infos["magoo-dupa"].error and "magoo-dupb 2.0" in infos["magoo-dupa"].error
    assert "'same'" in infos["magoo-dupb"].error and "magoo-dupa 1.0" in infos["magoo-dupb"].error
    assert plugins.backend(Role.RESPONDER, "same") is None  # which one would be a coin toss
    assert plugins.backend(Role.RESPONDER, "hello") is not None  # the others load
    with pytest.raises(ProfileError) as caught:
        parse_profile({**PROFILE, "responder": {"backend": "same"}}, plugins, base_dir=tmp_path, environ={})
    said = str(caught.value).lower()
    assert "plugin magoo-dup" in said and "magoo-dupa" in said and "magoo-dupb" in said


def test_an_installed_plugin_taking_a_builtin_backend_name_fails_and_the_builtin_stays(tmp_path, plugin_path, fake_dist):
    fake_dist(tmp_path, "magoo-echo2", "1.0", SAME_NAME.replace('"same"', '"echo"'))
    plugin_path(tmp_path)

    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-echo2"})

    error = by_name(plugins)["magoo-echo2"].error
    assert re.search(r"'echo', which magoo \S+ already provides; rename it or uninstall magoo-echo2$", error), error
    assert plugins.backend(Role.RESPONDER, "echo").distribution == "magoo"


def test_plugins_handed_in_by_code_with_the_same_backend_name_raise():
    class One:
        @staticmethod
        @hookimpl
        def magoo_register_responders(register):
            register(type("Echo", (Backend,), {"name": "echo", "Config": BackendConfig, "respond": lambda self, t: None}))

    with pytest.raises(PluginError) as caught:
        create_plugin_manager(entry_points=False, extra=[One], environ={})
    assert "responder backend 'echo' is registered twice" in str(caught.value)


TYPO_MODULE = """
    from magoo_core import hookimpl


    @hookimpl
    def magoo_on_wak(wake, turn):
        pass
"""


def test_an_installed_plugin_with_a_misspelled_hook_fails_alone(tmp_path, plugin_path, fake_dist):
    fake_dist(tmp_path, "magoo-typo", "1.0", TYPO_MODULE)
    plugin_path(tmp_path)

    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-typo,magoo-hello"})

    typo = by_name(plugins)["magoo-typo"]
    assert not typo.loaded
    assert typo.error == "'magoo_on_wak' is not a magoo hook; did you mean 'magoo_on_wake'?"
    assert not plugins.pm.has_plugin("magoo-typo")  # none of its hooks is called
    assert by_name(plugins)["magoo-hello"].loaded





def test_a_misspelled_hook_method_on_a_backend_class_fails_when_the_class_is_registered(tmp_path, plugin_path, fake_dist):
    fake_dist(tmp_path, "magoo-lamp", "0.4.0", LAMP_PLUGIN)
    plugin_path(tmp_path)

    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-lamp"})

    lamp = by_name(plugins)["magoo-lamp"]
    assert not lamp.loaded
    assert "Lamp.magoo_on_wak is not a magoo hook; did you mean 'magoo_on_wake'?" in lamp.error
    assert "magoo_lamp.Lamp" in lamp.error
    assert plugins.backend(Role.ACTUATOR, "lamp") is None
    with pytest.raises(ProfileError) as caught:  # what `magoo check` says of a profile that uses it
        parse_profile({**PROFILE, "actuators": [{"backend": "lamp"}]}, plugins, base_dir=tmp_path, environ={})
    said = str(caught.value).lower()
    assert "plugin magoo-lamp 0.4.0 failed to load" in said and "did you mean 'magoo_on_wake'?" in said


class Wrong(Backend):
    name: ClassVar[str] = "wrong"

    class Config(BackendConfig):
        pass

    async def respond(self, transcript):
        return None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("magoo_on_transcrpt", "Wrong.magoo_on_transcrpt is not a magoo hook; did you mean 'magoo_on_transcript'?"),
        ("magoo_register_tts", "Wrong.magoo_register_tts: registration hooks belong in the plugin module, not on a backend class"),
        ("magoo_on_wake", "Wrong.magoo_on_wake takes loudness, which the hook does not pass (it passes wake, turn)"),
    ],
)
def test_hook_methods_of_backend_classes_are_checked(method, expected):
    def hook(self, wake=None, turn=None, loudness=None):  # every argument optional: nothing to check
        pass

    def strict(self, wake, turn, loudness):
        pass

    cls = type("Wrong", (Wrong,), {method: strict if method == "magoo_on_wake" else hook})
    assert _check_backend_class(Role.RESPONDER, cls) == expected
    assert _check_backend_class(Role.RESPONDER, type("Fine", (Wrong,), {"magoo_on_wake": hook})) is None


def test_load_plugins_naming_no_installed_plugin_is_reported(installed):
    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-goodtest,magoo-pocketsphynx"})

    [warning] = plugins.warnings
    assert warning.startswith("MAGOO_LOAD_PLUGINS names magoo-pocketsphynx, which is not installed; installed: ")
    assert "magoo-goodtest" in warning and "magoo-broken" in warning
    assert create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-goodtest"}).warnings == []


def test_a_plugin_left_out_by_load_plugins_is_named_as_installed_not_to_install(installed, tmp_path):
    plugins = create_plugin_manager(environ={"MAGOO_LOAD_PLUGINS": "magoo-pocketsphynx"})

    with pytest.raises(ProfileError) as caught:
        parse_profile({**PROFILE, "responder": {"backend": "goodtest"}}, plugins, base_dir=tmp_path, environ={})
    said = str(caught.value).lower()
    assert "plugin magoo-goodtest 1.2.0 is installed but not loaded" in said
    assert "add magoo-goodtest to magoo_load_plugins" in said
    assert "uv pip install" not in said


# ---- trace --------------------------------------------------------------------------------------


class Listener:
    @staticmethod
    @hookimpl
    def magoo_on_wake(wake, turn):
        pass


@pytest.mark.parametrize("trace", [True, False])
async def test_trace_plugins_prints_every_hook_call(capsys, trace):
    environ = {"MAGOO_TRACE_PLUGINS": "1"} if trace else {}
    plugins = create_plugin_manager(entry_points=False, builtins=False, extra=[Listener], environ=environ)

    await plugins.emit("wake", wake=WAKE, turn=3)

    traced = re.findall(r"^magoo-trace: Listener\.magoo_on_wake\(.*\bturn=3\)$", capsys.readouterr().err, re.M)
    assert len(traced) == (1 if trace else 0)


# ---- hook typos fail loudly ---------------------------------------------------------------------


class DecoratedTypo:
    @staticmethod
    @hookimpl
    def magoo_on_wak(wake, turn):
        pass


class UndecoratedTypo:
    @staticmethod
    def magoo_on_transcrpt(transcript, turn):
        pass


class UnknownArgument:
    @staticmethod
    @hookimpl
    def magoo_on_wake(wake, turn, loudness):
        pass


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (DecoratedTypo, "did you mean 'magoo_on_wake'"),
        (UndecoratedTypo, "did you mean 'magoo_on_transcript'"),
        (UnknownArgument, "loudness"),
    ],
)
def test_hook_mistakes_fail_loudly(plugin, expected):
    with pytest.raises(PluginError) as caught:
        create_plugin_manager(entry_points=False, extra=[plugin], environ={})

    assert plugin.__name__ in str(caught.value)
    assert expected in str(caught.value)


# ---- registration failures mark only that plugin as failed ----------------------------------------


class Exploding:
    @staticmethod
    @hookimpl
    def magoo_register_stt(register):
        register(HalfwayStt)  # registered before the failure below

    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(HalfwayPlayer)  # asked after the failure

    @staticmethod
    @hookimpl
    def magoo_register_tts(register):
        raise RuntimeError("no voices today")


def test_a_raising_registration_hook_marks_that_plugin_failed():
    plugins = create_plugin_manager(entry_points=False, extra=[Exploding], environ={})

    infos = by_name(plugins)
    assert not infos["Exploding"].loaded
    assert "magoo_register_tts" in infos["Exploding"].error and "no voices today" in infos["Exploding"].error
    assert all(info.loaded for name, info in infos.items() if name != "Exploding")
    assert plugins.backend(Role.TTS, "tone") is not None
    assert plugins.backend(Role.STT, "halfway") is None, "a half-registered plugin offers nothing"
    assert plugins.backend(Role.PLAYER, "halfway") is None
    assert infos["Exploding"].backends == []


class HalfwayStt(Backend):
    name: ClassVar[str] = "halfway"

    async def transcribe(self, audio):
        yield None


class HalfwayPlayer(Backend):
    name: ClassVar[str] = "halfway"

    async def play(self, audio, progress):
        pass

    async def stop(self):
        pass


class NoName(Backend):
    class Config(BackendConfig):
        pass

    async def transcribe(self, audio):
        yield None


class NoConfig:
    name: ClassVar[str] = "noconfig"

    def __init__(self, config):
        pass

    async def transcribe(self, audio):
        yield None


class NoTranscribe(Backend):
    name: ClassVar[str] = "notranscribe"

    class Config(BackendConfig):
        pass


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (NoName, "needs a class attribute `name`"),
        (NoConfig, "needs a nested `Config`"),
        (NoTranscribe, "missing transcribe()"),
    ],
)
def test_registering_an_incomplete_class_marks_the_plugin_failed(cls, expected):
    class Registers:
        @staticmethod
        @hookimpl
        def magoo_register_stt(register):
            register(cls)

    plugins = create_plugin_manager(entry_points=False, extra=[Registers], environ={})

    info = by_name(plugins)["Registers"]
    assert not info.loaded
    assert expected in info.error and "speech-to-text" in info.error
    assert plugins.names(Role.STT) == ["scripted"]


# ---- emit() isolates failures -------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.turns: list[int] = []
        self.failures: list = []

    @hookimpl
    def magoo_on_wake(self, wake, turn):
        self.turns.append(turn)

    @hookimpl
    def magoo_on_error(self, failure):
        self.failures.append(failure)


class SyncRaiser:
    @staticmethod
    @hookimpl
    def magoo_on_wake(wake, turn):
        raise RuntimeError("sync hook broke")


class AsyncRaiser:
    @staticmethod
    @hookimpl
    async def magoo_on_wake(wake, turn):
        await asyncio.sleep(0)
        raise RuntimeError("async hook broke")


async def test_raising_hooks_do_not_stop_the_others_and_are_reported_once(caplog):
    first, last = Recorder(), Recorder()  # one on each side of the raisers, whatever the call order
    plugins = create_plugin_manager(
        entry_points=False, builtins=False, extra=[first, SyncRaiser, AsyncRaiser, last], environ={}
    )

    with caplog.at_level(logging.ERROR, logger="magoo.plugins"):
        await plugins.emit("wake", wake=WAKE, turn=1)

    for recorder in (first, last):
        assert recorder.turns == [1]
        reported = sorted((f.role, f.backend) for f in recorder.failures)
        assert reported == [("plugin", "AsyncRaiser"), ("plugin", "SyncRaiser")]
    assert any("SyncRaiser" in record.getMessage() for record in caplog.records)
    assert any("AsyncRaiser" in record.getMessage() for record in caplog.records)

    await plugins.emit("wake", wake=WAKE, turn=2)

    for recorder in (first, last):
        assert recorder.turns == [1, 2]
        assert len(recorder.failures) == 2  # the same failures again within a minute: not reported


async def test_a_slow_async_hook_does_not_hold_up_emit_and_drain_cancels_it():
    release = asyncio.Event()
    seen: dict = {}

    class Slow:
        @staticmethod
        @hookimpl
        async def magoo_on_wake(wake, turn):
            seen["task"] = asyncio.current_task()
            try:
                await release.wait()
                seen["finished"] = True
            except asyncio.CancelledError:
                seen["cancelled"] = True
                raise

    recorder = Recorder()
    plugins = create_plugin_manager(entry_points=False, builtins=False, extra=[Slow, recorder], environ={})
    plugins.hook_timeout = 0.05

    async with asyncio.timeout(30):  # a bound for a hang, not a timing assertion
        await plugins.emit("wake", wake=WAKE, turn=1)

    task = seen["task"]
    assert not release.is_set() and not task.done()  # emit returned while the hook still waits
    assert recorder.turns == [1]
    assert recorder.failures == []

    await plugins.drain(0.01)
    await asyncio.wait([task], timeout=30)
    assert task.cancelled() and seen.get("cancelled") and "finished" not in seen
