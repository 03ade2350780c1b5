"""Instruments as data: a FHIR R4 Questionnaire plus a scoring block, loaded and validated."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InstrumentError

CANONICAL_BASE = "https://alliance-feedback.org/fhir/Questionnaire/"
MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
DEFAULT_INSTRUMENT = "brief-alliance-check"

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
CUTOFF_KEYS = ("total_below", "subscale_below", "item_below")
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
TOTAL = "total"
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_TEXT_CHARS = 1000
MAX_LABEL_CHARS = 200


@dataclass(frozen=True)
class Item:
    """One question of an instrument, with the structure the scorer and the survey page need."""

    link_id: str
    text: str
    type: str
    min: float | None
    max: float | None
    polarity: str | None
    required: bool
    subscale: str | None
    role: str
    low_label: str | None
    high_label: str | None
    label: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.type in ("integer", "decimal")

    @property
    def name(self) -> str:
        """Short plain name used in clinician-facing reasons."""
        return self.label or self.link_id

    def public(self) -> dict:
        """The item JSON of CONTRACT §4 (plus lowLabel/highLabel when the item has anchors)."""
        data = {
            "linkId": self.link_id,
            "text": self.text,
            "type": self.type,
            "min": _plain_number(self.min, self.type),
            "max": _plain_number(self.max, self.type),
            "polarity": self.polarity,
            "required": self.required,
        }
        if self.low_label is not None:
            data["lowLabel"] = self.low_label
        if self.high_label is not None:
            data["highLabel"] = self.high_label
        return data


@dataclass(frozen=True)
class ReliableChange:
    """Between-client SD and reliability of one scale, for Jacobson–Truax reliable change."""

    between_client_sd: float
    reliability: float

    @property
    def measurement_error(self) -> float:
        """SE = s·√(1 − r)."""
        return self.between_client_sd * math.sqrt(1.0 - self.reliability)

    def threshold(self, z: float) -> float:
        """Smallest raw change with |RC| ≥ z: z·√2·SE."""
        return z * math.sqrt(2.0) * self.measurement_error


@dataclass(frozen=True)
class Cutoffs:
    """Absolute cutoffs of an instrument; None where the instrument has no such cutoff."""

    total_below: float | None = None
    subscale_below: float | None = None
    item_below: float | None = None

    def as_dict(self) -> dict:
        return {key: getattr(self, key) for key in CUTOFF_KEYS}


@dataclass(frozen=True, eq=False)
class Instrument:
    """A loaded, validated instrument: its Questionnaire, items and scoring rules."""

    id: str
    version: str
    url: str
    title: str
    items: tuple[Item, ...]
    questionnaire: dict
    aggregation: str = "sum"
    subscales: tuple[str, ...] = ()
    cutoffs: Cutoffs = field(default_factory=Cutoffs)
    reliable_change: Mapping[str, ReliableChange] = field(default_factory=dict)
    wording: str = "own"
    licence: str | None = None
    document: dict = field(default_factory=dict, repr=False)

    @property
    def sendable(self) -> bool:
        """False for scoring profiles whose licensed wording has not been loaded."""
        return self.wording != "placeholder"

    @property
    def score_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.role == "score")

    def item(self, link_id: str) -> Item:
        """The item with this linkId (KeyError if there is none)."""
        for candidate in self.items:
            if candidate.link_id == link_id:
                return candidate
        raise KeyError(link_id)

    def item_with_role(self, role: str) -> Item | None:
        """The single item playing `role` (tension, resolution…), or None."""
        return next((item for item in self.items if item.role == role), None)

    def scale_items(self, scale: str) -> tuple[Item, ...]:
        """Score items of a subscale, or all score items for "total"."""
        if scale == TOTAL:
            return self.score_items
        return tuple(item for item in self.score_items if item.subscale == scale)

    def scale_range(self, scale: str) -> tuple[float, float]:
        """(lowest, highest) possible score of the total or a subscale."""
        items = self.scale_items(scale)
        low = sum(item.min for item in items)
        high = sum(item.max for item in items)
        if self.aggregation == "mean":
            return low / len(items), high / len(items)
        return low, high

    def public_items(self) -> list[dict]:
        """Item JSON for the survey API (CONTRACT §4)."""
        return [item.public() for item in self.items]

    def describe(self) -> dict:
        """Everything `alliance instruments show` prints: items plus scoring."""
        return {
            "id": self.id,
            "version": self.version,
            "url": self.url,
            "title": self.title,
            "sendable": self.sendable,
            "wording": self.wording,
            "licence": self.licence,
            "items": self.public_items(),
            "scoring": self._describe_scoring(),
        }

    def _describe_scoring(self) -> dict:
        return {
            "aggregation": self.aggregation,
            "total": self._describe_scale(TOTAL),
            "subscales": {name: self._describe_scale(name) for name in self.subscales},
            "cutoffs": self.cutoffs.as_dict(),
        }

    def _describe_scale(self, scale: str) -> dict:
        low, high = self.scale_range(scale)
        described: dict[str, Any] = {
            "items": [item.link_id for item in self.scale_items(scale)],
            "min": low,
            "max": high,
        }
        change = self.reliable_change.get(scale)
        if change is not None:
            described["reliable_change"] = {
                "between_client_sd": change.between_client_sd,
                "reliability": change.reliability,
                "measurement_error": round(change.measurement_error, 3),
                "threshold_95": round(change.threshold(1.96), 2),
                "threshold_90": round(change.threshold(1.645), 2),
            }
        return described


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


@cache
def _builtin() -> tuple[Instrument, ...]:
    folder = resources.files("service") / "instruments"
    loaded = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            loaded.append(load_instrument(json.loads(entry.read_text("utf-8")), entry.name))
    return tuple(loaded)


def builtin_instruments() -> dict[str, Instrument]:
    """The shipped instruments and scoring profiles, by id (loaded once)."""
    return {instrument.id: instrument for instrument in _builtin()}


def instrument_catalogue(extra_dir: str | Path | None = None) -> dict[str, Instrument]:
    """Built-in instruments plus those stored in `extra_dir` (a practice's licensed wording)."""
    catalogue = builtin_instruments()
    if extra_dir is None or not Path(extra_dir).is_dir():
        return catalogue
    for path in sorted(Path(extra_dir).glob("*.json")):
        instrument = load_instrument_file(path)
        existing = catalogue.get(instrument.id)
        if existing is not None and existing.sendable:
            raise InstrumentError(
                str(path), [f"would replace the built-in instrument {instrument.id!r}"]
            )
        catalogue[instrument.id] = instrument
    return catalogue


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


def _plain_number(value: float | None, item_type: str) -> float | int | None:
    if value is None:
        return None
    return int(value) if item_type == "integer" else value
