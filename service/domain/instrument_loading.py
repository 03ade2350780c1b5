"""Loading an instrument document ({"questionnaire", "scoring"}): every problem, by its place.

A document is checked whole, and all its problems are reported together (InstrumentError), so
whoever wrote the file can fix it in one go.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

from .errors import InstrumentError
from .instruments import CUTOFF_KEYS, TOTAL, Cutoffs, Instrument, Item, ReliableChange

MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
ITEM_TYPES = ("integer", "decimal", "boolean", "text")
POLARITIES = ("positive", "negative")
AGGREGATIONS = ("sum", "mean")
WORDING_KINDS = ("own", "licensed", "placeholder")
ROLE_TYPES = {
    "score": ("integer", "decimal"),
    "tension": ("boolean",),
    "tension_intensity": ("integer",),
    "resolution": ("integer", "decimal"),
    "comment": ("text",),
}
# Roles the rupture engine reads at most once per instrument.
SINGLE_ROLES = ("tension", "tension_intensity", "resolution")
SCORING_KEYS = (
    "wording",
    "licence",
    "aggregation",
    "subscales",
    "items",
    "cutoffs",
    "reliable_change",
    "notes",
)
ITEM_ENTRY_KEYS = ("role", "subscale", "polarity", "label", "lowLabel", "highLabel")
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def load_instrument(doc: Any, source: str = "<memory>") -> Instrument:
    """Validate an instrument document ({"questionnaire", "scoring"}) and build the Instrument."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise InstrumentError(source, ["the file must hold a JSON object"])
    questionnaire = _require_object(doc, "questionnaire", problems)
    scoring = _require_object(doc, "scoring", problems)
    if problems:
        raise InstrumentError(source, problems)
    header = _read_header(questionnaire, problems)
    items = _read_items(questionnaire, scoring, problems)
    instrument = _assemble(doc, questionnaire, scoring, header, items, problems)
    if problems or instrument is None:
        raise InstrumentError(source, problems)
    return instrument


def load_instrument_file(path: str | Path) -> Instrument:
    """Read and validate an instrument JSON file."""
    path = Path(path)
    return load_instrument(_read_json(path), source=str(path))


# --- reading the document -------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except OSError as error:
        raise InstrumentError(str(path), [f"cannot read the file ({error.strerror})"]) from error
    except json.JSONDecodeError as error:
        raise InstrumentError(
            str(path), [f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"]
        ) from error
    except UnicodeDecodeError as error:
        raise InstrumentError(str(path), ["not UTF-8 text"]) from error


def _require_object(doc: dict, key: str, problems: list[str]) -> dict:
    value = doc.get(key)
    if not isinstance(value, dict):
        problems.append(f"{key}: required, must be an object")
        return {}
    return value


def _read_header(questionnaire: dict, problems: list[str]) -> dict:
    if questionnaire.get("resourceType") != "Questionnaire":
        problems.append('questionnaire.resourceType: must be "Questionnaire"')
    header = {}
    for key in ("id", "url", "version", "title"):
        value = questionnaire.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"questionnaire.{key}: required text")
        header[key] = value
    if isinstance(header["id"], str) and not ID_PATTERN.match(header["id"]):
        problems.append("questionnaire.id: letters, digits, '-' and '.' only, at most 64")
    if questionnaire.get("status") not in ("draft", "active", "retired", "unknown"):
        problems.append("questionnaire.status: must be draft, active, retired or unknown")
    return header


def _read_items(questionnaire: dict, scoring: dict, problems: list[str]) -> tuple[Item, ...]:
    fhir_items = questionnaire.get("item")
    if not isinstance(fhir_items, list) or not fhir_items:
        problems.append("questionnaire.item: required, a non-empty list")
        return ()
    entries = scoring.get("items")
    if not isinstance(entries, dict):
        problems.append("scoring.items: required, an object keyed by linkId")
        entries = {}
    items = []
    seen: set[str] = set()
    for index, fhir_item in enumerate(fhir_items):
        item = _read_item(index, fhir_item, entries, seen, problems)
        if item is not None:
            items.append(item)
    for link_id in sorted(set(entries) - seen):
        problems.append(f"scoring.items.{link_id}: no questionnaire item has this linkId")
    return tuple(items)


