"""Errors raised by the alliance science engine."""

from __future__ import annotations


class DomainError(Exception):
    """Base class for every error the pure domain code raises."""


class InstrumentError(DomainError):
    """An instrument file (or wording file) is broken; the message names what is wrong."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(problems))


class InvalidAnswers(DomainError):
    """A survey response was refused; `errors` maps each linkId to a plain message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{link_id}: {message}" for link_id, message in sorted(errors.items()))
        super().__init__(f"invalid answers: {detail}")
