"""`alliance instruments …` and `alliance ruptures …`: the science engine on the command line."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import click

from service.domain import (
    DEFAULT_INSTRUMENT,
    Instrument,
    InstrumentError,
    InvalidAnswers,
    RuptureRules,
    RuptureTracker,
    SessionObservation,
    apply_wording,
    builtin_instruments,
    instrument_catalogue,
    load_instrument,
)

PracticeRulesLookup = Callable[[str], Mapping[str, object]]
# Where a practice's licensed instrument wording is stored: Settings.instruments_dir, asked
# for only by the commands that need it (the CLI passes it; this module reads no environment).
InstrumentsDir = Callable[[], Path | None]


def catalogue(instruments_dir: InstrumentsDir) -> dict[str, Instrument]:
    """Built-in instruments plus those loaded into the instruments directory."""
    try:
        return instrument_catalogue(instruments_dir())
    except InstrumentError as error:
        raise click.ClickException(f"broken instrument file: {error}") from error


def register(
    cli_group: click.Group,
    practice_rules_lookup: PracticeRulesLookup | None = None,
    instruments_dir: InstrumentsDir | None = None,
) -> None:
    """Add the `instruments` and `ruptures` command groups to the `alliance` CLI."""
    folder = instruments_dir or (lambda: None)  # none: the built-in instruments only
    cli_group.add_command(_instruments_group(folder))
    cli_group.add_command(_ruptures_group(practice_rules_lookup, folder))


def _instruments_group(instruments_dir: InstrumentsDir) -> click.Group:
    @click.group("instruments")
    def instruments() -> None:
        """The instruments the service can send and score."""

    @instruments.command("list")
    def list_instruments() -> None:
        """One line per instrument: id, version, whether it can be sent, title."""
        for instrument in catalogue(instruments_dir).values():
            status = "sendable" if instrument.sendable else "profile (needs licensed wording)"
            default = " (default)" if instrument.id == DEFAULT_INSTRUMENT else ""
            click.echo(
                f"{instrument.id}\t{instrument.version}\t{status}\t{instrument.title}{default}"
            )

    @instruments.command("show")
    @click.argument("instrument_id")
    def show(instrument_id: str) -> None:
        """The survey item JSON of an instrument, plus its scoring."""
        click.echo(
            json.dumps(_find(catalogue(instruments_dir), instrument_id).describe(), indent=2,
                       ensure_ascii=False)
        )

    @instruments.command("load")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    def load(path: Path) -> None:
        """Check a practice's licensed wording (or a whole instrument) and store it."""
        instrument = _instrument_from_file(path)
        target = _store(instrument, instruments_dir())
        click.echo(f"stored {instrument.id} ({len(instrument.items)} items) in {target}")

    return instruments


def _ruptures_group(practice_rules_lookup: PracticeRulesLookup | None,
                    instruments_dir: InstrumentsDir) -> click.Group:
    @click.group("ruptures")
    def ruptures() -> None:
        """Rupture and repair detection."""

    @ruptures.command("replay")
    @click.option("--practice", "practice_id", help="Use this practice's rule overrides.")
    @click.argument("source", type=click.File("r", encoding="utf-8"))
    @click.pass_context
    def replay_command(ctx: click.Context, practice_id: str | None, source) -> None:
        """Score and assess a JSON-lines history (FILE, or - for stdin); touches no EHR."""
        rules = _rules_for(practice_id, practice_rules_lookup)
        refused = 0
        for outcome in replay(source, catalogue(instruments_dir), rules):
            if outcome.error is not None:
                refused += 1
                click.echo(f"line {outcome.line_number}: {outcome.error}", err=True)
            else:
                click.echo(json.dumps(outcome.output, ensure_ascii=False))
        if refused:
            click.echo(f"{refused} line(s) refused", err=True)
            ctx.exit(1)

    @ruptures.command("rules")
    @click.option("--practice", "practice_id", help="Show this practice's rules.")
    def show_rules(practice_id: str | None) -> None:
        """The rupture-rule thresholds in force (defaults or a practice's)."""
        click.echo(json.dumps(asdict(_rules_for(practice_id, practice_rules_lookup)), indent=2))

    return ruptures


@dataclass(frozen=True)
class ReplayOutcome:
    """One non-blank input line: its output object, or why it was refused."""

    line_number: int
    output: dict | None = None
    error: str | None = None


def replay(
    lines: Iterable[str], instruments: Mapping[str, Instrument], rules: RuptureRules
) -> Iterator[ReplayOutcome]:
    """Run scoring and rupture detection over JSON lines, one tracker per client and instrument."""
    trackers: dict[tuple[str, str], RuptureTracker] = {}
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield ReplayOutcome(
                line_number, output=_replay_line(line, instruments, rules, trackers)
            )
        except _Refused as refused:
            yield ReplayOutcome(line_number, error=str(refused))


