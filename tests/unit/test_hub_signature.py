"""X-Hub-Signature (WebSub) verification against athenahealth's published test vectors."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from service.intake.hub_signature import verify_hub_signature
from support import PAYLOADS

VENDORS = PAYLOADS / "vendors"
ATHENA = json.loads((VENDORS / "athenahealth-x-hub-signature-vectors.json").read_text())
SECRET = ATHENA["secret"]
VECTORS = [(v["body_file"], v["X-Hub-Signature"]) for v in ATHENA["vectors"]]
BODY, SIGNATURE = (VENDORS / VECTORS[0][0]).read_bytes(), VECTORS[0][1]


@pytest.mark.parametrize(("body_file", "header"), VECTORS)
def test_athena_published_vectors_verify(body_file, header):
    assert verify_hub_signature(SECRET, (VENDORS / body_file).read_bytes(), header)


@pytest.mark.parametrize(("body_file", "header"), VECTORS)
def test_athena_vectors_fail_with_a_tampered_body_or_another_secret(body_file, header):
    body = (VENDORS / body_file).read_bytes()
    assert not verify_hub_signature(SECRET, body.replace(b'"1"', b'"2"', 1), header)
    assert not verify_hub_signature(SECRET, body.rstrip(), header)  # the trailing bytes are signed too
    assert not verify_hub_signature(SECRET + "x", body, header)


def _signature(method: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), BODY, getattr(hashlib, method)).hexdigest()


@pytest.mark.parametrize(
    ("secret", "header", "valid"),
    [
        (SECRET, SIGNATURE.upper().replace("SHA256=", "sha256="), True),  # hex case does not matter
        (SECRET, " SHA256=" + SIGNATURE.split("=", 1)[1] + " ", True),
        (SECRET, None, False),
        (SECRET, "", False),
        (SECRET, "sha256=", False),
        (SECRET, SIGNATURE.split("=", 1)[1], False),  # no method prefix
        (SECRET, "sha1=" + _signature("sha1"), False),  # athena signs sha256 only
        (SECRET, "sha512=" + _signature("sha512"), False),
        (SECRET, "sha256=" + "é" * 64, False),
        ("", "sha256=" + _signature("sha256", ""), False),  # an empty secret authenticates nothing
    ],
)
def test_header_forms(secret, header, valid):
    assert verify_hub_signature(secret, BODY, header) is valid


def test_secret_is_keyed_by_its_utf8_bytes():
    secret = "clé-secrète"
    header = "sha256=" + hmac.new(secret.encode("utf-8"), BODY, hashlib.sha256).hexdigest()
    assert verify_hub_signature(secret, BODY, header)
