"""Reading HL7 v2 messages into arrivals, and their ACKs: on the real sample messages in
tests/fixtures/hl7v2/ (provenance in tests/fixtures/README.md) and on hostile variations."""

from __future__ import annotations

from datetime import datetime

import hl7
import pytest

from integrations.delivery.port import Contact
from service.intake.facts import Completed, Ignored
from service.intake.hl7v2 import Hl7Refusal, ack, arrival_from, header, parse
from support import PAYLOADS

HL7 = PAYLOADS / "hl7v2"


def message(name: str) -> hl7.Message:
    return parse((HL7 / name).read_bytes())


def variant(name: str, segment: str, field: int, value: str) -> bytes:
    """A fixture with one field replaced (MSH fields are numbered as in the standard)."""
    lines = (HL7 / name).read_bytes().decode().strip("\r").split("\r")
    for index, line in enumerate(lines):
        parts = line.split("|")
        if parts[0] == segment:
            position = field - 1 if segment == "MSH" else field
            parts += [""] * (position + 1 - len(parts))
            parts[position] = value
            lines[index] = "|".join(parts)
    return ("\r".join(lines) + "\r").encode()


def refusal_of(raw: bytes) -> Hl7Refusal:
    with pytest.raises(Hl7Refusal) as caught:
        arrival_from(parse(raw))
    return caught.value


def test_adt_a03_with_a_visit_number_is_a_completion_with_its_contact():
    arrival = arrival_from(message("own-adt-a03-visit.hl7"))
    assert (arrival.source, arrival.delivery_id, arrival.event_type) == (
        "hl7v2",
        "000002",
        "ADT^A03",
    )
    assert isinstance(arrival.outcome, Completed)
    assert (arrival.patient_id, arrival.session_id) == ("191919", "V1001")
    facts = arrival.outcome.facts
    assert facts.dedupe_keys == ("session:V1001", "Encounter/V1001")
    # "(123)555-0100" has no country code and is not guessed; the XTN components are E.164.
    assert facts.contact == Contact(phone="+15551234567")
    assert facts.ended_at == datetime.fromisoformat("1996-01-12T10:05:00-05:00")


def test_siu_s14_complete_names_the_appointment_and_reads_phone_and_email():
    arrival = arrival_from(message("own-siu-s14-complete.hl7"))
    assert isinstance(arrival.outcome, Completed)
    assert (arrival.patient_id, arrival.session_id) == ("42", "2196178")  # SCH-2, the filler's id
    assert arrival.outcome.facts.dedupe_keys == ("session:2196178", "Appointment/2196178")
    assert arrival.outcome.facts.contact == Contact("+15551234567", "client@example.org")


@pytest.mark.parametrize(
    "name, needle",
    [
        ("mieweb-siu-s12.hl7", "SIU^S12 with filler status (SCH-25) Scheduled"),
        ("mieweb-siu-s14.hl7", "SIU^S14 with filler status (SCH-25) Scheduled"),
        ("mieweb-siu-s15.hl7", "cancelled"),
        ("own-siu-s26-noshow.hl7", "did not show up"),
        ("mieweb-adt-a01.hl7", "ADT^A01 does not describe a completed session"),
        ("mieweb-adt-a08.hl7", "ADT^A08 does not describe a completed session"),
    ],
)
def test_other_messages_are_recorded_without_a_survey(name, needle):
    arrival = arrival_from(message(name))
    # Ignored: no dedupe keys, so a no-show does not use the session up.
    assert isinstance(arrival.outcome, Ignored) and needle in arrival.outcome.reason


def test_siu_s26_keeps_the_ids_for_the_event_log():
    arrival = arrival_from(message("own-siu-s26-noshow.hl7"))
    assert (arrival.patient_id, arrival.session_id) == ("42", "2196178")


def test_real_a03_without_a_visit_number_is_refused_naming_the_fields():
    refused = refusal_of((HL7 / "biztalk-adt-a03.hl7").read_bytes())
    assert refused.code == "AE" and refused.error_code == "101"
    assert "PV1-19" in refused.text and "SCH-2" in refused.text


def test_a_completion_without_a_patient_is_refused():
    refused = refusal_of(variant("own-adt-a03-visit.hl7", "PID", 3, ""))
    assert refused.code == "AE" and "PID-3" in refused.text


