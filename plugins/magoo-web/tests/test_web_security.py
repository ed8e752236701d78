"""Who may use the page and the API: a bind to the network needs a token, a wrong token is refused
with nothing said, another site's page cannot open the WebSocket, and no secret is ever served."""

from __future__ import annotations

import json

import aiohttp
import pytest

from magoo_core.errors import ProfileError
from magoo_core.profile import load_profile
from magoo_core.testing import build_plugins
import magoo_web
from magoo_web.guard import COOKIE, Guard, local_host_name

from web_helpers import TOKEN, connected, running_engine, web_profile

PROTECTED = {"token": {"env": "MAGOO_WEB_TOKEN"}}
ENV = {"MAGOO_WEB_TOKEN": TOKEN}


def _load(tmp_path, web: str, environ: dict[str, str] | None = None):
    profile = web_profile(tmp_path, web)
    return load_profile(profile, build_plugins(magoo_web), environ=environ or {})


@pytest.mark.parametrize(
    ("web", "environ", "error"),
    [
        ('host = "0.0.0.0"', {}, "token: is required when host is not 127.0.0.1: anyone on the network could drive "
         'the assistant; set token = { env = "MAGOO_WEB_TOKEN" } (or listen on 127.0.0.1)'),
        ('host = "192.168.1.20"', {}, "token: is required when host is not 127.0.0.1"),
        ('host = "0.0.0.0"\ntoken = "written-in-the-profile-0123"', {},
         'token: must come from the environment, not the profile file: token = { env = "MAGOO_WEB_TOKEN" }'),
        ('host = "0.0.0.0"\ntoken = { env = "T" }', {"T": "abc123"},
         "token: is shorter than 16 characters: make a longer one (openssl rand -hex 16)"),
    ],
)
def test_a_network_bind_without_a_good_token_refuses_to_load_with_one_line_naming_the_key(tmp_path, web, environ, error):
    with pytest.raises(ProfileError) as refused:
        _load(tmp_path, web, environ)
    message = str(refused.value)
    assert "\n" not in message and "[[actuators]] #1 token: " in message and error in message
    for value in environ.values():
        assert value not in message


def test_a_network_bind_with_a_token_and_localhost_without_one_load(tmp_path):
    spec = _load(tmp_path, 'host = "0.0.0.0"\ntoken = { env = "MAGOO_WEB_TOKEN" }', ENV).actuators[0]
    assert spec.config.protected and spec.config.token_variable == "MAGOO_WEB_TOKEN"
    assert TOKEN not in repr(spec.config)
    (tmp_path / "local").mkdir()
    assert not _load(tmp_path / "local", "").actuators[0].config.protected


