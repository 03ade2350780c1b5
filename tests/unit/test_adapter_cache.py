"""Adapters are built once per thread and practice settings, not once per job: a SMART
backend EHR is asked for one access token, not one per job, and connections are reused."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

from pytest_httpserver import HTTPServer

from integrations.settings import EhrSettings, NetworkSettings, SmsSettings
from service.bootstrap import MAX_CACHED_ADAPTERS, _real_channels, _real_ehr, cached_adapter
from support import PAYLOADS, TEST_NETWORK

_real_channel = _real_channels(SimpleNamespace(demo_allowed=False))

SMART = PAYLOADS / "smart-backend"


def private_jwk() -> dict:
    keys = json.loads((SMART / "RS384.private.json").read_text(encoding="utf-8"))["keys"]
    (key,) = [k for k in keys if "d" in k]
    return key


def test_the_same_settings_give_the_same_adapter_in_one_thread():
    config = {"type": "fhir-r4", "base_url": "https://ehr.test/fhir", "auth": {"type": "none"}}
    ehr = EhrSettings.from_document
    assert _real_ehr(ehr(config)) is _real_ehr(ehr(dict(config)))
    assert _real_ehr(ehr(config)) is not _real_ehr(ehr({**config, "base_url": "https://other.test/fhir"}))


def test_changed_secrets_give_a_new_adapter():
    sms = SmsSettings(account_sid="AC1", auth_token="old", sender="+15550001111")
    first = _real_channel("sms", sms)
    assert _real_channel("sms", SmsSettings("AC1", "rotated", "+15550001111")) is not first
    assert _real_channel("sms", sms) is first


def test_each_thread_has_its_own_adapters():
    built = []
    cached_adapter("probe", {"n": 1}, lambda: built.append("main") or object())
    other = threading.Thread(target=lambda: cached_adapter("probe", {"n": 1}, lambda: built.append("other") or object()))
    other.start()
    other.join()
    cached_adapter("probe", {"n": 1}, lambda: built.append("again") or object())
    assert built == ["main", "other"]


def test_the_cache_stays_bounded():
    built = []
    for n in range(MAX_CACHED_ADAPTERS + 5):
        cached_adapter("bounded", {"n": n}, lambda: built.append(1) or object())
    from service.bootstrap import _adapters

    assert len(_adapters.cache) <= MAX_CACHED_ADAPTERS


def test_a_smart_backend_ehr_is_asked_for_one_token_across_jobs(httpserver: HTTPServer):
    token = {"access_token": "tok-1", "token_type": "bearer", "expires_in": 300, "scope": "system/Flag.r"}
    httpserver.expect_request("/token", method="POST").respond_with_json(token)
    httpserver.expect_request("/fhir/Flag/f1", method="GET").respond_with_json(
        {"resourceType": "Flag", "id": "f1", "meta": {"versionId": "1"}})
    config = {"type": "fhir-r4", "base_url": httpserver.url_for("/fhir"),
              "auth": {"type": "smart-backend", "token_url": httpserver.url_for("/token"),
                       "client_id": "alliance", "private_key_jwk": private_jwk(),
                       "scope": "system/Flag.r"}}
    for _job in range(3):  # what three write-back jobs in one worker thread do
        ehr = EhrSettings.from_document(config, NetworkSettings.from_document(TEST_NETWORK))
        assert _real_ehr(ehr).read("Flag", "f1")["id"] == "f1"
    token_requests = [request for request, _ in httpserver.log if request.path == "/token"]
    assert len(token_requests) == 1
