"""The CDS clients' public keys: JWK Sets fetched from the practice's `jwks_url` (or given
inline), cached per process with a bounded lifetime.

The URL decides which keys are trusted, so the fetch follows no redirect; it is bounded in time
and size. A fresh set is used for FRESH; after that it is fetched again. A token naming a `kid`
the cached set lacks (the EHR rotated its keys) causes one early refetch, at most once per
RETRY per URL, so a stream of bogus `kid`s cannot make us hammer the EHR. When a refetch fails,
the last good set stays in use until it is STALE old, then every token of that client is refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests

from integrations.http import USER_AGENT, build_session
from integrations.network import DestinationRefused
from integrations.settings import PUBLIC_ONLY, NetworkSettings

FRESH = timedelta(minutes=5)
STALE = timedelta(hours=1)
RETRY = timedelta(seconds=30)
MAX_BYTES = 64 * 1024
TIMEOUT_SECONDS = 3.0
HEADERS = {"Accept": "application/json", "User-Agent": USER_AGENT}


class KeySetUnavailable(Exception):
    """The client's key set could not be had; the message says why (no secrets in it)."""


class UnknownKey(Exception):
    """The key set has no key with that `kid`."""


def fetch_key_set(url: str, timeout: float = TIMEOUT_SECONDS,
                  network: NetworkSettings = PUBLIC_ONLY) -> dict:
    """GET a JWK Set: no redirects, at most `timeout` seconds in all, at most MAX_BYTES, only
    from an address the practice's network settings allow (integrations/network.py)."""
    deadline = time.monotonic() + timeout
    try:
        with build_session(timeout, network=network) as session, \
                session.get(url, allow_redirects=False, stream=True, headers=HEADERS) as answer:
            if 300 <= answer.status_code < 400:
                raise KeySetUnavailable(
                    f"the key set URL answered {answer.status_code}: redirects are not followed")
            if answer.status_code != 200:
                raise KeySetUnavailable(f"the key set URL answered {answer.status_code}")
            body = _read_bounded(answer, deadline)
    except requests.RequestException as error:
        problem = f"the key set could not be fetched ({type(error).__name__})"
        raise KeySetUnavailable(problem) from None
    except DestinationRefused as error:
        raise KeySetUnavailable(f"the key set URL was not called: {error}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise KeySetUnavailable("the key set URL did not answer JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetUnavailable('the key set URL did not answer a JWK Set {"keys": [...]}')
    return document


def _read_bounded(answer: requests.Response, deadline: float) -> bytes:
    body = b""
    for chunk in answer.iter_content(8192):
        body += chunk
        if len(body) > MAX_BYTES:
            raise KeySetUnavailable(f"the key set is larger than {MAX_BYTES // 1024} KiB")
        if time.monotonic() > deadline:
            raise KeySetUnavailable("the key set could not be fetched (Timeout)")
    return body


def keys_by_id(key_set: Mapping) -> dict[str, dict]:
    """kid → JWK; a kid listed twice is ambiguous and left out (so it is refused as unknown)."""
    found: dict[str, dict] = {}
    twice: set[str] = set()
    for key in key_set.get("keys") or []:
        kid = key.get("kid") if isinstance(key, dict) else None
        if isinstance(kid, str) and kid:
            if kid in found:
                twice.add(kid)
            found[kid] = key
    return {kid: key for kid, key in found.items() if kid not in twice}


@dataclass
class _Cached:
    keys: dict[str, dict] | None = None
    fetched_at: datetime | None = None      # last successful fetch
    attempted_at: datetime | None = None    # last fetch, successful or not


class KeySets:
    """The JWK of a client's `kid`, from its inline set or its fetched and cached `jwks_url`."""

    def __init__(self, fetch: Callable[[str], dict], clock: Callable[[], datetime]):
        self._fetch, self._clock = fetch, clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def key(self, client: Mapping, kid: str) -> dict:
        """The client's key `kid`; UnknownKey or KeySetUnavailable otherwise."""
        if client.get("jwks") is not None:
            found = keys_by_id(client["jwks"]).get(kid)
            if found is None:
                raise UnknownKey(kid)
            return found
        url = client["jwks_url"]
        with self._lock_for(url):
            keys = self._current(url)
            if kid not in keys and self._may_refetch(url):
                keys = self._refetch(url)
        if kid not in keys:
            raise UnknownKey(kid)
        return keys[kid]

    def _lock_for(self, url: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def _current(self, url: str) -> dict[str, dict]:
        cached = self._cache.setdefault(url, _Cached())
        now = self._clock()
        if cached.keys is not None and now - cached.fetched_at < FRESH:
            return cached.keys
        if cached.attempted_at is not None and now - cached.attempted_at < RETRY:
            return self._last_good(cached, now, "the key set could not be fetched a moment ago")
        return self._refetch(url)

    def _may_refetch(self, url: str) -> bool:
        attempted = self._cache[url].attempted_at
        return attempted is None or self._clock() - attempted >= RETRY

    def _refetch(self, url: str) -> dict[str, dict]:
        cached = self._cache[url]
        now = cached.attempted_at = self._clock()
        try:
            cached.keys = keys_by_id(self._fetch(url))
        except KeySetUnavailable as error:
            return self._last_good(cached, now, str(error))
        cached.fetched_at = now
        return cached.keys

    @staticmethod
    def _last_good(cached: _Cached, now: datetime, problem: str) -> dict[str, dict]:
        if cached.keys is not None and now - cached.fetched_at < STALE:
            return cached.keys
        raise KeySetUnavailable(problem)
