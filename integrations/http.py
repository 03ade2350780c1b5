"""Outbound HTTP: one configured requests.Session per peer, never without a timeout, never
following a redirect, and only to addresses the practice's `network` settings allow.

Every adapter builds its session here, so each gets the same rules:
- **No redirects.** Our calls carry credentials (a bearer token, Basic auth, a signed client
  assertion); a 307 would re-send them to wherever the `Location` points. A redirect is an
  answer like any other, which each adapter maps to an error.
- **Where it connects** is checked at connect time, against the address actually connected to
  (`integrations/network.py`): loopback, link-local (169.254.169.254) and private ranges are
  refused unless the practice allows private ones. Through an egress proxy (`HTTPS_PROXY`), the
  proxy connects: the adapter then resolves and checks the name before sending instead.
"""

from __future__ import annotations

import email.utils
import socket
from datetime import timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from integrations.network import checked_addresses, connect_checked
from integrations.settings import PUBLIC_ONLY, NetworkSettings

USER_AGENT = "alliance-feedback/0.1"
# (connect, read) seconds: connect slightly above a TCP retransmit window, read bounded so a
# stuck peer can never hold a worker.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
# Failures where the peer may never have seen the request, or we never saw its answer.
TRANSPORT_FAILURES = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


class _CheckedConnect:
    """urllib3 connection mixin: connect only to an address the network settings allow."""

    network: NetworkSettings = PUBLIC_ONLY

    def _new_conn(self):
        if self.proxy is not None:  # the proxy connects; the session checked the name
            return super()._new_conn()
        # The errors as urllib3's own _new_conn reports them (requests maps those).
        try:
            return connect_checked(self._dns_host, self.port, self.timeout, self.network,
                                   self.source_address, self.socket_options)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out") from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to connect: {error}") from error


def _pool_classes(network: NetworkSettings) -> dict[str, type]:
    """Connection pools whose connections check their address under `network`."""
    attributes = {"network": network}
    http = type("CheckedHTTPConnection", (_CheckedConnect, HTTPConnection), attributes)
    https = type("CheckedHTTPSConnection", (_CheckedConnect, HTTPSConnection), attributes)
    return {
        "http": type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


_POOLS = {allow: _pool_classes(NetworkSettings(allow)) for allow in (False, True)}


class CheckedAdapter(HTTPAdapter):
    """requests' adapter over pools whose connections check where they connect."""

    def __init__(self, network: NetworkSettings = PUBLIC_ONLY) -> None:
        self.network = network
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS[self.network.allow_private]

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any):
        """Through a proxy the proxy connects, so the name is resolved and checked here first;
        here, not in a Session subclass, so a session another library made is covered too."""
        if requests.utils.select_proxy(request.url, kwargs.get("proxies")) is not None:
            parts = urlsplit(request.url)
            default_port = 443 if parts.scheme == "https" else 80
            checked_addresses(parts.hostname or "", parts.port or default_port, self.network)
        return super().send(request, *args, **kwargs)


def guard(session: requests.Session, network: NetworkSettings = PUBLIC_ONLY) -> None:
    """Make `session` check every address it connects to (also a session another library
    made, such as authlib's OAuth2Session, whose callers pass allow_redirects=False)."""
    for prefix in ("https://", "http://"):
        session.mount(prefix, CheckedAdapter(network))


class TimeoutSession(requests.Session):
    """A requests.Session with a default timeout, no redirects, and checked destinations."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 network: NetworkSettings = PUBLIC_ONLY) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.network = network
        guard(self, network)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):
        """Send the request: the default timeout when the caller gave none, never a redirect."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def build_session(
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, user_agent: str = USER_AGENT,
    network: NetworkSettings = PUBLIC_ONLY,
) -> requests.Session:
    """Build a session with our User-Agent, a default timeout on every request, no redirects,
    and only the destinations `network` allows (public addresses by default)."""
    session = TimeoutSession(timeout, network)
    session.headers["User-Agent"] = user_agent
    return session


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete formats may parse naive
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)
