"""Discovery as Home Assistant does it (``config_flow.async_step_zeroconf``): browse
``_wyoming._tcp.local.``, connect to the address and port found, ``describe``, and see an installed
satellite. Multicast works on this machine's loopback interface, so this is the real thing, on ``lo``."""

from __future__ import annotations

import asyncio
import uuid

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from magoo_wyoming.satellite.advertise import SERVICE_TYPE

from satellite_helpers import run_satellite, satellite_profile


class Names:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.found = asyncio.Event()

    def add_service(self, zc, kind, name):
        self.names.append(name)
        self.found.set()

    def remove_service(self, *args):
        pass

    def update_service(self, *args):
        pass


async def test_home_assistant_finds_the_satellite_on_zeroconf_and_its_describe_says_installed():
    name = f"magoo-test-{uuid.uuid4().hex[:8]}"  # parallel runs advertise side by side
    seen: dict = {}

    async def discover(ha, engine):
        browser = AsyncZeroconf(interfaces=["127.0.0.1"])
        listener = Names()
        browsing = AsyncServiceBrowser(browser.zeroconf, SERVICE_TYPE, listener=listener)
        try:
            async with asyncio.timeout(5):  # the bound: visible to a browser within 5 s
                while f"{name}.{SERVICE_TYPE}" not in listener.names:
                    listener.found.clear()
                    await listener.found.wait()
            info = AsyncServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}")
            assert await info.async_request(browser.zeroconf, 3000)
            seen["address"], seen["port"] = info.parsed_addresses()[0], info.port
        finally:
            await browsing.async_cancel()
            await browser.async_close()
        client = AsyncTcpClient(seen["address"], seen["port"])
        await client.connect()
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None and not Info.is_type(event.type):
            pass
        seen["info"] = Info.from_event(event)
        await client.disconnect()

    profile = satellite_profile(1, name=name, zeroconf=True, advertise_address="127.0.0.1",
                                zeroconf_interfaces=["127.0.0.1"], source_options={"lead": 6.0})
    run = await run_satellite(profile, discover, turns=1, timeout=60)  # the run lasts past the 5 s bound
    assert "info" in seen, "discovery did not finish while magoo ran"

    assert seen["address"] == "127.0.0.1" and seen["port"] == run.engine.backends.services["house"].last_instance.listener.port
    assert seen["info"].satellite.installed and seen["info"].satellite.name == name
