"""The loopback OpenAI HTTP server, for tests and offline tries; never imported by the runtime
(it needs aiohttp, from the dev dependencies).

``server`` builds the app from route-adding functions and holds the key check and the scripted
faults; ``chat`` is ``/v1/chat/completions`` (streamed like the API) and ``/v1/models``;
``audio`` is ``/v1/audio/transcriptions`` and ``/v1/audio/speech``; ``validate`` checks chat requests
against the API's schema; ``errors`` is the error answer.
Run it with ``python -m magoo_openai.loopback``.
"""

from .audio import AudioLoopback, Upload
from .chat import Call
from .server import ROUTES, Fault, LoopbackOpenAIServer, main

__all__ = ["AudioLoopback", "Call", "Fault", "LoopbackOpenAIServer", "ROUTES", "Upload", "main"]
