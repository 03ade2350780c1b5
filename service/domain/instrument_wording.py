"""A practice's licensed wording, combined with a shipped scoring profile into a sendable one."""

from __future__ import annotations

import copy
from typing import Any

from .errors import InstrumentError
from .instrument_loading import load_instrument
from .instruments import Instrument

MAX_TEXT_CHARS = 1000
MAX_LABEL_CHARS = 200


def apply_wording(profile: Instrument, wording: Any, source: str = "<memory>") -> Instrument:
    """Combine a scoring profile with a practice's licensed wording; checks every item."""
    problems: list[str] = []
    if not isinstance(wording, dict):
        raise InstrumentError(source, ["the wording file must hold a JSON object"])
    if profile.sendable:
        problems.append(
            f"instrument {profile.id!r} already has its wording; only profiles take a wording file"
        )
    licence = wording.get("licence")
    if not isinstance(licence, str) or not licence.strip():
        problems.append("licence: required (who licensed this wording to the practice)")
    texts = _read_wording_items(profile, wording.get("items"), problems)
    title = wording.get("title", profile.title)
    if not isinstance(title, str) or not title.strip():
        problems.append("title: must be non-empty text")
    if problems:
        raise InstrumentError(source, problems)
    document = _worded_document(profile, texts, licence.strip(), title.strip())
    return load_instrument(document, source)


def _read_wording_items(profile: Instrument, items: Any, problems: list[str]) -> dict:
    if not isinstance(items, dict):
        problems.append("items: must be an object mapping each linkId to its wording")
        return {}
    known = {item.link_id for item in profile.items}
    for link_id in sorted(set(items) - known):
        problems.append(f"items.{link_id}: not an item of {profile.id}")
    for link_id in sorted(known - set(items)):
        problems.append(f"items.{link_id}: missing (every item of {profile.id} needs its wording)")
    for link_id in sorted(known & set(items)):
        _check_wording_entry(f"items.{link_id}", items[link_id], problems)
    return items


def _check_wording_entry(where: str, entry: Any, problems: list[str]) -> None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be an object with text (and optional lowLabel, highLabel)")
        return
    _check_text(f"{where}.text", entry.get("text"), MAX_TEXT_CHARS, problems)
    for key in ("lowLabel", "highLabel"):
        if key in entry:
            _check_text(f"{where}.{key}", entry[key], MAX_LABEL_CHARS, problems)
    for key in sorted(set(entry) - {"text", "lowLabel", "highLabel"}):
        problems.append(f"{where}.{key}: unknown field")


def _check_text(where: str, value: Any, limit: int, problems: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: must be non-empty text")
    elif len(value) > limit:
        problems.append(f"{where}: longer than {limit} characters")


def _worded_document(profile: Instrument, texts: dict, licence: str, title: str) -> dict:
    document = copy.deepcopy(profile.document)
    questionnaire = document["questionnaire"]
    questionnaire["title"] = title
    questionnaire["copyright"] = licence
    for fhir_item in questionnaire["item"]:
        fhir_item["text"] = texts[fhir_item["linkId"]]["text"].strip()
    scoring = document["scoring"]
    scoring["wording"] = "licensed"
    scoring["licence"] = licence
    for link_id, entry in texts.items():
        for key in ("lowLabel", "highLabel"):
            if key in entry:
                scoring["items"][link_id][key] = entry[key].strip()
    return document
