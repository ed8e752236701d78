"""The shared command line of the loopback protocol servers (``magoo-realtime-loopback``, ...).

A loopback server is an async context manager that serves while the ``with`` block runs; its
console script parses ``--host``, ``--port`` and ``--api-key`` (plus its own options), logs at
INFO and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any


def loopback_parser(prog: str, description: str, *, port: int, api_key: str) -> argparse.ArgumentParser:
    """An argument parser with ``--host``, ``--port`` and ``--api-key``; add the server's own options."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--api-key", default=api_key, help="the key clients must send (default: %(default)s)")
    return parser


def serve_until_interrupted(server: AbstractAsyncContextManager[Any], announce: Callable[[], str]) -> None:
    """Run ``server`` until Ctrl-C, logging ``announce()`` (called once it listens) at INFO. Blocks."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    async def serve() -> None:
        async with server:
            logging.getLogger("magoo.loopback").info("%s", announce())
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
