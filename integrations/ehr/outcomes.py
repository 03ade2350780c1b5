"""OperationOutcome in words: what an EHR said went wrong, for error messages and the DLQ.

The outcome comes from another system, so nothing about its shape is trusted: parts that are
not what FHIR says they are are left out rather than failing the description.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_MESSAGE_DETAIL = 500
MAX_LINE = 200


def describe_outcome(outcome: Mapping | None) -> str:
    """Every issue of an OperationOutcome, short: "error/invalid … at Flag.subject; …"."""
    return "; ".join(_issue_text(issue) for issue in _issues(outcome))[:MAX_MESSAGE_DETAIL]


def first_issue(outcome: Mapping | None, limit: int = MAX_LINE) -> str:
    """The first issue on one line (newlines and tabs folded), at most `limit` characters."""
    issues = _issues(outcome)
    if not issues:
        return ""
    line = " ".join(_issue_text(issues[0]).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _issues(outcome: Mapping | None) -> list[Mapping]:
    issues = outcome.get("issue") if isinstance(outcome, Mapping) else None
    return [issue for issue in issues if isinstance(issue, Mapping)] if isinstance(
        issues, list) else []


def _issue_text(issue: Mapping) -> str:
    details = issue.get("details") if isinstance(issue.get("details"), Mapping) else {}
    text = issue.get("diagnostics") or details.get("text")
    where = ", ".join(_strings(issue.get("expression")) or _strings(issue.get("location")))
    label = f"{issue.get('severity', '?')}/{issue.get('code', '?')}"
    parts = (label, text if isinstance(text, str) else None, f"at {where}" if where else None)
    return " ".join(part for part in parts if part)


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
