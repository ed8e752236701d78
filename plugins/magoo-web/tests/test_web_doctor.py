"""``magoo doctor``'s row for the web page: where it listens and what protects it."""

from __future__ import annotations

from magoo_core.doctor import Result, open_context
from magoo_core.doctor.backends import check_backends
from magoo_core.testing import build_plugins
import magoo_web

from web_helpers import web_profile

TOKEN = "doctor-token-0123456789abcdef"


async def rows_for(tmp_path, web: str) -> list:
    profile = web_profile(tmp_path, web)
    context = open_context(build_plugins(magoo_web), profile, environ={"MAGOO_WEB_TOKEN": TOKEN})
    assert context.profile is not None, context.problems
    return [row for row in await check_backends(context) if row.check == "[[actuators]] #1 web"]


async def test_localhost_is_this_machine_only(tmp_path):
    (row,) = await rows_for(tmp_path, "")
    assert row.result is Result.OK and row.found == "http://127.0.0.1:8765/: this machine only (no token needed)"


async def test_a_network_bind_says_it_is_protected_and_by_which_variable(tmp_path):
    (row,) = await rows_for(tmp_path, 'host = "0.0.0.0"\nport = 8080\ntoken = { env = "MAGOO_WEB_TOKEN" }\nallow = ["192.168.1.0/24"]')
    assert row.result is Result.OK
    assert row.found == ("http://0.0.0.0:8080/: open to the network, protected by a token (MAGOO_WEB_TOKEN), "
                         "only for 192.168.1.0/24; plain HTTP")
    assert TOKEN not in row.found


async def test_a_network_bind_open_to_anyone_with_the_token_is_a_warning_with_the_fix(tmp_path):
    (row,) = await rows_for(tmp_path, 'host = "0.0.0.0"\ntoken = { env = "MAGOO_WEB_TOKEN" }')
    assert row.result is Result.WARN and "to anyone who can reach it" in row.found
    assert row.fix == 'set allow = ["192.168.1.0/24"] (your network) in [[actuators]] #1, or listen on 127.0.0.1'
