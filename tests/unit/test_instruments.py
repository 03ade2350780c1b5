"""Instruments as data: the shipped files, validation of broken files, licensed wording."""

from __future__ import annotations

import copy
import json

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from service.domain import (
    InstrumentError,
    apply_wording,
    builtin_instruments,
    instrument_catalogue,
    load_instrument,
    load_instrument_file,
)

CONTRACT_ITEM_KEYS = {"linkId", "text", "type", "min", "max", "polarity", "required"}


def brief_document() -> dict:
    return copy.deepcopy(builtin_instruments()["brief-alliance-check"].document)


def wai_wording(**changes) -> dict:
    wording = {
        "instrument": "wai-sr",
        "licence": "Licensed to Northside Counseling, 2026",
        "items": {f"wai{n}": {"text": f"Licensed statement {n}"} for n in range(1, 13)},
    }
    wording.update(changes)
    return wording


def test_the_catalogue_ships_the_default_and_two_profiles_without_wording():
    catalogue = builtin_instruments()

    assert set(catalogue) == {"brief-alliance-check", "wai-sr", "srs-style"}
    assert catalogue["brief-alliance-check"].sendable
    for profile in ("wai-sr", "srs-style"):
        assert not catalogue[profile].sendable
        assert all("load licensed wording" in item.text for item in catalogue[profile].items)


def test_brief_alliance_check_has_short_stable_link_ids_and_roles():
    instrument = builtin_instruments()["brief-alliance-check"]

    roles = {item.link_id: (item.role, item.subscale, item.polarity) for item in instrument.items}

    assert roles == {
        "bond": ("score", "bond", "positive"),
        "goals": ("score", "goals", "positive"),
        "approach": ("score", "tasks", "positive"),
        "overall": ("score", None, "positive"),
        "tension": ("tension", None, "negative"),
        "tension_intensity": ("tension_intensity", None, "negative"),
        "comment": ("comment", None, None),
    }
    assert instrument.url == "https://alliance-feedback.org/fhir/Questionnaire/brief-alliance-check"


def test_public_items_follow_the_contract():
    items = builtin_instruments()["brief-alliance-check"].public_items()

    assert all(CONTRACT_ITEM_KEYS <= set(item) for item in items)
    bond = items[0]
    assert (bond["type"], bond["min"], bond["max"], bond["required"]) == ("integer", 0, 10, True)
    assert bond["lowLabel"] and bond["highLabel"]
    comment = items[-1]
    assert (comment["type"], comment["min"], comment["polarity"]) == ("text", None, None)


@pytest.mark.parametrize("instrument_id", ["brief-alliance-check", "wai-sr", "srs-style"])
def test_every_shipped_questionnaire_is_valid_fhir(instrument_id):
    Questionnaire.model_validate(builtin_instruments()[instrument_id].questionnaire)


def test_describe_gives_ranges_cutoffs_and_reliable_change_thresholds():
    scoring = builtin_instruments()["brief-alliance-check"].describe()["scoring"]

    assert (scoring["total"]["min"], scoring["total"]["max"]) == (0, 40)
    assert scoring["subscales"]["tasks"]["items"] == ["approach"]
    assert scoring["cutoffs"] == {"total_below": 36, "subscale_below": None, "item_below": 9}
    assert scoring["total"]["reliable_change"]["threshold_95"] == 4.96


def test_wai_sr_profile_has_the_published_subscale_mapping():
    wai = builtin_instruments()["wai-sr"]

    mapping = {name: [i.link_id for i in wai.scale_items(name)] for name in wai.subscales}

    assert mapping == {
        "bond": ["wai3", "wai5", "wai7", "wai9"],
        "goals": ["wai4", "wai6", "wai8", "wai11"],
        "tasks": ["wai1", "wai2", "wai10", "wai12"],
    }
    assert wai.scale_range("total") == (12, 60)
    assert wai.scale_range("bond") == (4, 20)


