"""The built-in tools every responder may turn on: ``time`` and ``say_nothing``."""

from __future__ import annotations

from datetime import datetime

from magoo_core.plugins import create_plugin_manager
from magoo_core.tools import Toolbox


def builtin_tools() -> Toolbox:
    plugins = create_plugin_manager(entry_points=False)
    return Toolbox.from_hook(plugins.pm.hook.magoo_register_tools)


async def test_time_tells_the_local_time_date_and_weekday():
    result = await builtin_tools().call("time", "{}")
    now = datetime.now().astimezone()
    assert result.ok and not result.silent
    assert now.strftime("%A") in result.content and now.strftime("%Y") in result.content
    assert result.content.startswith("It is ")


async def test_say_nothing_is_silent_and_takes_no_arguments():
    box = builtin_tools()
    assert (await box.call("say_nothing", None)).silent
    refused = await box.call("say_nothing", '{"loudly": true}')
    assert not refused.ok and "do not fit say_nothing" in refused.content


def test_the_clock_registers_through_the_same_hook_as_any_plugin():
    plugins = create_plugin_manager(entry_points=False)
    (clock,) = [info for info in plugins.plugins if info.name == "magoo:clock"]
    assert clock.builtin and clock.hooks == ["magoo_register_tools"] and clock.error is None
