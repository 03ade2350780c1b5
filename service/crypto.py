"""Keys, encryption of stored secrets, and signing of survey links and forms.

Every use gets its own key, derived with HKDF from the master keys (ALLIANCE_SECRET_KEYS,
newest first), so a signing key can never decrypt and a form token can never open a link.
The newest master key signs and encrypts; older ones still verify and decrypt, which is what
lets a key be rotated: `alliance keys rotate` re-encrypts what is stored under the newest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, Signer

# HKDF "info" of each use. Changing one invalidates what was made with it.
ENCRYPTION = b"secret-box"  # practice documents and other service secrets
CLIENT_DATA = b"client-data"  # clients' phone numbers, e-mail addresses, answers, free text
PHONE_LOOKUP = b"client-phone-lookup"  # the keyed hash that finds a client by phone number
LINK_SIGNING = b"survey-link-signing"
FORM_SIGNING = b"survey-form-signing"
ACTION_FORM_SIGNING = b"smart-action-form-signing"  # the SMART view's alert action forms


class KeyRing:
    """The master keys (newest first) and the per-purpose keys derived from them."""

    def __init__(self, master_keys: Sequence[str]):
        if not master_keys:
            raise ValueError("at least one key is needed")
        self._masters = tuple(master_keys)

    def derive(self, purpose: bytes) -> list[bytes]:
        """32-byte keys for one purpose, one per master key, newest first."""
        return [_hkdf(master, purpose) for master in self._masters]

    def __len__(self) -> int:
        return len(self._masters)


def _hkdf(master: str, purpose: bytes) -> bytes:
    # The salt is fixed: it separates this application's keys from any other use of the master.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"alliance-feedback",
                info=purpose).derive(master.encode())


class SecretBox:
    """Encrypts values at rest: Fernet (AES-128-CBC and HMAC-SHA256) under the keys derived for
    one purpose, the newest key first. `alliance keys rotate` re-encrypts with `reseal`."""

    def __init__(self, keys: KeyRing, purpose: bytes = ENCRYPTION, what: str = "stored secrets"):
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(key))
                                    for key in keys.derive(purpose)])
        self._what = what

    def seal(self, document: dict) -> str:
        return self._fernet.encrypt(json.dumps(document).encode()).decode()

    def open(self, sealed: str) -> dict:
        return json.loads(self._decrypt(sealed))

    def seal_text(self, text: str | None) -> str | None:
        return None if text is None else self._fernet.encrypt(text.encode()).decode()

    def open_text(self, sealed: str | None) -> str | None:
        return None if sealed is None else self._decrypt(sealed).decode()

    def reseal(self, sealed: str) -> str:
        """The same value encrypted under the newest key (for `alliance keys rotate`)."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError("a stored value cannot be decrypted with any configured key") from None

    def _decrypt(self, sealed: str) -> bytes:
        try:
            return self._fernet.decrypt(sealed.encode())
        except InvalidToken:
            raise ValueError(f"{self._what} cannot be decrypted: the key that sealed them is not "
                             "in ALLIANCE_SECRET_KEYS (was ALLIANCE_SECRET_KEY changed?)") from None


class KeyedHash:
    """HMAC-SHA256 under a derived key: finds a row by a value that is stored only encrypted
    (a blind index). Without the key the hash says nothing; with it, a phone number can be
    tested, so the hash is as confidential as the value and is rotated with the keys."""

    def __init__(self, keys: KeyRing, purpose: bytes = PHONE_LOOKUP):
        self._keys = keys.derive(purpose)

    def digest(self, *parts: str) -> str:
        """The hash under the newest key (what is stored)."""
        return self._hmac(self._keys[0], parts)

    def digests(self, *parts: str) -> list[str]:
        """The hash under every configured key, newest first (what a lookup tries)."""
        return [self._hmac(key, parts) for key in self._keys]

    @staticmethod
    def _hmac(key: bytes, parts: tuple[str, ...]) -> str:
        # NUL-separated: no practice id, phone number or e-mail address holds one.
        return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


