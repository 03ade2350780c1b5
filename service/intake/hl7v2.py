"""HL7 v2 messages (ER7) in: read one into the door-neutral arrival, and build its ACK.

Parsing uses python-hl7 (`hl7`): it reads any v2.x version, Z-segments and missing fields
without a schema, which is what real interface-engine feeds need; we read a handful of fields
(MSH, PID-3, PID-13, PV1-19, PV1-45, SCH-1/2/25) and validate those ourselves.

A visit is complete when the message is ADT^A03 (end of visit), or SIU^S12/S14 whose filler
status (SCH-25) is `Complete`. SIU^S15 (cancelled) and S26 (no-show) are recorded without a
survey, as a native event with status `no-show` is. Every other message is recorded as ignored.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import hl7
from marshmallow import ValidationError

from integrations.delivery.port import Contact
from schemas.base import error_map
from schemas.events import Contact as ContactSchema
from service.intake.facts import MAX_ID, Arrival, Completed, Ignored, SessionFacts, storable_ids

SOURCE = "hl7v2"
MAX_MESSAGE = 256 * 1024
COMPLETING_SIU = frozenset({"S12", "S14"})
DID_NOT_HAPPEN = {
    "S15": "the appointment was cancelled (SIU^S15)",
    "S26": "the client did not show up (SIU^S26)",
}
CONTACT = ContactSchema()
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
DEFAULT_ENCODING = "^~\\&"
# HL7 table 0357 (message error condition codes) used in ERR-3.
ERROR_NAMES = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "207": "Application internal error",
}


class Hl7Refusal(Exception):
    """The message is not accepted; `code` is the ACK code (AE or AR), the text says why."""

    def __init__(self, code: str, text: str, error_code: str | None = None, location: str = ""):
        super().__init__(text)
        self.code = code
        self.text = text
        self.error_code = error_code  # HL7 table 0357, for the ERR segment of an AE
        self.location = location  # e.g. "PID^1^3"


@dataclass(frozen=True)
class Header:
    """What the door needs from MSH before it trusts the message."""

    message_type: str  # "ADT^A03"
    control_id: str  # MSH-10: the delivery id
    security: str  # MSH-8: the channel token over MLLP
    receiving_facility: str  # MSH-6.1: the practice id over MLLP


def parse(raw: bytes) -> hl7.Message:
    """ER7 bytes → a parsed message; raise Hl7Refusal (AE) naming what is wrong."""
    if len(raw) > MAX_MESSAGE:
        raise Hl7Refusal("AE", f"the message is over {MAX_MESSAGE // 1024} KiB", "207")
    text = _decode(raw).replace("\r\n", "\r").replace("\n", "\r").strip()
    if not text.startswith("MSH") or len(text) < 8:
        raise Hl7Refusal("AE", "the message does not start with an MSH segment", "100", "MSH")
    try:
        message = hl7.parse(text)
    except (hl7.HL7Exception, IndexError, ValueError) as error:
        raise Hl7Refusal("AE", f"the message cannot be parsed: {error}", "102") from None
    if len(message.segments("MSH")) != 1:
        raise Hl7Refusal(
            "AE", "send one message at a time: found several MSH segments", "100", "MSH"
        )
    return message


def header(message: hl7.Message) -> Header:
    """MSH-9, MSH-10, MSH-8 and MSH-6; AE when the type or the control id is missing."""
    kind, trigger = _field(message, "MSH", 9, 1), _field(message, "MSH", 9, 2)
    if not kind:
        raise Hl7Refusal("AE", "MSH-9 (message type) is empty", "101", "MSH^1^9")
    control_id = _field(message, "MSH", 10).strip()
    if not control_id:
        raise Hl7Refusal(
            "AE",
            "MSH-10 (message control id) is empty: it identifies the delivery",
            "101",
            "MSH^1^10",
        )
    if not storable_ids(control_id):
        raise Hl7Refusal(
            "AE",
            f"MSH-10 (message control id) is longer than {MAX_ID} "
            "characters or holds control characters",
            "102",
            "MSH^1^10",
        )
    message_type = f"{kind}^{trigger}" if trigger else kind
    return Header(message_type, control_id, _field(message, "MSH", 8), _field(message, "MSH", 6, 1))


def arrival_from(message: hl7.Message) -> Arrival:
    """The arrival for a parsed message; Hl7Refusal (AE) when a visit cannot be named."""
    head = header(message)
    kind, _, trigger = head.message_type.partition("^")
    completed, reason = _decide(kind, trigger, _field(message, "SCH", 25, 1))
    patient_id = _patient_id(message)
    visit, appointment = _field(message, "PV1", 19, 1), _appointment_id(message)
    session_id = visit or appointment or None
    if not completed:
        # Recorded for the event log; ids that cannot be stored are left out, not refused.
        keep = storable_ids(patient_id, session_id)
        outcome = Ignored(reason, session_id if keep else None, patient_id if keep else None)
        return Arrival(SOURCE, head.control_id, head.message_type, outcome)
    _require_ids(patient_id, session_id)
    if not storable_ids(patient_id, session_id):
        raise Hl7Refusal(
            "AE",
            f"PID-3 or the visit id is longer than {MAX_ID} characters or holds control characters",
            "102",
        )
    facts = SessionFacts(
        session_id=session_id,
        patient_id=patient_id,
        ended_at=_ended_at(message),
        contact=contact_from_pid13(message),
        dedupe_keys=session_keys(session_id, visit, appointment),
    )
    return Arrival(SOURCE, head.control_id, head.message_type, Completed(facts))


def session_keys(session_id: str, visit: str, appointment: str) -> tuple[str, ...]:
    """The keys the other routes claim for the same visit (docs/intake.md): a visit number is
    the Encounter the write-back names, an appointment id the FHIR Appointment."""
    keys = [f"session:{session_id}"]
    if visit:
        keys.append(f"Encounter/{visit}")
    if appointment:
        keys.append(f"Appointment/{appointment}")
    return tuple(keys)


def contact_from_pid13(message: hl7.Message) -> Contact | None:
    """Phone and e-mail from PID-13, validated as on the native route (E.164, an address).

    A national number without a country code is not guessed at: it is left out, and the worker
    reads the client's telecom from the EHR where it can. A value that claims to be a phone in
    international form, or an e-mail address, and is not valid refuses the message (AE).
    """
    phones, emails = [], []
    for repetition in _repetitions(message, "PID", 13):
        email, phone = _telecom(repetition)
        if email:
            emails.append(email)
        if phone:
            phones.append(phone)
    phones.sort(key=lambda item: not item[1])  # mobile numbers first
    candidate = {"phone": phones[0][0] if phones else None, "email": emails[0] if emails else None}
    if not any(candidate.values()):
        return None
    try:
        loaded = CONTACT.load(candidate)
    except ValidationError as error:
        problems = "; ".join(f"{name}: {text}" for name, text in error_map(error).items())
        raise Hl7Refusal(
            "AE", f"PID-13 (phone/e-mail) is not valid: {problems}", "102", "PID^1^13"
        ) from None
    return Contact(phone=loaded["phone"], email=loaded["email"])


def ack(
    message: hl7.Message | None, code: str, text: str, refusal: Hl7Refusal | None = None
) -> bytes:
    """An original-mode ACK: MSH (sender and receiver swapped), MSA, and ERR for an AE."""
    msh = _msh_fields(message)
    separator, encoding = msh[1], msh[2]
    trigger = _field(message, "MSH", 9, 2) if message is not None else ""
    header_fields = [
        "MSH",
        encoding,
        msh[5],
        msh[6],
        msh[3],
        msh[4],
        datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"),
        "",
        _compose(encoding, "ACK", trigger, "ACK") if trigger else "ACK",
        f"ACK{uuid.uuid4().hex[:17]}",
        msh[11] or "P",
        msh[12] or "2.5",
    ]
    escaped = _escape(text, separator, encoding)
    segments = [separator.join(header_fields), separator.join(["MSA", code, msh[10], escaped])]
    if code == "AE" and refusal is not None:
        code_id = refusal.error_code or "207"
        error = _compose(encoding, code_id, ERROR_NAMES.get(code_id, ""), "HL70357")
        segments.append(
            separator.join(["ERR", "", refusal.location, error, "E", "", "", "", escaped])
        )
    return ("\r".join(segments) + "\r").encode("utf-8")


def _decide(kind: str, trigger: str, filler_status: str) -> tuple[bool, str | None]:
    described = f"{kind}^{trigger}" if trigger else kind
    if kind == "ADT" and trigger == "A03":
        return True, None
    if kind == "SIU" and trigger in DID_NOT_HAPPEN:
        return False, f"{DID_NOT_HAPPEN[trigger]}: not a completed session"
    if kind == "SIU" and trigger in COMPLETING_SIU:
        if filler_status.strip().lower() == "complete":
            return True, None
        status = filler_status.strip() or "empty"
        return (
            False,
            f"{described} with filler status (SCH-25) {status[:40]}: not a completed session",
        )
    return False, f"{described[:40]} does not describe a completed session"


def _require_ids(patient_id: str | None, session_id: str | None) -> None:
    if not patient_id:
        raise Hl7Refusal(
            "AE", "PID-3 (patient identifier) is empty: the visit names no client", "101", "PID^1^3"
        )
    if not session_id:
        raise Hl7Refusal(
            "AE",
            "the visit has no id: PV1-19 (visit number), SCH-2 and SCH-1 "
            "(appointment ids) are empty",
            "101",
            "PV1^1^19",
        )


def _patient_id(message: hl7.Message) -> str | None:
    """The first identifier of PID-3 (real feeds list the MRN first; others follow as `~`)."""
    for repetition in _repetitions(message, "PID", 3):
        value = _component(repetition, 1)
        if value:
            return value
    return None


def _appointment_id(message: hl7.Message) -> str:
    """SCH-2 (the filler's id: the scheduling system's own) or else SCH-1 (the placer's)."""
    return _field(message, "SCH", 2, 1) or _field(message, "SCH", 1, 1)


def _ended_at(message: hl7.Message) -> datetime | None:
    """PV1-45 (discharge date/time) when it carries a UTC offset; a local time is not guessed."""
    value = _field(message, "PV1", 45, 1)
    try:
        when = hl7.parse_datetime(value) if value else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def _telecom(repetition) -> tuple[str | None, tuple[str, bool] | None]:
    """(e-mail, (E.164 phone, is mobile)) of one XTN repetition; None where absent."""
    number, use, equipment = (_component(repetition, i) for i in (1, 2, 3))
    email = _component(repetition, 4) or (number if "@" in number else "")
    if email or use == "NET" or equipment in ("Internet", "X.400"):
        return email or None, None
    country, area, local = (_component(repetition, i) for i in (5, 6, 7))
    unformatted = _component(repetition, 12)
    phone = None
    if country and local:
        phone = "+" + "".join(ch for ch in country + area + local if ch.isdigit())
    elif unformatted.startswith("+") or number.strip().startswith("+"):
        phone = _PHONE_PUNCTUATION.sub("", unformatted or number)
    mobile = equipment == "CP" or use == "ORN"
    return None, ((phone, mobile) if phone else None)


def _field(message: hl7.Message | None, segment: str, field: int, component: int = 1) -> str:
    """A field's text (unescaped), '' when the segment or field is absent."""
    if message is None:
        return ""
    try:
        value = message.extract_field(segment, 1, field, 1, component)
    except (KeyError, IndexError):
        return ""
    return str(value) if value is not None else ""


def _repetitions(message: hl7.Message, segment: str, field: int) -> list:
    try:
        value = message.segment(segment)(field)
    except (KeyError, IndexError):
        return []
    return list(value) if isinstance(value, hl7.Field) else [value]


def _component(repetition, index: int) -> str:
    if isinstance(repetition, str):
        return repetition.strip() if index == 1 else ""
    try:
        value = repetition(index)
    except (IndexError, TypeError):
        return ""
    return str(value).strip() if value is not None else ""


def _decode(raw: bytes) -> str:
    """UTF-8 (v2.8's preferred set), else Latin-1: ids and contact are ASCII in practice, and a
    message is never refused for a name in another character set."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _msh_fields(message: hl7.Message | None) -> list[str]:
    """MSH split into raw (still escaped) fields, indexed by HL7 field number, 0..12."""
    if message is None:
        return ["MSH", "|", DEFAULT_ENCODING] + [""] * 10
    text = str(message.segment("MSH"))
    separator = text[3]
    parts = text[4:].split(separator)
    fields = ["MSH", separator, *parts]
    return (fields + [""] * 13)[:13]


def _compose(encoding: str, *components: str) -> str:
    return encoding[0].join(components)


def _escape(text: str, separator: str, encoding: str) -> str:
    """Escape our own text with the message's delimiters (HL7 v2 §2.7)."""
    escape = encoding[2] if len(encoding) > 2 else "\\"
    names = {separator: "F", encoding[0]: "S", escape: "E"}
    if len(encoding) > 1:
        names[encoding[1]] = "R"
    if len(encoding) > 3:
        names[encoding[3]] = "T"
    return "".join(
        f"{escape}{names[ch]}{escape}" if ch in names else ch
        for ch in text.replace("\r", " ").replace("\n", " ")
    )
