"""The instruments a practice can send: the shipped ones plus those stored in its folder."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

from .errors import InstrumentError
from .instrument_loading import load_instrument, load_instrument_file
from .instruments import Instrument


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
