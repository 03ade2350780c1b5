"""Encryption of stored secrets and signing of survey links, both keyed by ALLIANCE_SECRET_KEY."""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeSerializer


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
    """Turns a survey id into an unguessable link token and back; forged tokens fail."""

    def __init__(self, secret_key: str):
        self._serializer = URLSafeSerializer(secret_key, salt="survey-link")

    def token_for(self, survey_id: str) -> str:
        return self._serializer.dumps(survey_id)

    def survey_id(self, token: str) -> str | None:
        try:
            value = self._serializer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None
