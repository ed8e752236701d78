"""Running the checks, and every blocking step inside them, under time limits."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .context import PLACEHOLDER, Context
from .report import masked
from .rows import Check, fail

T = TypeVar("T")

#: every check's own limit; the slow steps inside have shorter ones
CHECK_TIMEOUT = 10.0

CheckFunction = Callable[[Context], Awaitable[list[Check]]]


async def run_checks(context: Context, checks: tuple[CheckFunction, ...]) -> list[Check]:
    """Run ``checks`` concurrently, each limited to :data:`CHECK_TIMEOUT`; a check that raises or
    runs out of time becomes a FAIL row of its own instead of stopping the others."""

    async def guarded(check: CheckFunction) -> list[Check]:
        name = check.__name__.removeprefix("check_").replace("_", " ")
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return await check(context)
        except TimeoutError:
            found = f"the check did not finish within {CHECK_TIMEOUT:g} s"
            return [fail(name, found, "run it again; if it hangs again, report it")]
        except Exception as exc:
            found = f"the check itself failed: {type(exc).__name__}: {exc}"
            return [fail(name, found, "report this as a bug in magoo doctor")]

    rows = [row for rows in await asyncio.gather(*(guarded(check) for check in checks)) for row in rows]
    secrets = context.profile.secret_values - {PLACEHOLDER} if context.profile else frozenset()
    return [masked(row, secrets) for row in rows]


async def run_command(args: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``args`` and return (exit code, stdout, stderr); killed after ``timeout`` (TimeoutError)."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def in_daemon_thread(call: Callable[[], T], timeout: float) -> T:
    """``call()`` in a daemon thread; after ``timeout`` the thread is abandoned (TimeoutError).

    Not ``asyncio.to_thread``: its pool is joined when the loop and then Python shut down, so one
    hung ``getaddrinfo`` would hold the whole doctor.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def work() -> None:
        try:
            result, error = call(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is gone: nobody waits any more

    threading.Thread(target=work, daemon=True, name="magoo-doctor").start()
    async with asyncio.timeout(timeout):
        return await future


async def reach(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Resolve ``host`` and open a TCP connection to ``port``, each within ``timeout`` seconds.

    :returns: (True, what answered) or (False, what went wrong), in words for a row.
    """
    try:
        infos = await in_daemon_thread(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except TimeoutError:
        return False, f"DNS: no answer for {host} within {timeout:g} s"
    except OSError as exc:
        return False, f"DNS: cannot resolve {host} ({exc.strerror or exc})"
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    started = time.monotonic()
    problem = ""
    try:
        async with asyncio.timeout(timeout):
            for address in addresses:
                try:
                    _, writer = await asyncio.open_connection(address, port)
                except OSError as exc:
                    refused = isinstance(exc, ConnectionRefusedError)
                    problem = "refuses connections" if refused else (exc.strerror or str(exc))
                    continue
                writer.close()
                elapsed = (time.monotonic() - started) * 1000
                return True, f"{host}:{port} ({address}) accepts connections ({elapsed:.0f} ms)"
    except TimeoutError:
        problem = f"no answer within {timeout:g} s (a firewall, or the host is down?)"
    return False, f"{host}:{port} ({', '.join(addresses)}): {problem}"