class ClientVault(SecretBox):
    """Clients' data at rest: phone numbers, e-mail addresses, answers and other free text,
    sealed under their own derived key (neither this nor the practice box opens what the other
    sealed), and the keyed hash of phone numbers that lets an SMS STOP or START find its client.
    """

    def __init__(self, keys: KeyRing):
        super().__init__(keys, CLIENT_DATA, "stored client data")
        self._phones = KeyedHash(keys, PHONE_LOOKUP)

    def phone_digest(self, practice_id: str, e164: str) -> str:
        """The hash stored beside a client's phone; per practice, so it links no two practices."""
        return self._phones.digest(practice_id, e164)

    def phone_digests(self, practice_id: str, e164: str) -> list[str]:
        """The hash under every configured key: a lookup finds rows not yet re-hashed."""
        return self._phones.digests(practice_id, e164)


def _signer(keys: KeyRing, purpose: bytes, salt: str) -> Signer:
    # itsdangerous takes the keys oldest first and signs with the last one. Its HMAC-SHA1 tag
    # (still a sound MAC) keeps a link short enough for one SMS segment.
    return Signer(list(reversed(keys.derive(purpose))), salt=salt)


class LinkSigner:
    """Turns a survey id (a random UUID) into a short, unguessable link token and back.

    The token is the UUID's 16 bytes in base64url plus an HMAC signature, about 50
    characters, so an SMS with the link still fits in one segment; forged tokens fail.
    """

    def __init__(self, keys: KeyRing):
        self._signer = _signer(keys, LINK_SIGNING, "survey-link")

    def token_for(self, survey_id: str) -> str:
        raw = base64.urlsafe_b64encode(uuid.UUID(survey_id).bytes).rstrip(b"=")
        return self._signer.sign(raw).decode()

    def survey_id(self, token: str) -> str | None:
        try:
            raw = self._signer.unsign(token.encode())
            survey_id = str(uuid.UUID(bytes=base64.urlsafe_b64decode(raw + b"==")))
        except (BadSignature, ValueError, UnicodeEncodeError):
            return None
        # base64 ignores the spare bits of a last character: accept only a spelling we issue.
        return survey_id if token in self._spellings(survey_id) else None

    def _spellings(self, survey_id: str) -> set[str]:
        raw = base64.urlsafe_b64encode(uuid.UUID(survey_id).bytes).rstrip(b"=")
        signers = [Signer(key, salt="survey-link") for key in self._signer.secret_keys]
        return {signer.sign(raw).decode() for signer in signers}


class FormSigner:
    """Hidden CSRF tokens: a survey page's forms (an HMAC of the survey id and purpose), and the
    SMART view's single-use alert action forms (under their own derived key)."""

    def __init__(self, keys: KeyRing):
        self._keys = keys

    def token(self, survey_id: str, purpose: str) -> str:
        return _signer(self._keys, FORM_SIGNING, f"survey-form:{purpose}").get_signature(
            survey_id).decode()

    def valid(self, survey_id: str, purpose: str, given: str | None) -> bool:
        """Constant-time check of a posted token against every configured key."""
        signer = _signer(self._keys, FORM_SIGNING, f"survey-form:{purpose}")
        return bool(given) and signer.verify_signature(survey_id, given)

    def action_token(self, session_key: str, episode_id: str, action: str) -> str:
        """A single-use token for one alert action form of the SMART view: a random nonce,
        signed together with the SMART session (its stored key), the episode and the action.
        The nonce becomes the stored action's dedupe key, so a form works once."""
        nonce = secrets.token_urlsafe(18)
        signature = self._action_signer(action).get_signature(
            _action_message(session_key, episode_id, nonce)).decode()
        return f"{nonce}.{signature}"

    def action_nonce(self, session_key: str, episode_id: str, action: str,
                     given: str | None) -> str | None:
        """The nonce of a posted action token, if it was made for this session, episode and
        action (constant-time, every configured key); else None."""
        nonce, _, signature = (given or "").partition(".")
        if not nonce or not signature or len(given) > 200:
            return None
        try:
            valid = self._action_signer(action).verify_signature(
                _action_message(session_key, episode_id, nonce), signature.encode())
        except UnicodeEncodeError:
            return None
        return nonce if valid else None

    def _action_signer(self, action: str) -> Signer:
        return _signer(self._keys, ACTION_FORM_SIGNING, f"smart-action:{action}")


def _action_message(session_key: str, episode_id: str, nonce: str) -> bytes:
    # NUL-separated: none of the three holds one (a hash, a UUID, base64url).
    return "\x00".join((session_key, episode_id, nonce)).encode()