class _Refused(Exception):
    """A replay line that cannot be used."""


def _replay_line(
    line: str,
    instruments: Mapping[str, Instrument],
    rules: RuptureRules,
    trackers: dict[tuple[str, str], RuptureTracker],
) -> dict:
    record = _parse_record(line)
    instrument = instruments.get(record["instrument"])
    if instrument is None:
        raise _Refused(f"instrument: unknown instrument {record['instrument']!r}")
    key = (record["client_id"], instrument.id)
    tracker = trackers.get(key) or RuptureTracker(instrument, rules)
    observation = SessionObservation(record["session_id"], record["ended_at"], record["answers"])
    try:
        assessment = tracker.assess(observation)
    except InvalidAnswers as error:
        details = "; ".join(f"{link}: {message}" for link, message in sorted(error.errors.items()))
        raise _Refused(f"answers: {details}") from error
    trackers[key] = tracker
    return {
        "client_id": record["client_id"],
        "session_id": record["session_id"],
        "scores": assessment.scores.as_dict() if assessment.scores else None,
        "decision": assessment.decision,
        "reasons": list(assessment.reasons),
    }


def _parse_record(line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _Refused(f"not valid JSON ({error.msg}, column {error.colno})") from error
    if not isinstance(record, dict):
        raise _Refused("must be a JSON object")
    problems = [
        f"{key}: required, non-empty text"
        for key in ("client_id", "session_id")
        if not isinstance(record.get(key), str) or not record[key].strip()
    ]
    instrument_id = record.get("instrument", DEFAULT_INSTRUMENT)
    if not isinstance(instrument_id, str):
        problems.append("instrument: must be text")
    if "answers" not in record:
        problems.append("answers: required (null for a survey not returned)")
    elif record["answers"] is not None and not isinstance(record["answers"], dict):
        problems.append("answers: must be an object or null")
    ended_at = _parse_time(record.get("ended_at"), problems)
    if problems:
        raise _Refused("; ".join(problems))
    return {**record, "instrument": instrument_id, "ended_at": ended_at}


def _parse_time(value: object, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        return datetime.fromisoformat(value)
    except ValueError:
        problems.append("ended_at: must be an ISO 8601 date-time or null")
        return None


def _rules_for(practice_id: str | None, lookup: PracticeRulesLookup | None) -> RuptureRules:
    if practice_id is None:
        return RuptureRules()
    if lookup is None:
        raise click.ClickException(
            "--practice is not available here: this command was started without access to the "
            "practice store; run it without --practice to use the default rules"
        )
    try:
        overrides = lookup(practice_id)
    except KeyError as error:
        raise click.ClickException(f"unknown practice {practice_id!r}") from error
    try:
        return RuptureRules.from_overrides(overrides)
    except ValueError as error:
        raise click.ClickException(
            f"practice {practice_id!r} has invalid rupture rules: {error}"
        ) from error


def _find(instruments: Mapping[str, Instrument], instrument_id: str) -> Instrument:
    if instrument_id not in instruments:
        known = ", ".join(sorted(instruments))
        raise click.ClickException(f"unknown instrument {instrument_id!r} (known: {known})")
    return instruments[instrument_id]


def _instrument_from_file(path: Path) -> Instrument:
    try:
        document = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: not valid JSON ({error})") from error
    try:
        if isinstance(document, dict) and "questionnaire" in document:
            return _new_instrument(load_instrument(document, str(path)))
        return apply_wording(_profile_for(document, path), document, str(path))
    except InstrumentError as error:
        raise click.ClickException(str(error)) from error


def _new_instrument(instrument: Instrument) -> Instrument:
    builtin = builtin_instruments().get(instrument.id)
    if builtin is not None and builtin.sendable:
        raise click.ClickException(
            f"{instrument.id!r} is a built-in instrument and cannot be replaced"
        )
    return instrument


def _profile_for(document: object, path: Path) -> Instrument:
    instrument_id = document.get("instrument") if isinstance(document, dict) else None
    if not isinstance(instrument_id, str):
        raise click.ClickException(
            f"{path}: instrument: required, the id of the profile this wording is for"
        )
    # Wording always starts from the shipped profile, so loading it again replaces it cleanly.
    profiles = {key: value for key, value in builtin_instruments().items() if not value.sendable}
    if instrument_id not in profiles:
        known = ", ".join(sorted(profiles))
        raise click.ClickException(
            f"{path}: instrument: {instrument_id!r} is not a scoring profile (profiles: {known})"
        )
    return profiles[instrument_id]


def _store(instrument: Instrument, folder: Path | None) -> Path:
    if folder is None:
        raise click.ClickException("no instruments directory is configured to store it in")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{instrument.id}.json"
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=folder, delete=False, suffix=".tmp"
    ) as handle:
        json.dump(instrument.document, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(handle.name, target)
    return target
