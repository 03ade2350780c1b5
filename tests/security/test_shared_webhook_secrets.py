"""Finding 6 of the security review: two practices sharing a webhook secret both accepted one
signed delivery (a Standard Webhooks signature, a hub signature or a bearer token does not name
the practice). `alliance practice apply` now refuses an inbound secret that another practice
uses, naming the field and the other practice (whoever applies practices can list them all)."""

from __future__ import annotations

import base64
import json

import pytest
from click.testing import CliRunner

from service.cli import main
from support import DEMO_SECRET, TEST_SECRET_KEY, own_inbound_secrets, practice_document


@pytest.fixture
def apply(tmp_path):
    env = {"ALLIANCE_DATABASE_URL": f"sqlite:///{tmp_path / 'alliance.db'}",
           "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY, "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
           "ALLIANCE_LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0

    def run(document: dict):
        return runner.invoke(main, ["practice", "apply", "-"], env=env,
                             input=json.dumps(document))

    assert run(practice_document(hl7v2={"channel_token": "hl7-token-of-northside-0001"}))\
        .exit_code == 0
    return run


def southside(**changes) -> dict:
    return practice_document(id="southside", **{**own_inbound_secrets("southside"), **changes})


def test_a_practice_of_its_own_secrets_is_applied(apply):
    result = apply(southside())
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("changes", "field"), [
    ({"webhook_secrets": [DEMO_SECRET]}, "webhook_secrets[0]"),
    # The same key without the whsec_ prefix's spelling differences is the same key.
    ({"webhook_secrets": ["whsec_" + base64.b64encode(
        base64.b64decode(DEMO_SECRET[6:])).decode()]}, "webhook_secrets[0]"),
    ({"fhir_notifications": {"channel_token": "channel-token-0123456789"}},
     "fhir_notifications.channel_token"),
    ({"fhir_notifications": {"hub_secret": "hub-secret-xyz"}}, "fhir_notifications.hub_secret"),
    # Across kinds: a hub secret that is another practice's HL7 v2 token.
    ({"fhir_notifications": {"hub_secret": "hl7-token-of-northside-0001"}},
     "fhir_notifications.hub_secret"),
])
def test_a_secret_another_practice_uses_is_refused_naming_both(apply, changes, field):
    result = apply(southside(**changes))

    assert result.exit_code == 2
    assert f"{field}: this secret already serves practice 'northside'" in result.stderr
    assert "southside" not in apply(southside()).stderr  # nothing was stored before


def test_reapplying_a_practice_with_its_own_secrets_is_not_a_clash(apply):
    assert apply(practice_document(hl7v2={"channel_token": "hl7-token-of-northside-0001"}))\
        .exit_code == 0
