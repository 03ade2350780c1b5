"""The practice document of `alliance practice apply FILE` (CONTRACT §2)."""

from __future__ import annotations

import base64
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from integrations.delivery.contact import E164
from integrations.network import host_kind
from integrations.settings import DEFAULT_SMS_API, TLS_MODES
from schemas.alert_settings import Alerts, alert_problems
from schemas.base import HTTP_URL, StrictSchema
from schemas.cds_hooks import CdsHooksSection
from schemas.doors import EhrPoll, Hl7v2
from schemas.healthie import HealthieSettings
from schemas.identifier_systems import IdentifierSystems
from schemas.network import Network, destination_problems
from schemas.retention import Retention
from schemas.smart_app import SmartApp

PRACTICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CHANNELS = ("sms", "email", "log")
HH_MM = validate.Regexp(CLOCK_TIME, error="must be HH:MM")
POSITIVE = validate.Range(min=0, min_inclusive=False)


class BearerOrSmartAuth(StrictSchema):
    type = fields.String(required=True,
                         validate=validate.OneOf(["none", "bearer", "smart-backend"]))
    token = fields.String(validate=validate.Length(min=1))
    token_url = fields.String(validate=HTTP_URL)
    client_id = fields.String(validate=validate.Length(min=1))
    private_key_jwk = fields.Dict()
    scope = fields.String()

    @validates_schema
    def _needs_per_type(self, data, **_kwargs):
        needed = {"bearer": ["token"],
                  "smart-backend": ["token_url", "client_id", "private_key_jwk"]}
        missing = [name for name in needed.get(data.get("type"), []) if not data.get(name)]
        if missing:
            raise ValidationError(
                {name: [f"required for auth type {data['type']}"] for name in missing})
        jwk = data.get("private_key_jwk")
        if jwk is not None:
            problems = []
            if not jwk.get("kid"):
                problems.append("needs a kid")
            if jwk.get("alg") not in ("RS384", "ES384"):
                problems.append("alg must be RS384 or ES384")
            if problems:
                raise ValidationError({"private_key_jwk": problems})


class Ehr(StrictSchema):
    type = fields.String(required=True,
                         validate=validate.OneOf(["fhir-r4", "webhook", "healthie"]))
    base_url = fields.String(validate=HTTP_URL)
    auth = fields.Nested(BearerOrSmartAuth, load_default=lambda: {"type": "none"})
    timeout_seconds = fields.Float(validate=validate.Range(min=0.5, max=60))
    identifier_systems = fields.Nested(IdentifierSystems)
    # type "webhook": signed alliance.* events to the practice, for EHRs without FHIR write access
    url = fields.String(validate=HTTP_URL)
    secret = fields.String()
    poll = fields.Nested(EhrPoll, allow_none=True)

    @validates_schema
    def _per_type(self, data, **_kwargs):
        if data.get("type") == "fhir-r4" and not data.get("base_url"):
            raise ValidationError({"base_url": ["required for type fhir-r4"]})
        if data.get("poll") and data.get("type") != "fhir-r4":
            raise ValidationError(
                {"poll": ["polling needs type fhir-r4 (a FHIR server to search)"]})
        if data.get("type") == "webhook":
            problems = {}
            if not data.get("url"):
                problems["url"] = ["required for type webhook"]
            if not _is_whsec(data.get("secret")):
                problems["secret"] = ["must be 'whsec_' followed by base64 of at least 24 bytes"]
            if problems:
                raise ValidationError(problems)


# Seconds a channel waits for its provider; absent: the channel's own default.
CHANNEL_TIMEOUT = validate.Range(min=0, max=120, min_inclusive=False)


class Sms(StrictSchema):
    provider = fields.String(load_default="twilio", validate=validate.OneOf(["twilio"]))
    api_base = fields.String(load_default=DEFAULT_SMS_API, validate=HTTP_URL)
    account_sid = fields.String(required=True, validate=validate.Length(min=1))
    auth_token = fields.String(required=True, validate=validate.Length(min=1))
    from_ = fields.String(required=True, data_key="from", attribute="from",
                          validate=validate.Regexp(E164, error="must be an E.164 number like "
                                                               "+15550001111"))
    timeout_seconds = fields.Float(validate=CHANNEL_TIMEOUT)


class Email(StrictSchema):
    smtp_host = fields.String(required=True, validate=validate.Length(min=1))
    smtp_port = fields.Integer(required=True, strict=True,
                               validate=validate.Range(min=1, max=65535))
    # starttls (the default), implicit (TLS from the first byte, port 465), or none.
    tls = fields.String(validate=validate.OneOf(TLS_MODES))
    # The older spelling, still accepted: true is tls starttls, false is tls none.
    # JSON booleans only: "yes" or "false" as text is a mistake worth naming.
    starttls = fields.Boolean(truthy={True}, falsy={False})
    username = fields.String()
    password = fields.String()
    from_ = fields.Email(required=True, data_key="from", attribute="from")
    timeout_seconds = fields.Float(validate=CHANNEL_TIMEOUT)

    @validates_schema
    def _password_needs_username(self, data, **_kwargs):
        if data.get("password") and not data.get("username"):
            raise ValidationError({"username": ["required when a password is given"]})

    @validates_schema
    def _never_in_the_clear(self, data, **_kwargs):
        if "tls" in data and "starttls" in data:
            raise ValidationError("give tls only (starttls is its older spelling)", "starttls")
        field = "starttls" if "starttls" in data else "tls"
        if _email_tls(data) != "none":
            return
        if data.get("username"):
            raise ValidationError("a login needs TLS: use starttls or implicit (a password is "
                                  "never sent in the clear)", field)
        if host_kind(data.get("smtp_host")) != "loopback":
            raise ValidationError("none is only for a relay on this machine (localhost): use "
                                  "starttls or implicit", field)

    @post_load
    def _one_spelling(self, data, **_kwargs):
        data["tls"] = _email_tls(data)
        data.pop("starttls", None)
        return data


