"""The example JWT of CDS Hooks 2.0.1 "Trusting CDS Clients", verbatim, through our verifier.

Its `aud` (https://cds.example.org/cds-services/some-service) is not a URL this service can be
called at (ours are {ALLIANCE_PUBLIC_URL}/cds/{practice}/cds-services/…), so it is checked here,
at the verifier, with the clock frozen inside its lifetime (it expired in 2015) and the spec's
key set served for its `jku` by a fake of our key-set port. Over HTTP, the same published key
signs fresh tokens (tests/security/test_cds_token_attacks.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cds_support import spec_key_set

from service.clinician.cds_auth import TokenRefused, verify_cds_token
from service.clinician.jwks import KeySets, KeySetUnavailable
from support import PAYLOADS

EXAMPLE = (PAYLOADS / "cds-hooks" / "spec-example-jwt.txt").read_text().strip()
JKU = "https://fhir-ehr.example.com/jwk_uri"
CLIENT = {"iss": "https://fhir-ehr.example.com/", "jwks_url": JKU}
AUDIENCE = "https://cds.example.org/cds-services/some-service"
IN_ITS_LIFETIME = datetime(2014, 6, 1, tzinfo=timezone.utc)


class FakeKeySetSource:
    def __init__(self, sets: dict):
        self.sets, self.asked = sets, []

    def __call__(self, url: str) -> dict:
        self.asked.append(url)
        if url not in self.sets:
            raise KeySetUnavailable("no such key set")
        return self.sets[url]


def verify(now=IN_ITS_LIFETIME, audience=AUDIENCE, clients=(CLIENT,), source=None):
    source = source or FakeKeySetSource({JKU: spec_key_set()})
    return verify_cds_token(EXAMPLE, clients=list(clients), audience=audience, now=now,
                            key_sets=KeySets(source, lambda: now))


def test_the_spec_example_verifies_with_the_published_key_inside_its_lifetime():
    token = verify()
    assert token.iss == "https://fhir-ehr.example.com/"
    assert token.jti == "ee22b021-e1b7-4611-ba5b-8eec6a33ac1e"
    assert token.expires_at == datetime.fromtimestamp(1422568860, timezone.utc)
    assert token.claims["tenant"] == "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"


def refusal(**options) -> str:
    with pytest.raises(TokenRefused) as refused:
        verify(**options)
    return refused.value.check


def test_today_the_spec_example_has_expired():
    assert refusal(now=datetime(2026, 11, 26, tzinfo=timezone.utc)) == "exp"


def test_before_it_was_issued_the_spec_example_is_refused():
    assert refusal(now=datetime(2011, 7, 1, tzinfo=timezone.utc)) == "iat"


def test_the_spec_example_is_refused_for_another_url():
    assert refusal(audience="https://cds.example.org/cds-services/other-service") == "aud"


def test_the_spec_example_is_refused_when_its_jku_is_not_the_registered_key_set():
    other = {"iss": CLIENT["iss"], "jwks_url": "https://fhir-ehr.example.com/other-jwks"}
    assert refusal(clients=[other]) == "jku"
    inline = {"iss": CLIENT["iss"], "jwks": spec_key_set()}
    assert refusal(clients=[inline]) == "jku"


def test_the_spec_example_is_refused_by_a_practice_that_does_not_list_its_issuer():
    assert refusal(clients=[{"iss": "https://fhir-ehr.example.com", "jwks_url": JKU}]) == "iss"


def test_the_spec_example_is_refused_when_the_key_set_cannot_be_had():
    assert refusal(source=FakeKeySetSource({})) == "jwks"


def test_the_spec_example_is_refused_with_one_changed_byte():
    header, payload, signature = EXAMPLE.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(TokenRefused) as refused:
        verify_cds_token(f"{header}.{payload}.{flipped}", clients=[CLIENT], audience=AUDIENCE,
                         now=IN_ITS_LIFETIME,
                         key_sets=KeySets(FakeKeySetSource({JKU: spec_key_set()}),
                                          lambda: IN_ITS_LIFETIME))
    assert refused.value.check == "signature"
