"""The API's error answer, as every endpoint of the loopback server gives it."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web


class RequestError(Exception):
    """A request the real API would refuse (HTTP 400), with its ``param`` when one is to blame."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def api_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``{"error": {"message", "type", "param", "code"}}`` with ``status``, as OpenAI answers.
    The message must never quote the key the client sent."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=dict(headers or {}))