def _email_tls(data) -> str:
    if "tls" in data:
        return data["tls"]
    return "none" if data.get("starttls") is False else "starttls"


class Delivery(StrictSchema):
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True,
                           validate=validate.Length(min=1))
    sms = fields.Nested(Sms)
    email = fields.Nested(Email)

    @validates_schema
    def _configured(self, data, **_kwargs):
        channels = data.get("channels") or []
        if len(set(channels)) != len(channels):
            raise ValidationError({"channels": ["each channel may be listed once"]})
        missing = [c for c in channels if c in ("sms", "email") and c not in data]
        if missing:
            raise ValidationError({c: [f"required because channels lists {c}"] for c in missing})


class FhirNotifications(StrictSchema):
    channel_token = fields.String(validate=validate.Length(min=16))
    hub_secret = fields.String(validate=validate.Length(min=8))


class QuietHours(StrictSchema):
    start = fields.String(required=True, validate=HH_MM)
    end = fields.String(required=True, validate=HH_MM)


class SurveySettings(StrictSchema):
    instrument = fields.String(load_default="brief-alliance-check")
    send_delay_minutes = fields.Float(load_default=0,
                                      validate=validate.Range(min=0, max=7 * 24 * 60))
    reminder_after_hours = fields.Float(load_default=24, validate=POSITIVE)
    expire_after_hours = fields.Float(load_default=72, validate=POSITIVE)
    quiet_hours = fields.Nested(QuietHours, load_default=None, allow_none=True)
    every_nth_session = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1))

    @validates_schema
    def _reminder_before_expiry(self, data, **_kwargs):
        if data.get("reminder_after_hours", 24) >= data.get("expire_after_hours", 72):
            raise ValidationError(
                {"reminder_after_hours": ["must be less than expire_after_hours"]})


class PracticeDocument(StrictSchema):
    id = fields.String(required=True, validate=validate.Regexp(
        PRACTICE_ID, error="must be 1–63 lowercase letters, digits or '-', "
                           "starting with a letter or digit"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    timezone = fields.String(required=True)
    webhook_secrets = fields.List(fields.String(), load_default=list)
    ehr = fields.Nested(Ehr, required=True)
    delivery = fields.Nested(Delivery, required=True)
    fhir_notifications = fields.Nested(FhirNotifications, load_default=None, allow_none=True)
    hl7v2 = fields.Nested(Hl7v2, load_default=None, allow_none=True)
    healthie = fields.Nested(HealthieSettings, load_default=None, allow_none=True)
    survey = fields.Nested(SurveySettings, load_default=lambda: SurveySettings().load({}))
    rupture_rules = fields.Dict(load_default=dict)
    smart_app = fields.Nested(SmartApp, load_default=None, allow_none=True)
    cds_hooks = fields.Nested(CdsHooksSection, load_default=None, allow_none=True)
    network = fields.Nested(Network, load_default=None, allow_none=True)
    retention = fields.Nested(Retention, load_default=lambda: Retention().load({}))
    alerts = fields.Nested(Alerts, load_default=lambda: Alerts().load({}))

    @validates("timezone")
    def _known_zone(self, value, **_kwargs):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown IANA time zone {value!r}") from None

    @validates("webhook_secrets")
    def _standard_webhook_secrets(self, value, **_kwargs):
        bad = [i for i, secret in enumerate(value) if not _is_whsec(secret)]
        if bad:
            raise ValidationError(
                f"secret(s) at position {', '.join(map(str, bad))} must be 'whsec_' followed by "
                "base64 of at least 24 bytes")

    @validates_schema
    def _some_way_in(self, data, **_kwargs):
        notifications = data.get("fhir_notifications") or {}
        other_doors = (data.get("hl7v2") or (data.get("ehr") or {}).get("poll")
                       or data.get("healthie"))
        if not data.get("webhook_secrets") and not notifications and not other_doors:
            raise ValidationError(
                "give webhook_secrets, fhir_notifications, hl7v2, healthie or ehr.poll: "
                "otherwise no session can reach the service", "webhook_secrets")

    @validates_schema
    def _outbound_destinations(self, data, **_kwargs):
        problems = destination_problems(data)
        if problems:
            raise ValidationError(problems)

    @validates_schema
    def _alerts_the_ehr_can_take(self, data, **_kwargs):
        problems = alert_problems(data)
        if problems:
            raise ValidationError(problems)

    @validates_schema
    def _healthie_write_back(self, data, **_kwargs):
        if (data.get("ehr") or {}).get("type") != "healthie":
            return
        section = data.get("healthie") or {}
        if not section:
            raise ValidationError({"healthie": ["required because ehr.type is healthie"]})
        problems = {}
        if not section.get("form_id"):
            problems["form_id"] = ["required because ehr.type is healthie (the alliance form)"]
        if "summary" not in (section.get("form_fields") or {}):
            problems["form_fields"] = ["needs a summary question because ehr.type is healthie"]
        if problems:
            raise ValidationError({"healthie": problems})


def _is_whsec(secret: str) -> bool:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret[6:], validate=True)) >= 24
    except ValueError:
        return False