async def test_with_a_token_every_request_needs_it_and_a_wrong_one_gets_a_bare_401():
    async with running_engine(web=PROTECTED, environ=ENV) as run, aiohttp.ClientSession() as session:
        url = run.url
        for path in ("", "app.js", "style.css", "api/status", "api/ws"):
            for headers, query in (({}, ""), ({"Authorization": f"Bearer {TOKEN}x"}, ""), ({}, "?token=nope"),
                                   ({"Cookie": f"{COOKIE}=0123"}, ""), ({"Authorization": TOKEN}, "")):
                async with session.get(url + path + query, headers=headers, allow_redirects=False) as response:
                    assert response.status == 401, (path, headers, query)
                    assert await response.text() == "401: Unauthorized"
                    assert "WWW-Authenticate" not in response.headers
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(run.ws_url("?token=wrong"))
        assert refused.value.status == 401

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with session.get(url + "api/status", headers=bearer) as response:
            assert response.status == 200 and (await response.json())["running"] is True
        # the page's first load: the token in the query becomes a cookie, and leaves the address bar
        async with session.get(url + f"?token={TOKEN}", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            cookie = response.cookies[COOKIE]
            assert cookie.value and TOKEN not in cookie.value and cookie["httponly"] and cookie["samesite"] == "Strict"
        jar = {"Cookie": f"{COOKIE}={cookie.value}"}
        for path in ("", "app.js", "style.css", "api/status"):
            async with session.get(url + path, headers=jar) as response:
                assert response.status == 200, path
    assert run.actuator.server.counters["refused"] >= 26


async def test_the_websocket_takes_the_token_three_ways_and_refuses_another_sites_page():
    async with running_engine(web=PROTECTED, environ=ENV) as run:
        server = run.actuator.server
        host = run.url.split("/")[2]
        cookie = {"Cookie": f"{COOKIE}={server.guard.cookie_value}"}
        for options in ({"headers": {"Authorization": f"Bearer {TOKEN}"}}, {"query": f"?token={TOKEN}"},
                        {"headers": {**cookie, "Origin": f"http://{host}"}}):
            async with connected(run.ws_url(options.get("query", "")), headers=options.get("headers", {})) as client:
                await client.wait_for(lambda: client.of("snapshot"))
        async with aiohttp.ClientSession() as session:
            for origin in ("http://evil.example", f"http://{host.split(':')[0]}:1", "null", f"https://{host}x"):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(run.ws_url(), headers={**cookie, "Origin": origin})
                assert refused.value.status == 403, origin


async def test_without_a_token_a_request_for_a_name_other_than_localhost_is_refused():
    # DNS rebinding: a site whose name points at 127.0.0.1 sends its own name as Host
    async with running_engine() as run, aiohttp.ClientSession() as session:
        port = run.actuator.server.port
        async with session.get(run.url + "api/status", headers={"Host": f"evil.example:{port}"}) as response:
            assert response.status == 403 and await response.text() == "403: Forbidden"
        for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
            async with session.get(run.url + "api/status", headers={"Host": host}) as response:
                assert response.status == 200, host


async def test_a_client_outside_allow_is_refused():
    async with running_engine(web={"allow": ["10.0.0.0/8"]}) as run, aiohttp.ClientSession() as session:
        async with session.get(run.url) as response:
            assert response.status == 403
    async with running_engine(web={"allow": ["127.0.0.0/8"]}) as run, aiohttp.ClientSession() as session:
        async with session.get(run.url) as response:
            assert response.status == 200 and "<title>" in await response.text()


async def test_no_secret_is_in_any_response_page_or_message():
    # a secret the reply is made from (the echo responder's template) and the token itself
    template = "Zebra-Quartz-7731 says: {text}"
    environ = {**ENV, "REPLY_TEMPLATE": template}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    served: list[str] = []
    async with running_engine({"responder": {"backend": "echo", "template": {"env": "REPLY_TEMPLATE"}}},
                              PROTECTED, environ=environ) as run:
        async with aiohttp.ClientSession() as session:
            for path in ("", "app.js", "style.css", "api/status", f"?token={TOKEN}", "nothing-here"):
                async with session.get(run.url + path, headers=bearer, allow_redirects=False) as response:
                    served.append(json.dumps(dict(response.headers)) + await response.text())
        async with connected(run.ws_url(), headers=bearer) as client:
            await client.wait_for(lambda: client.events("turn_end"))
            await client.command(1, command="say", text="hello")
            served += client.texts
        replies = [m["reply"]["text"] for m in client.events("reply")]
        assert replies and all("****" in text for text in replies), "guards the check below: the reply held the secret"
    everything = "\n".join(served)
    for secret in (TOKEN, "Zebra-Quartz-7731"):
        assert secret not in everything


def test_the_guard_rules():
    guard = Guard(TOKEN, ["192.168.1.0/24", "::1"])
    assert guard.peer_allowed("192.168.1.7") and guard.peer_allowed("::ffff:192.168.1.7") and guard.peer_allowed("::1")
    assert not guard.peer_allowed("192.168.2.7") and not guard.peer_allowed(None) and not guard.peer_allowed("x")
    assert Guard.origin_allowed(None, "pi:8765")
    assert Guard.origin_allowed("http://pi:8765", "PI:8765") and Guard.origin_allowed("http://pi", "pi:80")
    assert Guard.origin_allowed("http://[::1]:8765", "[::1]:8765")
    assert not Guard.origin_allowed("http://pi:8766", "pi:8765") and not Guard.origin_allowed("file://", "pi:8765")
    assert not Guard.origin_allowed("http://pi:8765", None)
    assert [local_host_name(h) for h in ("localhost:1", "127.0.0.1", "[::1]:8", "10.1.2.3:80", "pi.local:8765", "", None)] == [
        True, True, True, True, False, False, False]
    assert Guard(None).cookie_value is None and TOKEN not in guard.cookie_value
