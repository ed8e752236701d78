"""The loopback Fish Audio server, for tests and offline tries; never imported by the runtime.

``server`` serves ``POST /v1/tts``, ``connection`` speaks HTTP/1.1 to one client, ``validate``
checks a request body like the real server, ``audio`` makes real speech with espeak-ng. Run it
with ``magoo-fish-loopback`` or ``python -m magoo_fish.loopback``.
"""

from .server import LoopbackFishServer, RequestRecord, main

__all__ = ["LoopbackFishServer", "RequestRecord", "main"]