def test_filler_status_complete_is_read_case_insensitively():
    raw = variant("mieweb-siu-s12.hl7", "SCH", 25, "COMPLETE")
    assert isinstance(arrival_from(parse(raw)).outcome, Completed)


@pytest.mark.parametrize(
    "telecom, needle",
    [
        ("^NET^Internet^not-an-address", "email"),
        ("+1 555 12", "phone"),
    ],
)
def test_a_contact_that_claims_a_form_it_does_not_have_is_refused(telecom, needle):
    refused = refusal_of(variant("own-adt-a03-visit.hl7", "PID", 13, telecom))
    assert refused.code == "AE" and "PID-13" in refused.text and needle in refused.text


def test_an_international_number_in_xtn_1_is_used_without_its_punctuation():
    raw = variant("own-adt-a03-visit.hl7", "PID", 13, "+1 (555) 123-4567^PRN^PH")
    assert arrival_from(parse(raw)).outcome.facts.contact == Contact(phone="+15551234567")


@pytest.mark.parametrize(
    "raw, needle",
    [
        (b"", "does not start with an MSH segment"),
        (b"PID|1||42", "does not start with an MSH segment"),
        (b"MSH|^~\\&|A|B|C|D|2011||ADT^A03||P|2.5\rPID|1||42", "MSH-10"),
        (b"MSH|^~\\&|A|B|C|D|2011|||ID1|P|2.5", "MSH-9"),
        (b"MSH|^~\\&|A|B|C|D|2011||ADT^A03|" + b"x" * 201 + b"|P|2.5", "MSH-10"),
        (b"MSH|^~\\&|A|B|C|D|2011||ADT^A03|ID\x00|P|2.5", "control characters"),
        (
            b"MSH|^~\\&|A|B|C|D|2011||ADT^A03|1|P|2.5\rMSH|^~\\&|A|B|C|D|2011||ADT^A03|2|P|2.5",
            "one message at a time",
        ),
        (b"MSH|" + b"x" * (300 * 1024), "over 256 KiB"),
    ],
)
def test_malformed_messages_are_refused_naming_the_problem(raw, needle):
    with pytest.raises(Hl7Refusal) as caught:
        header(parse(raw))
    assert caught.value.code == "AE" and needle in caught.value.text


def test_line_feeds_and_latin_1_are_read():
    raw = (HL7 / "own-adt-a03-visit.hl7").read_bytes().replace(b"\r", b"\r\n")
    raw = raw.replace(b"SMITH^JOHN", "SM\u00cfTH^JOHN".encode("latin-1"))
    assert arrival_from(parse(raw)).session_id == "V1001"


def test_the_ack_answers_the_sender_and_names_the_message():
    original = message("own-adt-a03-visit.hl7")
    answer = hl7.parse(ack(original, "AA", "accepted").decode())
    assert str(answer.segment("MSH")(3)) == "BTAHL7InterfaceEngine"  # the receiver answers
    assert str(answer.segment("MSH")(5)) == "Tutorial_ADTSystem"  # to the sender
    assert str(answer.segment("MSH")(9)) == "ACK^A03^ACK"
    assert str(answer.segment("MSH")(12)) == "2.3.1"
    assert [str(f) for f in answer.segment("MSA")[1:4]] == ["AA", "000002", "accepted"]


def test_an_ae_carries_an_err_segment_and_escapes_our_text():
    original = message("own-adt-a03-visit.hl7")
    refusal = Hl7Refusal("AE", "PID-3 | is ^ empty", "101", "PID^1^3")
    answer = hl7.parse(ack(original, "AE", refusal.text, refusal).decode())
    assert answer.extract_field("MSA", 1, 3) == "PID-3 | is ^ empty"  # escaped, then read back
    assert answer.extract_field("ERR", 1, 3, 1, 1) == "101"
    assert answer.extract_field("ERR", 1, 3, 1, 2) == "Required field missing"
    assert answer.extract_field("ERR", 1, 4) == "E"


def test_a_message_that_cannot_be_parsed_still_gets_an_ack():
    answer = hl7.parse(ack(None, "AE", "the message does not start with an MSH segment").decode())
    assert answer.extract_field("MSA", 1, 1) == "AE"
    assert answer.extract_field("MSA", 1, 2) == ""