def _read_item(
    index: int, fhir_item: Any, entries: dict, seen: set[str], problems: list[str]
) -> Item | None:
    where = f"questionnaire.item[{index}]"
    if not isinstance(fhir_item, dict):
        problems.append(f"{where}: must be an object")
        return None
    link_id = fhir_item.get("linkId")
    if not isinstance(link_id, str) or not link_id.strip():
        problems.append(f"{where}.linkId: required text")
        return None
    where = f"questionnaire.item {link_id!r}"
    if link_id in seen:
        problems.append(f"{where}: linkId used twice")
        return None
    seen.add(link_id)
    if "item" in fhir_item:
        problems.append(f"{where}: nested items are not supported")
    item_type = fhir_item.get("type")
    if item_type not in ITEM_TYPES:
        problems.append(f"{where}.type: must be one of {', '.join(ITEM_TYPES)}")
        return None
    text = fhir_item.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}.text: required text")
    required = fhir_item.get("required", False)
    if not isinstance(required, bool):
        problems.append(f"{where}.required: must be true or false")
    low, high = _read_range(where, fhir_item, item_type, problems)
    entry = entries.get(link_id)
    if not isinstance(entry, dict):
        problems.append(f"scoring.items.{link_id}: required, an object with at least a role")
        return None
    return _build_item(link_id, text, item_type, low, high, required is True, entry, problems)


def _read_range(
    where: str, fhir_item: dict, item_type: str, problems: list[str]
) -> tuple[float | None, float | None]:
    if item_type not in ("integer", "decimal"):
        return None, None
    suffix = "Integer" if item_type == "integer" else "Decimal"
    bounds = {}
    for url, name in ((MIN_VALUE_URL, "minValue"), (MAX_VALUE_URL, "maxValue")):
        value = _extension_value(fhir_item, url, f"value{suffix}")
        if not _is_number(value) or (item_type == "integer" and not isinstance(value, int)):
            problems.append(f"{where}: needs a {name} extension with value{suffix}")
        bounds[name] = value
    low, high = bounds["minValue"], bounds["maxValue"]
    if _is_number(low) and _is_number(high) and low >= high:
        problems.append(f"{where}: minValue must be below maxValue")
        return None, None
    return (low, high) if _is_number(low) and _is_number(high) else (None, None)


def _extension_value(fhir_item: dict, url: str, key: str) -> Any:
    for extension in fhir_item.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == url:
            return extension.get(key)
    return None


def _build_item(
    link_id: str,
    text: Any,
    item_type: str,
    low: float | None,
    high: float | None,
    required: bool,
    entry: dict,
    problems: list[str],
) -> Item | None:
    where = f"scoring.items.{link_id}"
    for key in sorted(set(entry) - set(ITEM_ENTRY_KEYS)):
        problems.append(f"{where}.{key}: unknown field (known: {', '.join(ITEM_ENTRY_KEYS)})")
    role = entry.get("role")
    if role not in ROLE_TYPES:
        problems.append(f"{where}.role: must be one of {', '.join(ROLE_TYPES)}")
        return None
    if item_type not in ROLE_TYPES[role]:
        problems.append(f"{where}: a {role} item must have type {' or '.join(ROLE_TYPES[role])}")
    polarity = entry.get("polarity")
    if polarity is not None and polarity not in POLARITIES:
        problems.append(f"{where}.polarity: must be positive, negative or absent")
    if role == "score" and polarity != "positive":
        problems.append(
            f"{where}.polarity: score items must be positive (reverse keying is not supported)"
        )
    if role in ("tension", "tension_intensity") and polarity != "negative":
        problems.append(f"{where}.polarity: a {role} item must be negative")
    subscale = entry.get("subscale")
    if subscale is not None and (role != "score" or not isinstance(subscale, str)):
        problems.append(f"{where}.subscale: only score items belong to a subscale (a name)")
    for key in ("lowLabel", "highLabel", "label"):
        if key in entry and not isinstance(entry[key], str):
            problems.append(f"{where}.{key}: must be text")
    if low is None and item_type in ("integer", "decimal"):
        return None
    return Item(
        link_id=link_id,
        text=text if isinstance(text, str) else "",
        type=item_type,
        min=low,
        max=high,
        polarity=polarity,
        required=required,
        subscale=subscale,
        role=role,
        low_label=entry.get("lowLabel"),
        high_label=entry.get("highLabel"),
        label=entry.get("label") or link_id,
    )