def _break(path: str, value):
    def mutate(doc):
        *parents, last = path.split("/")
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is KeyError:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_break("questionnaire/resourceType", "Patient"), "questionnaire.resourceType"),
        (_break("questionnaire/url", KeyError), "questionnaire.url: required"),
        (_break("questionnaire/item/0/type", "choice"), "'bond'.type: must be one of"),
        (_break("questionnaire/item/1/linkId", "bond"), "'bond': linkId used twice"),
        (_break("questionnaire/item/0/extension", []), "needs a minValue extension"),
        (_break("questionnaire/item/0/required", False), "score items must be required"),
        (_break("scoring/items/bond/role", "mood"), "scoring.items.bond.role"),
        (_break("scoring/items/bond/subscale", "trust"), "'trust' is not in scoring.subscales"),
        (_break("scoring/items/bond/polarity", "negative"), "score items must be positive"),
        (_break("scoring/items/bond/colour", "red"), "scoring.items.bond.colour: unknown field"),
        (_break("scoring/items/comment", KeyError), "scoring.items.comment: required"),
        (_break("scoring/aggregation", "median"), "scoring.aggregation"),
        (_break("scoring/cutoff", {}), "scoring.cutoff: unknown field"),
        (_break("scoring/cutoffs/total_below", "36"), "scoring.cutoffs.total_below"),
        (_break("scoring/reliable_change/total/reliability", 1.0), "reliability: must be a number"),
        (_break("scoring/reliable_change/total", KeyError), "scoring.reliable_change: required"),
        (_break("scoring/wording", "licensed"), "scoring.licence: required"),
    ],
)
def test_a_broken_instrument_is_refused_naming_what_is_wrong(mutate, message):
    doc = brief_document()
    mutate(doc)

    with pytest.raises(InstrumentError) as refused:
        load_instrument(doc, "broken.json")

    assert message in str(refused.value)
    assert str(refused.value).startswith("broken.json: ")


def test_every_problem_in_a_file_is_reported_at_once():
    doc = brief_document()
    doc["scoring"]["aggregation"] = "median"
    doc["questionnaire"]["status"] = "open"

    with pytest.raises(InstrumentError) as refused:
        load_instrument(doc)

    assert len(refused.value.problems) == 2


def test_a_file_that_is_not_json_is_refused_with_its_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"questionnaire": ', "utf-8")

    with pytest.raises(InstrumentError, match=r"bad.json: not valid JSON \(line 1"):
        load_instrument_file(path)


def test_licensed_wording_turns_a_profile_into_a_sendable_instrument():
    wording = wai_wording()
    wording["items"]["wai1"]["lowLabel"] = "Seldom"

    worded = apply_wording(builtin_instruments()["wai-sr"], wording)

    assert worded.sendable and worded.wording == "licensed"
    assert worded.item("wai1").text == "Licensed statement 1"
    assert worded.item("wai1").low_label == "Seldom"
    assert worded.questionnaire["copyright"] == "Licensed to Northside Counseling, 2026"
    Questionnaire.model_validate(worded.questionnaire)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w["items"].pop("wai7"), "items.wai7: missing"),
        (
            lambda w: w["items"].update(wai13={"text": "extra"}),
            "items.wai13: not an item of wai-sr",
        ),
        (lambda w: w["items"].update(wai2={"text": "  "}), "items.wai2.text: must be non-empty"),
        (lambda w: w["items"].update(wai2={"text": "x" * 1001}), "longer than 1000 characters"),
        (
            lambda w: w["items"].update(wai2={"text": "ok", "hint": "x"}),
            "items.wai2.hint: unknown field",
        ),
        (lambda w: w.pop("licence"), "licence: required"),
    ],
)
def test_wording_that_does_not_fit_the_profile_is_refused(change, message):
    wording = wai_wording()
    change(wording)

    with pytest.raises(InstrumentError, match=message):
        apply_wording(builtin_instruments()["wai-sr"], wording, "wording.json")


def test_wording_cannot_replace_an_instrument_that_already_has_its_own():
    with pytest.raises(InstrumentError, match="already has its wording"):
        apply_wording(builtin_instruments()["brief-alliance-check"], wai_wording())


def test_the_catalogue_adds_the_practice_directory(tmp_path):
    worded = apply_wording(builtin_instruments()["wai-sr"], wai_wording())
    (tmp_path / "wai-sr.json").write_text(json.dumps(worded.document), "utf-8")

    catalogue = instrument_catalogue(tmp_path)

    assert catalogue["wai-sr"].sendable
    assert not catalogue["srs-style"].sendable
    assert not builtin_instruments()["wai-sr"].sendable


def test_the_catalogue_refuses_a_file_replacing_the_default_instrument(tmp_path):
    (tmp_path / "mine.json").write_text(json.dumps(brief_document()), "utf-8")

    with pytest.raises(InstrumentError, match="would replace the built-in instrument"):
        instrument_catalogue(tmp_path)


def test_a_missing_practice_directory_means_built_ins_only(tmp_path):
    assert set(instrument_catalogue(tmp_path / "absent")) == set(builtin_instruments())
