"""Survey-link tokens and encrypted practice secrets."""

from __future__ import annotations

import uuid

import pytest

from service.crypto import LinkSigner, SecretBox


def test_link_tokens_round_trip_and_stay_short():
    signer = LinkSigner("k" * 48)
    survey_id = str(uuid.uuid4())
    token = signer.token_for(survey_id)
    assert signer.survey_id(token) == survey_id
    assert len(token) <= 60  # keeps the SMS to one segment
    assert survey_id not in token


@pytest.mark.parametrize("forged", ["", "garbage", "a.b", "....", "\u00e9.\u00e9"])
def test_forged_tokens_are_refused(forged):
    assert LinkSigner("k" * 48).survey_id(forged) is None


def test_a_token_for_one_secret_fails_under_another():
    token = LinkSigner("k" * 48).token_for(str(uuid.uuid4()))
    assert LinkSigner("j" * 48).survey_id(token) is None


def test_a_token_with_another_id_but_the_old_signature_is_refused():
    signer = LinkSigner("k" * 48)
    token = signer.token_for(str(uuid.uuid4()))
    other = signer.token_for(str(uuid.uuid4()))
    assert signer.survey_id(other.split(".")[0] + "." + token.split(".")[1]) is None


def test_sealed_documents_open_only_with_the_same_key():
    sealed = SecretBox("k" * 48).seal({"auth_token": "very-secret"})
    assert "very-secret" not in sealed
    assert SecretBox("k" * 48).open(sealed) == {"auth_token": "very-secret"}
    with pytest.raises(ValueError, match="ALLIANCE_SECRET_KEY"):
        SecretBox("j" * 48).open(sealed)


def test_only_the_issued_spelling_of_a_token_is_accepted():
    signer = LinkSigner("k" * 48)
    token = signer.token_for(str(uuid.uuid4()))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = [token[:-1] + c for c in alphabet if c != token[-1]]
    assert [v for v in variants if signer.survey_id(v) is not None] == []