def _assemble(
    doc: dict,
    questionnaire: dict,
    scoring: dict,
    header: dict,
    items: tuple[Item, ...],
    problems: list[str],
) -> Instrument | None:
    for key in sorted(set(scoring) - set(SCORING_KEYS)):
        problems.append(f"scoring.{key}: unknown field (known: {', '.join(SCORING_KEYS)})")
    aggregation = scoring.get("aggregation", "sum")
    if aggregation not in AGGREGATIONS:
        problems.append("scoring.aggregation: must be sum or mean")
    subscales = _read_subscales(scoring, items, problems)
    _check_roles(items, problems)
    cutoffs = _read_cutoffs(scoring, problems)
    reliable_change = _read_reliable_change(scoring, subscales, problems)
    wording = scoring.get("wording", "own")
    if wording not in WORDING_KINDS:
        problems.append("scoring.wording: must be own, licensed or placeholder")
    licence = scoring.get("licence")
    if wording == "licensed" and not (isinstance(licence, str) and licence.strip()):
        problems.append("scoring.licence: required when the wording is licensed")
    if problems:
        return None
    return Instrument(
        id=header["id"],
        version=header["version"],
        url=header["url"],
        title=header["title"],
        items=items,
        questionnaire=copy.deepcopy(questionnaire),
        aggregation=aggregation,
        subscales=subscales,
        cutoffs=cutoffs,
        reliable_change=reliable_change,
        wording=wording,
        licence=licence,
        document=copy.deepcopy(doc),
    )


def _read_subscales(scoring: dict, items: tuple[Item, ...], problems: list[str]) -> tuple[str, ...]:
    declared = scoring.get("subscales", [])
    if not isinstance(declared, list) or not all(isinstance(name, str) for name in declared):
        problems.append("scoring.subscales: must be a list of names")
        return ()
    if TOTAL in declared or len(set(declared)) != len(declared):
        problems.append('scoring.subscales: names must be unique and not "total"')
    for item in items:
        if item.subscale is not None and item.subscale not in declared:
            problems.append(
                f"scoring.items.{item.link_id}.subscale: {item.subscale!r} "
                "is not in scoring.subscales"
            )
    for name in declared:
        if not any(item.subscale == name for item in items):
            problems.append(f"scoring.subscales: {name!r} has no items")
    return tuple(declared)


def _check_roles(items: tuple[Item, ...], problems: list[str]) -> None:
    if not any(item.role == "score" for item in items):
        problems.append("scoring.items: at least one item must have role score")
    for item in items:
        if item.role == "score" and not item.required:
            problems.append(
                f"questionnaire.item {item.link_id!r}.required: score items must be required"
            )
    for role in SINGLE_ROLES:
        if sum(item.role == role for item in items) > 1:
            problems.append(f"scoring.items: at most one item may have role {role}")
    has_tension = any(item.role == "tension" for item in items)
    if any(item.role == "tension_intensity" for item in items) and not has_tension:
        problems.append("scoring.items: a tension_intensity item needs a tension item")


def _read_cutoffs(scoring: dict, problems: list[str]) -> Cutoffs:
    raw = scoring.get("cutoffs", {})
    if not isinstance(raw, dict):
        problems.append("scoring.cutoffs: must be an object")
        return Cutoffs()
    for key in sorted(set(raw) - set(CUTOFF_KEYS)):
        problems.append(f"scoring.cutoffs.{key}: unknown cutoff (known: {', '.join(CUTOFF_KEYS)})")
    values = {}
    for key in CUTOFF_KEYS:
        value = raw.get(key)
        if value is not None and not _is_number(value):
            problems.append(f"scoring.cutoffs.{key}: must be a number or null")
            value = None
        values[key] = value
    return Cutoffs(**values)


def _read_reliable_change(
    scoring: dict, subscales: tuple[str, ...], problems: list[str]
) -> dict[str, ReliableChange]:
    raw = scoring.get("reliable_change")
    if not isinstance(raw, dict) or TOTAL not in raw:
        problems.append("scoring.reliable_change: required, with at least a total entry")
        return {}
    result = {}
    for scale, entry in raw.items():
        where = f"scoring.reliable_change.{scale}"
        if scale != TOTAL and scale not in subscales:
            problems.append(f"{where}: not the total or a declared subscale")
            continue
        change = _read_change_entry(where, entry, problems)
        if change is not None:
            result[scale] = change
    return result


def _read_change_entry(where: str, entry: Any, problems: list[str]) -> ReliableChange | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be an object with between_client_sd and reliability")
        return None
    sd, reliability = entry.get("between_client_sd"), entry.get("reliability")
    valid = True
    if not _is_number(sd) or sd <= 0:
        problems.append(f"{where}.between_client_sd: must be a number above 0")
        valid = False
    if not _is_number(reliability) or not 0 <= reliability < 1:
        problems.append(f"{where}.reliability: must be a number from 0 up to (not including) 1")
        valid = False
    return ReliableChange(float(sd), float(reliability)) if valid else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
