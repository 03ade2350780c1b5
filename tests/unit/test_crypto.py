"""Keys: derived per use, rotatable; survey-link tokens; encrypted practice secrets."""

from __future__ import annotations

import uuid

import pytest
from itsdangerous import Signer

from service.crypto import ClientVault, FormSigner, KeyRing, LinkSigner, SecretBox

OLD = "Gk2Wq9LxT4vNc7Rm1BsH5pYd8JfZ3aEu6KtQ0oXiV-Lw"
NEW = "Mh7Cz1RtY4bKq8WnP2fL6sDx9JgV3aUe0TiNo5XkE-Qr"
OTHER = "Pa3Xs8LdQ1wMv6NbT9hR2kFz5JcY0gUe7EiWo4KtB-Hn"


def test_link_tokens_round_trip_and_stay_short():
    signer = LinkSigner(KeyRing([NEW]))
    survey_id = str(uuid.uuid4())
    token = signer.token_for(survey_id)
    assert signer.survey_id(token) == survey_id
    assert len(token) <= 60  # keeps the SMS to one segment
    assert survey_id not in token


@pytest.mark.parametrize("forged", ["", "garbage", "a.b", "....", "\u00e9.\u00e9"])
def test_forged_tokens_are_refused(forged):
    assert LinkSigner(KeyRing([NEW])).survey_id(forged) is None


def test_a_token_for_one_secret_fails_under_another():
    token = LinkSigner(KeyRing([NEW])).token_for(str(uuid.uuid4()))
    assert LinkSigner(KeyRing([OTHER])).survey_id(token) is None


def test_a_token_with_another_id_but_the_old_signature_is_refused():
    signer = LinkSigner(KeyRing([NEW]))
    token = signer.token_for(str(uuid.uuid4()))
    other = signer.token_for(str(uuid.uuid4()))
    assert signer.survey_id(other.split(".")[0] + "." + token.split(".")[1]) is None


def test_a_link_signed_with_the_master_key_itself_is_refused():
    # Links are signed with a key derived for that use only, never with the master key.
    survey_id = str(uuid.uuid4())
    honest = LinkSigner(KeyRing([NEW])).token_for(survey_id)
    raw = honest.split(".")[0].encode()
    with_master = Signer(NEW, salt="survey-link").sign(raw).decode()
    assert LinkSigner(KeyRing([NEW])).survey_id(with_master) is None


def test_sealed_documents_open_only_with_the_same_key():
    sealed = SecretBox(KeyRing([NEW])).seal({"auth_token": "very-secret"})
    assert "very-secret" not in sealed
    assert SecretBox(KeyRing([NEW])).open(sealed) == {"auth_token": "very-secret"}
    with pytest.raises(ValueError, match="ALLIANCE_SECRET_KEY"):
        SecretBox(KeyRing([OTHER])).open(sealed)


def test_only_the_issued_spelling_of_a_token_is_accepted():
    signer = LinkSigner(KeyRing([NEW]))
    token = signer.token_for(str(uuid.uuid4()))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = [token[:-1] + c for c in alphabet if c != token[-1]]
    assert [v for v in variants if signer.survey_id(v) is not None] == []


def test_each_use_gets_its_own_key():
    ring = KeyRing([NEW])
    keys = {purpose: ring.derive(purpose)[0]
            for purpose in (b"secret-box", b"survey-link-signing", b"survey-form-signing",
                            b"client-data", b"client-phone-lookup")}
    assert len(set(keys.values())) == 5
    assert NEW.encode() not in keys.values()


def test_after_rotation_old_links_and_documents_still_work_and_new_ones_use_the_new_key():
    survey_id = str(uuid.uuid4())
    old_token = LinkSigner(KeyRing([OLD])).token_for(survey_id)
    old_sealed = SecretBox(KeyRing([OLD])).seal({"token": "abc"})
    rotated = KeyRing([NEW, OLD])
    assert LinkSigner(rotated).survey_id(old_token) == survey_id
    assert SecretBox(rotated).open(old_sealed) == {"token": "abc"}
    new_token = LinkSigner(rotated).token_for(survey_id)
    assert LinkSigner(KeyRing([NEW])).survey_id(new_token) == survey_id
    resealed = SecretBox(rotated).reseal(old_sealed)
    assert SecretBox(KeyRing([NEW])).open(resealed) == {"token": "abc"}


