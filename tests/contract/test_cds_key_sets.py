"""The CDS clients' JWK Sets, fetched from an EHR played by pytest-httpserver: cached with a
bounded lifetime, refetched once (rate-limited) for a rotated key, never through a redirect, and
given up quickly on a slow server — each failure a 401 `jwks` for the token, never a 500."""

from __future__ import annotations

import json
import threading
import time
from functools import partial

import pytest
from cds_support import ISS, Ehr, client_key, save_practice
from werkzeug import Response

from service.bootstrap import bootstrap
from service.clinician.cds_client import public_jwk
from service.clinician.jwks import FRESH, MAX_BYTES, RETRY, STALE, fetch_key_set
from support import loopback_network

TIMEOUT = 0.5


class KeySetServer:
    """Serves whatever key set (or failure) the test sets, and counts the fetches."""

    def __init__(self, httpserver):
        self.httpserver, self.fetches = httpserver, 0
        self.answer = lambda: Response(json.dumps({"keys": [public_jwk(client_key("ES384"))]}),
                                       content_type="application/json")
        httpserver.expect_request("/jwks").respond_with_handler(self._serve)

    def _serve(self, _request):
        self.fetches += 1
        return self.answer()

    def serve_keys(self, *private_keys):
        body = json.dumps({"keys": [public_jwk(key) for key in private_keys]})
        self.answer = lambda: Response(body, content_type="application/json")

    @property
    def url(self) -> str:
        return self.httpserver.url_for("/jwks")


@pytest.fixture
def key_server(httpserver):
    return KeySetServer(httpserver)


@pytest.fixture
def ehr(database, settings_for, clock, key_server):
    url, engine = database
    services = bootstrap(settings_for(url), engine=engine, clock=clock,
                         jwks_fetch=partial(fetch_key_set, timeout=TIMEOUT,
                                            network=loopback_network()))
    save_practice(services, [{"iss": ISS, "jwks_url": key_server.url}])
    return Ehr(services)


def status(answer) -> int | str:
    return 200 if answer.status_code == 200 else answer.get_json()["check"]


def test_the_key_set_is_fetched_once_and_cached(ehr, key_server, clock):
    assert [status(ehr.hook("pat-1")) for _ in range(3)] == [200, 200, 200]
    assert key_server.fetches == 1
    clock.advance(seconds=FRESH.total_seconds() - 1)
    assert status(ehr.hook("pat-1")) == 200 and key_server.fetches == 1


def test_after_its_lifetime_the_key_set_is_fetched_again(ehr, key_server, clock):
    assert status(ehr.hook("pat-1")) == 200
    key_server.serve_keys(client_key("RS384"))  # the EHR retired the ES384 key
    clock.advance(seconds=FRESH.total_seconds() + 1)
    assert status(ehr.hook("pat-1")) == "kid"
    assert key_server.fetches == 2


def test_a_rotated_key_is_found_by_one_refetch_and_unknown_kids_cannot_hammer_the_ehr(
        ehr, key_server, clock):
    assert status(ehr.hook("pat-1")) == 200
    key_server.serve_keys(client_key("ES384"), client_key("RS384"))
    clock.advance(seconds=RETRY.total_seconds())
    rotated = Ehr(ehr.services, key=client_key("RS384"))
    assert status(rotated.hook("pat-1")) == 200
    assert key_server.fetches == 2
    stranger = Ehr(ehr.services, key=client_key("ES384", kid="never-published"))
    assert [status(stranger.hook("pat-1")) for _ in range(5)] == ["kid"] * 5
    assert key_server.fetches == 2  # the refetch for the rotation was moments ago
    clock.advance(seconds=RETRY.total_seconds())
    assert status(stranger.hook("pat-1")) == "kid"
    assert key_server.fetches == 3


def test_a_redirect_is_not_followed(ehr, key_server, httpserver):
    key_server.answer = lambda: Response("", status=302,
                                         headers={"Location": httpserver.url_for("/elsewhere")})
    httpserver.expect_request("/elsewhere").respond_with_json(
        {"keys": [public_jwk(client_key("ES384"))]})
    answer = ehr.hook("pat-1")
    assert status(answer) == "jwks" and "redirects are not followed" in answer.get_json()["detail"]
    assert [request.path for request, _ in httpserver.log] == ["/jwks"]


def test_a_slow_key_set_server_is_given_up_quickly_and_not_asked_again_at_once(
        ehr, key_server):
    released = threading.Event()  # so the (single-threaded) server is free for the next test

    def slow():
        released.wait(10)
        return Response(json.dumps({"keys": []}), content_type="application/json")

    key_server.answer = slow
    try:
        started = time.monotonic()
        assert status(ehr.hook("pat-1")) == "jwks"
        assert time.monotonic() - started < 5  # the server would have taken 10 s
        started = time.monotonic()
        assert status(ehr.hook("pat-1")) == "jwks"
        assert time.monotonic() - started < TIMEOUT and key_server.fetches == 1
    finally:
        released.set()


@pytest.mark.parametrize("answer", [
    lambda: Response("down", status=500),
    lambda: Response("<html>not json</html>", content_type="text/html"),
    lambda: Response(json.dumps([{"kid": "x"}]), content_type="application/json"),
    lambda: Response(json.dumps({"keys": [], "padding": "x" * MAX_BYTES}),
                     content_type="application/json"),
], ids=["server-error", "not-json", "not-a-key-set", "too-large"])
def test_a_broken_key_set_refuses_the_token(ehr, key_server, answer):
    key_server.answer = answer
    refused = ehr.hook("pat-1")
    assert refused.status_code == 401 and status(refused) == "jwks"


def test_a_last_good_key_set_outlives_a_failing_server_for_a_bounded_time(
        ehr, key_server, clock):
    assert status(ehr.hook("pat-1")) == 200
    key_server.answer = lambda: Response("down", status=503)
    clock.advance(seconds=FRESH.total_seconds() + 1)
    assert status(ehr.hook("pat-1")) == 200
    assert key_server.fetches == 2
    clock.advance(seconds=STALE.total_seconds())
    assert status(ehr.hook("pat-1")) == "jwks"


def test_fetch_key_set_reads_a_real_set(key_server):
    assert fetch_key_set(key_server.url, network=loopback_network())["keys"][0]["kid"] == "test-es384"


def test_fetch_key_set_never_waits_long_on_a_server_that_is_not_there():
    from service.clinician.jwks import KeySetUnavailable

    started = time.monotonic()
    with pytest.raises(KeySetUnavailable):
        fetch_key_set("http://127.0.0.1:9/jwks", timeout=TIMEOUT, network=loopback_network())
    assert time.monotonic() - started < TIMEOUT * 2
