"""What the loopback server keeps of each request, and the faults a test scripts for the next ones.

Route modules read both from the request: ``request[RECORD]`` (fill in ``body``) and
``request[FAULT]`` (a stream fault to apply, or None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

StreamFault = Literal["stall", "drop", "malformed"]


@dataclass
class Fault:
    """What goes wrong with one coming request.

    :param status: answer with this HTTP status and an API error body instead (401, 429, 500 ...).
    :param retry_after: with ``status``: the ``Retry-After`` header, in seconds.
    :param stream: a streamed answer goes wrong after ``after`` pieces: ``stall`` (the connection
        stays open and silent until :meth:`LoopbackOpenAIServer.unstall` or the server stops),
        ``drop`` (the connection is cut, no ``[DONE]``), ``malformed`` (a ``data:`` line that is
        not JSON).
    :param after: pieces sent before the stream fault: text deltas, transcript events, audio chunks.
    :param path: only for requests to this path (``/v1/chat/completions``); None: the next request.
    """

    status: int | None = None
    retry_after: float | None = None
    stream: StreamFault | None = None
    after: int = 0
    path: str | None = None


@dataclass
class Recorded:
    """One request as the server got it: path, headers (lower-case names), JSON body or form fields."""

    path: str
    headers: dict[str, str]
    body: Any = None
    status: int = 200
    #: the answer was sent whole (a stream up to its ``[DONE]``)
    done: bool = False


#: the request's :class:`Recorded`, for the route to fill in its body
RECORD = web.RequestKey("record", Recorded)
#: the fault the route applies to its streamed answer (None: none)
FAULT = web.RequestKey("fault", object)
