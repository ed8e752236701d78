"""The servers the profile's backends talk to: DNS, then a TCP connection."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from .context import Context
from .rows import Check, fail, ok
from .running import reach

NETWORK_TIMEOUT = 2.0
URL_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


async def check_network(context: Context) -> list[Check]:
    """For every http(s)/ws(s) address a backend is configured with: DNS, then a TCP connect."""
    targets: dict[tuple[str, int], list[tuple[str, str]]] = {}  # (host, port) -> (section, key)
    for spec in context.specs():
        for key, value in spec.config:
            if not isinstance(value, str):
                continue
            parts = urlsplit(value)
            if parts.scheme in URL_PORTS and parts.hostname:
                try:
                    port = parts.port or URL_PORTS[parts.scheme]
                except ValueError:
                    continue  # not a port: the backend's own validation says so
                targets.setdefault((parts.hostname, port), []).append((spec.section, key))
    results = await asyncio.gather(*(reach(host, port, NETWORK_TIMEOUT) for host, port in targets))
    rows = []
    for ((host, port), users), (reached, found) in zip(targets.items(), results, strict=True):
        name = f"network {host}:{port}"
        found += f" (for {', '.join(f'{section} {key}' for section, key in users)})"
        section, key = users[0]
        if reached:
            rows.append(ok(name, found))
        elif found.startswith("DNS"):
            rows.append(fail(name, found, f"check the network and DNS (/etc/resolv.conf), or fix {key} in {section}"))
        else:
            rows.append(fail(name, found, f"start the server there, or fix {key} in {section}"))
    return rows