def test_form_tokens_are_bound_to_survey_purpose_and_key():
    forms = FormSigner(KeyRing([NEW]))
    token = forms.token("s1", "answer")
    assert forms.valid("s1", "answer", token)
    assert not forms.valid("s2", "answer", token)
    assert not forms.valid("s1", "consent", token)
    assert not FormSigner(KeyRing([OTHER])).valid("s1", "answer", token)
    assert not forms.valid("s1", "answer", None)
    assert FormSigner(KeyRing([OTHER, NEW])).valid("s1", "answer", token)


def test_client_data_and_practice_secrets_are_sealed_under_different_keys():
    ring = KeyRing([NEW])
    vault, box = ClientVault(ring), SecretBox(ring)
    phone = vault.seal_text("+15551234567")
    assert "5551234567" not in phone and vault.open_text(phone) == "+15551234567"
    assert vault.seal_text("+15551234567") != phone  # a fresh IV each time: equal values hide
    with pytest.raises(ValueError):
        box.open_text(phone)
    with pytest.raises(ValueError, match="stored client data cannot be decrypted"):
        vault.open(box.seal({"auth_token": "x"}))
    assert vault.open_text(None) is None and vault.seal_text(None) is None


def test_the_phone_hash_is_keyed_per_practice_and_follows_rotation():
    old, rotated = ClientVault(KeyRing([OLD])), ClientVault(KeyRing([NEW, OLD]))
    digest = old.phone_digest("northside", "+15551234567")
    assert len(digest) == 64 and "5551234567" not in digest
    assert digest == old.phone_digest("northside", "+15551234567")  # deterministic: searchable
    assert digest != old.phone_digest("eastside", "+15551234567")  # links no two practices
    assert digest != ClientVault(KeyRing([OTHER])).phone_digest("northside", "+15551234567")
    assert rotated.phone_digests("northside", "+15551234567") == [
        rotated.phone_digest("northside", "+15551234567"), digest]  # newest first, then old


def test_an_action_form_token_holds_for_its_session_episode_and_action_only():
    forms = FormSigner(KeyRing([NEW]))
    token = forms.action_token("session-hash", "episode-1", "acknowledge")
    nonce = forms.action_nonce("session-hash", "episode-1", "acknowledge", token)

    assert nonce and token.startswith(nonce + ".")
    assert forms.action_token("session-hash", "episode-1", "acknowledge") != token  # fresh nonce
    for session, episode, action in (("other-session", "episode-1", "acknowledge"),
                                     ("session-hash", "episode-2", "acknowledge"),
                                     ("session-hash", "episode-1", "snooze")):
        assert forms.action_nonce(session, episode, action, token) is None
    forged = nonce[:-1] + ("A" if nonce[-1] != "A" else "B") + token[len(nonce):]
    for bad in (None, "", nonce, forged, token + "x", "é." + token, "x" * 300):
        assert forms.action_nonce("session-hash", "episode-1", "acknowledge", bad) is None
    # Not a survey form's token under another name: its own derived key.
    survey_forms = Signer(KeyRing([NEW]).derive(b"survey-form-signing")[0],
                          salt="smart-action:acknowledge")
    sig = survey_forms.get_signature(f"session-hash\x00episode-1\x00{nonce}").decode()
    assert forms.action_nonce("session-hash", "episode-1", "acknowledge", f"{nonce}.{sig}") is None


def test_an_action_form_token_survives_a_key_rotation():
    token = FormSigner(KeyRing([OLD])).action_token("s", "e", "snooze")
    assert FormSigner(KeyRing([NEW, OLD])).action_nonce("s", "e", "snooze", token)
    assert FormSigner(KeyRing([NEW])).action_nonce("s", "e", "snooze", token) is None
