"""`alliance ruptures what-if` and `alliance alerts report`: tuning the rupture rules against a
practice's own history, and what was done about the alerts (docs/alerts.md). Counts only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields

import click

from service.cli_privacy import _actor, _since
from service.domain.governance import Figures, GovernanceReport
from service.domain.rupture_rules import RuptureRules
from service.domain.scoring import plain_number
from service.domain.what_if import EpisodeCounts, WhatIf

COUNT_ROWS = (("alerts", "alerts (episodes opened)"), ("repairs", "repairs"),
              ("unresolved", "unresolved episodes"), ("open_at_end", "still open at the end"),
              ("clients_affected", "clients affected"))


def register(main: click.Group, services: Callable) -> None:
    """`what-if` in the `ruptures` group (cli_science registers it first), and `alerts`."""
    main.get_command(click.Context(main), "ruptures").add_command(_what_if_command(services))
    main.add_command(_alerts_group(services))


def _what_if_command(services: Callable) -> click.Command:
    @click.command("what-if")
    @click.option("--practice", "practice_id", required=True)
    @click.option("--set", "settings", multiple=True, required=True, metavar="NAME=VALUE",
                  help="A rule and its proposed value (repeatable), e.g. repair_window=4.")
    def what_if_command(practice_id: str, settings: tuple[str, ...]) -> None:
        """Replay the practice's stored history under its rules and under them with the --set
        changes; print the alerts, repairs and unresolved episodes each would have produced.

        Reads every client's answers (one audit row per run); prints counts only."""
        from service.handlers import governance

        changes = parse_settings(settings)
        try:
            result, current, proposed = governance.what_if_rules(
                services(), practice_id, changes, _actor())
        except governance.RefusedChanges as error:
            raise click.ClickException(f"--set refused, nothing was replayed: {error} (the "
                                       "rules and their values: alliance ruptures rules)") from None
        except governance.UnknownPractice:
            raise click.ClickException(f"unknown practice {practice_id!r}") from None
        except governance.NoHistory:
            raise click.ClickException(f"practice {practice_id!r} has no stored survey history "
                                       "to replay yet") from None
        except governance.UnknownInstruments as error:
            raise click.ClickException("the history uses instruments no longer loaded: "
                                       f"{', '.join(error.args[0])}") from None
        click.echo(what_if_table(practice_id, result, current, proposed))

    return what_if_command


def parse_settings(settings: tuple[str, ...]) -> dict[str, object]:
    """NAME=VALUE pairs into rule overrides: values read as JSON (3, 2.5, true), else text
    (which the rules' validation then refuses by name)."""
    changes: dict[str, object] = {}
    for setting in settings:
        name, equals, text = setting.partition("=")
        name = name.strip()
        if not equals or not name or not text.strip():
            raise click.BadParameter(f"{setting!r}: expected NAME=VALUE, e.g. repair_window=4",
                                     param_hint="--set")
        if name in changes:
            raise click.BadParameter(f"{name}: set twice", param_hint="--set")
        try:
            changes[name] = json.loads(text)
        except ValueError:
            changes[name] = text
    return changes


def what_if_table(practice_id: str, result: WhatIf, current: RuptureRules,
                  proposed: RuptureRules) -> str:
    """The side-by-side table the command prints."""
    changed = [f"{name} {_value(getattr(current, name))} → {_value(getattr(proposed, name))}"
               for name in (f.name for f in fields(RuptureRules))
               if getattr(current, name) != getattr(proposed, name)]
    lines = [f"practice {practice_id}: {result.clients} client(s), {result.sessions} session(s) "
             f"replayed ({result.returned} returned, {result.sessions - result.returned} not "
             "returned)",
             f"proposed: {'; '.join(changed) or 'no change from the rules in force'}", "",
             f"{'':<26}{'current':>9}{'proposed':>10}{'difference':>12}"]
    difference = result.difference
    for name, words in COUNT_ROWS:
        lines.append(f"{words:<26}{_count(result.current, name):>9}"
                     f"{_count(result.proposed, name):>10}{_signed(_count(difference, name)):>12}")
    return "\n".join(lines)


def _count(counts: EpisodeCounts, name: str) -> int:
    return getattr(counts, name)


def _signed(number: int) -> str:
    return f"{number:+d}" if number else "0"


def _value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else plain_number(value)


def _alerts_group(services: Callable) -> click.Group:
    @click.group("alerts")
    def alerts() -> None:
        """What was done about the alerts (open ruptures): governance figures."""

    @alerts.command("report")
    @click.option("--practice", "practice_id", default=None, help="Only this practice.")
    @click.option("--since", default=None, help="Episodes opened at or after this ISO 8601 "
                  "date or time (UTC unless it says); default: all.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def report(practice_id: str | None, since: str | None, as_json: bool) -> None:
        """Per practice and overall, for the ruptures opened since DATE: how many, the share
        acknowledged, snoozed, escalated and repaired, the time from the alert to the first
        acknowledgment (median, 90th percentile), and how many are open now."""
        from service.handlers.governance import alerts_report

        found = alerts_report(services(), practice_id, _since(since))
        if as_json:
            click.echo(json.dumps(report_document(found, since), indent=2))
        elif not found.by_practice:
            click.echo("no rupture episodes opened" + (f" since {since}" if since else ""))
        else:
            click.echo(report_table(found))

    return alerts


REPORT_HEADER = ("practice", "ruptures", "acknowledged", "snoozed", "escalated", "repaired",
                 "open now", "to ack: median", "p90")


def report_table(found: GovernanceReport) -> str:
    rows = [REPORT_HEADER]
    rows += [_report_row(practice, figures) for practice, figures in found.by_practice.items()]
    rows.append(_report_row("all practices", found.overall))
    widths = [max(len(row[column]) for row in rows) for column in range(len(REPORT_HEADER))]
    return "\n".join("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(row, widths)))
                     for row in rows)


def _report_row(name: str, figures: Figures) -> tuple[str, ...]:
    return (" ".join(name.split()), str(figures.ruptures),
            *(_share(figures, getattr(figures, count))
              for count in ("acknowledged", "snoozed", "escalated", "repaired")),
            str(figures.open_now), _duration(figures.ack_median_seconds),
            _duration(figures.ack_p90_seconds))


def _share(figures: Figures, count: int) -> str:
    share = figures.share(count)
    return "-" if share is None else f"{count} ({share:.0%})"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours = seconds / 3600
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def report_document(found: GovernanceReport, since: str | None) -> dict:
    return {"since": since, "overall": asdict(found.overall),
            "practices": {practice: asdict(figures)
                          for practice, figures in found.by_practice.items()}}
