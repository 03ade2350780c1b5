"""The Standard Webhooks verifier against the published vectors, at the vectors' own time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from service.intake.standard_webhooks import SignatureRefused, verify_standard_webhook
from support import PAYLOADS

VECTORS = json.loads((PAYLOADS / "standard-webhooks" / "test-vectors.json").read_text())
SIGN = VECTORS["sign_vectors"][0]
SIGNED_AT = datetime.fromtimestamp(SIGN["timestamp"], timezone.utc)
OTHER = "whsec_" + "A" * 44


def headers(**changes) -> dict:
    values = {"webhook-id": SIGN["msg_id"], "webhook-timestamp": str(SIGN["timestamp"]),
              "webhook-signature": SIGN["expected_signature_header"]}
    values.update(changes)
    return values


@pytest.mark.parametrize("secret", [SIGN["secret"], SIGN["secret_without_prefix_also_accepted"]])
def test_sign_vector_verifies_with_or_without_the_prefix(secret):
    assert verify_standard_webhook([secret], headers(), SIGN["payload"].encode(), SIGNED_AT) == 0


def test_the_index_of_the_secret_that_signed_is_returned():
    assert verify_standard_webhook([OTHER, SIGN["secret"]], headers(), SIGN["payload"].encode(), SIGNED_AT) == 1


@pytest.mark.parametrize("changed, now, words", [
    (headers(**{"webhook-signature": VECTORS["negative_vectors"][0]["webhook-signature"]}), SIGNED_AT, "matches"),
    (headers(), SIGNED_AT + timedelta(seconds=301), "in the past"),
    (headers(), SIGNED_AT - timedelta(seconds=301), "in the future"),
    (headers(**{"webhook-timestamp": "hello"}), SIGNED_AT, "Unix time"),
    (headers(**{"webhook-signature": " ".join(VECTORS["multi_signature_vector"]["decoy_entries"])}),
     SIGNED_AT, "matches"),
    (headers(**{"webhook-id": ""}), SIGNED_AT, "webhook-id"),
])
def test_refusals_name_the_problem(changed, now, words):
    with pytest.raises(SignatureRefused, match=words):
        verify_standard_webhook([SIGN["secret"]], changed, SIGN["payload"].encode(), now)


def test_a_changed_body_does_not_verify():
    with pytest.raises(SignatureRefused):
        verify_standard_webhook([SIGN["secret"]], headers(), SIGN["payload"].encode() + b" ", SIGNED_AT)


def test_no_secret_configured_is_refused():
    with pytest.raises(SignatureRefused, match="no webhook secret"):
        verify_standard_webhook([], headers(), SIGN["payload"].encode(), SIGNED_AT)
