"""Encryption of stored secrets and signing of survey links, both keyed by ALLIANCE_SECRET_KEY."""

from __future__ import annotations

import base64
import json
import uuid

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, Signer


class SecretBox:
    """Encrypts JSON documents at rest (Fernet, key derived from the service secret)."""

    def __init__(self, secret_key: str):
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"alliance-feedback", info=b"secret-box"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, document: dict) -> str:
        return self._fernet.encrypt(json.dumps(document).encode()).decode()

    def open(self, sealed: str) -> dict:
        try:
            return json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise ValueError("stored secrets cannot be decrypted: was ALLIANCE_SECRET_KEY changed?")


class LinkSigner:
    """Turns a survey id (a random UUID) into a short, unguessable link token and back.

    The token is the UUID's 16 bytes in base64url plus an HMAC signature, about 50
    characters, so an SMS with the link still fits in one segment; forged tokens fail.
    """

    def __init__(self, secret_key: str):
        self._signer = Signer(secret_key, salt="survey-link")

    def token_for(self, survey_id: str) -> str:
        raw = base64.urlsafe_b64encode(uuid.UUID(survey_id).bytes).rstrip(b"=")
        return self._signer.sign(raw).decode()

    def survey_id(self, token: str) -> str | None:
        try:
            raw = self._signer.unsign(token.encode())
            survey_id = str(uuid.UUID(bytes=base64.urlsafe_b64decode(raw + b"==")))
        except (BadSignature, ValueError, UnicodeEncodeError):
            return None
        # base64 ignores the spare bits of a last character: accept only the one spelling we issue.
        return survey_id if self.token_for(survey_id) == token else None
