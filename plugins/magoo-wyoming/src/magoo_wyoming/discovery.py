"""Wyoming servers on the local network: :func:`browse` for ``_wyoming._tcp.local.`` with zeroconf.

``zeroconf`` is imported when a browse starts, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import logging

from .connection import Address

log = logging.getLogger("magoo.wyoming")

SERVICE_TYPE = "_wyoming._tcp.local."


async def browse(seconds: float) -> dict[str, Address]:
    """The Wyoming services that answer within ``seconds``: their zeroconf instance name (``"piper"``)
    → address. Runs on the event loop; returns after ``seconds`` (never raises for a network
    without multicast: it returns what it found, possibly nothing)."""
    from zeroconf import ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    found: dict[str, Address] = {}
    pending: set[asyncio.Task] = set()
    zc = AsyncZeroconf()

    async def resolve(name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(zc.zeroconf, 1500):
            return
        hosts = sorted(info.parsed_scoped_addresses(), key=lambda host: ":" in host)  # IPv4 first
        if hosts and info.port:
            found[name.removesuffix("." + SERVICE_TYPE)] = Address("tcp", host=hosts[0], port=info.port)

    def changed(zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed:
            task = asyncio.ensure_future(resolve(name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(zc.zeroconf, SERVICE_TYPE, handlers=[changed])
    try:
        await asyncio.sleep(seconds)
        if pending:
            await asyncio.wait(list(pending), timeout=1.5)
    except OSError as exc:
        log.warning("zeroconf browse failed: %s", exc)
    finally:
        for task in list(pending):
            task.cancel()
        await browser.async_cancel()
        await zc.async_close()
    return found
