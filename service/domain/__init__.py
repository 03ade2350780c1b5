"""The alliance science engine: instruments, scoring, rupture and repair (no I/O, no frameworks)."""

from __future__ import annotations

from .catalogue import builtin_instruments, instrument_catalogue
from .errors import DomainError, InstrumentError, InvalidAnswers
from .instrument_loading import load_instrument, load_instrument_file
from .instrument_wording import apply_wording
from .instruments import DEFAULT_INSTRUMENT, Cutoffs, Instrument, Item, ReliableChange
from .ruptures import (
    DECISIONS,
    FLAG_DECISIONS,
    Assessment,
    RuptureRules,
    RuptureTracker,
    SessionObservation,
    assess_series,
)
from .scoring import Scores, score, validate_answers

__all__ = [
    "DECISIONS",
    "DEFAULT_INSTRUMENT",
    "FLAG_DECISIONS",
    "Assessment",
    "Cutoffs",
    "DomainError",
    "Instrument",
    "InstrumentError",
    "InvalidAnswers",
    "Item",
    "ReliableChange",
    "RuptureRules",
    "RuptureTracker",
    "Scores",
    "SessionObservation",
    "apply_wording",
    "assess_series",
    "builtin_instruments",
    "instrument_catalogue",
    "load_instrument",
    "load_instrument_file",
    "score",
    "validate_answers",
]
