"""Zeroconf: ``NAME._wyoming._tcp.local.`` so Home Assistant finds the satellite by itself
(its Wyoming integration lists ``_wyoming._tcp.local.`` in its manifest, connects, and offers to
add a satellite whose ``describe`` says ``installed``)."""

from __future__ import annotations

import ipaddress
import logging
import socket

log = logging.getLogger("magoo.wyoming.satellite")

SERVICE_TYPE = "_wyoming._tcp.local."
#: where a UDP socket is "connected" to learn which address this machine uses on the LAN (no packet is sent)
MDNS_GROUP = "224.0.0.251"


def record_address(host: str, advertise: str | None) -> str:
    """The address put in the record: ``advertise`` if given, else ``host`` unless it listens on
    every interface, in which case the address of the interface that carries multicast."""
    if advertise:
        return advertise
    if host not in ("0.0.0.0", "::", ""):
        return host
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((MDNS_GROUP, 5353))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def service_info(name: str, address: str, port: int, properties: dict[str, str] | None = None):
    """The zeroconf record of a satellite called ``name`` at ``address:port``."""
    from zeroconf.asyncio import AsyncServiceInfo

    return AsyncServiceInfo(
        SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", addresses=[ipaddress.ip_address(address).packed], port=port,
        properties=properties or {}, server=f"{name}.local.",
    )


class Advertiser:
    """Registers the record while entered; a failure is one warning (discovery is a convenience:
    Home Assistant can still add the satellite by host and port). Event-loop only.

    :param interfaces: zeroconf's interface choice (``["127.0.0.1"]`` in tests); None: all.
    """

    def __init__(self, name: str, address: str, port: int, interfaces: list[str] | None = None) -> None:
        self.info = service_info(name, address, port, {"magoo": "satellite"})
        self.interfaces = interfaces
        self._zc = None

    async def start(self) -> bool:
        from zeroconf import InterfaceChoice
        from zeroconf.asyncio import AsyncZeroconf

        try:
            self._zc = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All)
            await self._zc.async_register_service(self.info)
        except Exception as exc:  # no multicast route, a socket refused: discovery only
            log.warning("zeroconf could not advertise the satellite (%s); add it in Home Assistant by host and port", exc)
            await self.stop()
            return False
        log.info("advertised %s on zeroconf", self.info.name)
        return True

    async def stop(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            await zc.async_unregister_all_services()
        except Exception:
            log.debug("zeroconf unregister failed", exc_info=True)
        await zc.async_close()
