"""What an EHR's OperationOutcome says, in one line or in full, whatever its shape; and FHIR
versions as ETags, both ways."""

from __future__ import annotations

import pytest

from integrations.ehr.etags import etag_for, version_from_etag
from integrations.ehr.outcomes import describe_outcome, first_issue

OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "Invalid reference",
         "expression": ["Flag.subject", "Flag.encounter"]},
        {"severity": "warning", "code": "business-rule", "details": {"text": "Check the code"}},
    ],
}


def test_first_issue_is_one_line():
    assert first_issue(OUTCOME) == "error/invalid Invalid reference at Flag.subject, Flag.encounter"


def test_describe_outcome_names_every_issue():
    assert describe_outcome(OUTCOME) == (
        "error/invalid Invalid reference at Flag.subject, Flag.encounter; "
        "warning/business-rule Check the code")


def test_a_long_or_multi_line_diagnostic_is_folded_and_cut():
    outcome = {"issue": [{"severity": "error", "code": "invalid",
                          "diagnostics": "line one\n\tline two " + "x" * 500}]}

    line = first_issue(outcome)

    assert "\n" not in line and "\t" not in line
    assert line.startswith("error/invalid line one line two x")
    assert len(line) == 200 and line.endswith("…")


@pytest.mark.parametrize("outcome", [
    None, {}, {"issue": None}, {"issue": "broken"}, {"issue": []}, {"issue": ["text", 3]},
    "not an object", [1, 2],
])
def test_an_outcome_of_any_shape_describes_without_failing(outcome):
    assert first_issue(outcome) == ""
    assert describe_outcome(outcome) == ""


def test_parts_of_the_wrong_type_are_left_out():
    outcome = {"issue": [{"severity": "error", "code": "invalid", "diagnostics": {"x": 1},
                          "details": "text", "expression": "Flag.subject",
                          "location": ["Flag.subject", 7]}]}

    assert first_issue(outcome) == "error/invalid at Flag.subject"


@pytest.mark.parametrize(("version", "etag"), [
    ("3", 'W/"3"'), ('W/"3"', 'W/"3"'), ('"3"', '"3"'),
])
def test_etag_for(version, etag):
    assert etag_for(version) == etag


@pytest.mark.parametrize(("etag", "version"), [
    ('W/"3"', "3"), ('"3"', "3"), ("3", "3"), (' W/"12" ', "12"), ("", None), (None, None),
    ('W/""', None),
])
def test_version_from_etag(etag, version):
    assert version_from_etag(etag) == version
