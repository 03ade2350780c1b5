"""Healthie's webhook signature (service/intake/healthie_signature.py) on vectors built from the
signing steps of Healthie's own JavaScript sample (tests/fixtures/vendors/
healthie-signature-vectors.json, provenance in tests/fixtures/README.md), and every way a
request can fail to be Healthie's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from service.intake.healthie_signature import (
    check_headers_and_digest,
    digest_components,
    signed_string,
    verify_signature,
)
from service.intake.standard_webhooks import SignatureRefused
from support import PAYLOADS

VECTORS = json.loads((PAYLOADS / "vendors" / "healthie-signature-vectors.json").read_text())
SECRET = VECTORS["secret"]


def headers_of(vector: dict) -> dict:
    return {
        "Content-Digest": vector["content_digest"],
        "Signature": vector["signature"],
        "Signature-Input": vector["signature_input"],
        "Content-Type": "application/json",
    }


def verify(
    vector: dict,
    headers: dict | None = None,
    body: bytes | None = None,
    secret: str = SECRET,
    path: str | None = None,
    query: str | None = None,
) -> None:
    verify_signature(
        secret,
        headers or headers_of(vector),
        method=vector["method"],
        path=path or vector["path"],
        query=vector["query"] if query is None else query,
        body=vector["body"].encode() if body is None else body,
    )


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_every_vector_verifies(vector):
    verify(vector)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_the_signed_string_is_the_documented_one(vector):
    body = vector["body"].encode()
    candidates = [
        signed_string(vector["method"], vector["path"], vector["query"], part, len(body))
        for part in digest_components(vector["content_digest"])
    ]
    assert vector["signed_string"] in candidates


def test_a_changed_body_fails_on_the_digest_before_the_signature():
    vector = VECTORS["vectors"][1]
    body = vector["body"].replace("67890", "67891").encode()
    with pytest.raises(SignatureRefused, match="Content-Digest does not match the body"):
        verify(vector, body=body)


def test_a_new_digest_for_a_changed_body_still_fails_on_the_signature():
    vector = VECTORS["vectors"][1]
    body = vector["body"].replace("67890", "67891").encode()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    headers = {**headers_of(vector), "Content-Digest": f"sha-256=:{digest}:"}
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify(vector, headers=headers, body=body)


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "whsec_another-practice-secret"},
        {"path": "/webhooks/southside/healthie"},
        {"query": "practice=northside"},
    ],
)
def test_another_secret_path_or_query_fails(change):
    with pytest.raises(SignatureRefused, match="does not verify"):
        verify(VECTORS["vectors"][0], **change)


@pytest.mark.parametrize("header", ["Content-Digest", "Signature-Input", "Signature"])
def test_each_missing_header_is_named(header):
    vector = VECTORS["vectors"][0]
    headers = {k: v for k, v in headers_of(vector).items() if k != header}
    with pytest.raises(SignatureRefused, match=f"missing header\\(s\\): {header}"):
        verify(vector, headers=headers)


@pytest.mark.parametrize(
    "digest, needle",
    [
        ("sha-512=:AAAA:", "no sha-256 member"),
        ("sha-256=:not base64!:", "neither base64 nor hex"),
        ("sha-256=:AAAA:", "neither base64 nor hex"),
        ("garbage", "no sha-256 member"),
    ],
)
def test_malformed_digests_are_named(digest, needle):
    vector = VECTORS["vectors"][0]
    with pytest.raises(SignatureRefused, match=needle):
        check_headers_and_digest(
            {**headers_of(vector), "Content-Digest": digest}, vector["body"].encode()
        )


def test_a_signature_in_rfc_9421_byte_sequence_form_and_among_others_verifies():
    vector = VECTORS["vectors"][0]
    raw = bytes.fromhex(vector["signature"].split("=", 1)[1])
    as_bytes = (
        f"sig0=:{base64.b64encode(b'x' * 32).decode()}:, sig1=:{base64.b64encode(raw).decode()}:"
    )
    verify(vector, headers={**headers_of(vector), "Signature": as_bytes})


def test_a_signature_that_is_not_hex_or_base64_is_named():
    vector = VECTORS["vectors"][0]
    with pytest.raises(SignatureRefused, match="no entry of the form"):
        verify(vector, headers={**headers_of(vector), "Signature": "sig1=%%%"})


def test_the_key_is_the_whole_secret_as_text():
    # The sample keys the HMAC with TextEncoder(secret): 'whsec_' is part of the key.
    vector = VECTORS["vectors"][0]
    expected = hmac.new(
        SECRET.encode(), vector["signed_string"].encode(), hashlib.sha256
    ).hexdigest()
    assert vector["signature"] == f"sig1={expected}"
    with pytest.raises(SignatureRefused):
        verify(vector, secret=SECRET.removeprefix("whsec_"))
