"""Who may use the page and the API: the allow list, the token, the Host and the Origin.

Every request passes :meth:`Guard.check` before anything else. The order, and why:

1. **allow**: a peer outside the profile's ``allow`` networks gets 403 (nothing else is looked at).
2. **Host** (only without a token): the ``Host`` header must be an IP address or ``localhost``. A
   page on another site that points its own name at 127.0.0.1 (DNS rebinding) sends its own name
   as Host, so it never reaches a page that has no token to ask for.
3. **token** (when the profile sets one): an ``Authorization: Bearer TOKEN`` header (scripts,
   ``magoo meter``), a ``?token=TOKEN`` query (the first load of the page, clients that cannot
   set headers), or the page's cookie. The cookie holds an HMAC of the token, never the token:
   the token itself never appears in any response. A missing or wrong token is a bare 401.
4. **Origin** (the WebSocket, :meth:`Guard.origin_allowed`): a browser always sends it; it must be
   this server's own (the Host the request came to). A page on another site must not drive the
   assistant through the user's browser (the cookie alone would let it).

Pure functions of the request's parts, no aiohttp: :mod:`.server` hands them in. Comparisons of
secrets are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from magoo_core.network_access import Networks

#: the page's cookie; its value is :attr:`Guard.cookie_value`
COOKIE = "magoo_web"


class Refusal(Exception):
    """A request refused: ``status`` 401 (no or wrong token) or 403 (not allowed); ``reason`` is for
    the log only, never for the client, and never holds a secret."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Guard:
    """The rules for one server.

    :param token: the secret every request must carry, or None (loopback only, enforced by
        :class:`~magoo_web.config.WebConfig`).
    :param allow: addresses or networks allowed to connect; empty: everyone.
    """

    def __init__(self, token: str | None, allow: Iterable[str] = ()) -> None:
        self._token = token.encode("utf-8") if token else None
        self.networks = Networks(allow)
        #: what the page's cookie holds: derived from the token, useless to learn the token from
        self.cookie_value = (
            hmac.new(self._token, b"magoo-web page cookie", hashlib.sha256).hexdigest() if self._token else None
        )

    @property
    def protected(self) -> bool:
        return self._token is not None

    def check(
        self, peer: str | None, host: str | None, *, bearer: str | None, query: str | None, cookie: str | None
    ) -> str | None:
        """Let the request through or raise :class:`Refusal`. Returns ``"query"`` when the token came
        in the query (the server then sets the cookie), else None.

        :param peer: the client's address; :param host: the ``Host`` header; :param bearer: the
            ``Authorization`` header; :param query: the ``token`` query parameter; :param cookie:
            the :data:`COOKIE` cookie.
        """
        if not self.peer_allowed(peer):
            raise Refusal(403, f"{peer} is not in allow")
        if self._token is None:
            if not local_host_name(host):
                raise Refusal(403, "Host is a name, not an address (DNS rebinding?); without a token only addresses are served")
            return None
        if bearer is not None and bearer.startswith("Bearer ") and self._same(bearer[len("Bearer "):], self._token):
            return None
        if query is not None and self._same(query, self._token):
            return "query"
        if cookie is not None and self._same(cookie, self.cookie_value.encode("ascii")):
            return None
        raise Refusal(401, "no token" if bearer is None and query is None and cookie is None else "a wrong token")

    def peer_allowed(self, peer: str | None) -> bool:
        return self.networks.allows(peer)

    @staticmethod
    def origin_allowed(origin: str | None, host: str | None) -> bool:
        """True when a WebSocket may open: no ``Origin`` (not a browser: a script, ``magoo meter``),
        or an Origin whose host and port are the ``Host`` the request came to."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
            return False
        default = {"http": 80, "https": 443}[parts.scheme]
        return _host_port(parts.netloc, default) == _host_port(host, default)

    @staticmethod
    def _same(given: str, expected: bytes) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected)


def local_host_name(host: str | None) -> bool:
    """True for a ``Host`` header that names no domain: an IP address or ``localhost`` (with a port or not)."""
    if not host:
        return False
    name = _host_port(host, 0)[0]
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _host_port(netloc: str, default: int) -> tuple[str, int]:
    netloc = netloc.strip().lower()
    if netloc.startswith("["):  # [::1]:8765
        name, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = netloc.partition(":")
    try:
        return name, int(port) if port else default
    except ValueError:
        return name, -1
