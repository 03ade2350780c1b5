"""Helpers of the browser tests: the live site, the requirement checks and axe-core."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from service.bootstrap import Services
from service.demo import session_completed, signed_event
from service.persistence.tables import clients, responses, surveys
from support import DEMO_SECRET, ROOT, due_jobs_runner

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}


def require_file(path: Path, what: str) -> None:
    """Skip on a developer machine without it; fail in CI, where tests/setup-browser.sh ran."""
    if path.exists():
        return
    message = f"{what} is missing at {path} (run tests/setup-browser.sh)"
    if os.environ.get("ALLIANCE_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class LiveSite:
    """The service running on a loopback port; makes sent surveys and reads what was stored."""

    base_url: str
    services: Services
    channels: dict
    app: object
    surveys_made: int = 0

    def new_survey(self, locale: str | None = "en") -> str:
        """A survey sent to a new client (contact locale `locale`); returns its link."""
        self.surveys_made += 1
        number = self.surveys_made
        event = session_completed(f"enc-b{number}", f"pat-b{number}", phone="+15551234567")
        if locale is None:
            del event["data"]["contact"]["locale"]
        else:
            event["data"]["contact"]["locale"] = locale
        body, headers = signed_event(DEMO_SECRET, event, when=datetime.now(timezone.utc))
        answered = self.app.test_client().post("/webhooks/northside/events", data=body,
                                               headers=headers)
        assert answered.status_code == 202, answered.get_data(as_text=True)
        self.run_due()
        return self.channels["sms"].sent[-1].link

    def run_due(self) -> None:
        """Run every due job, as the relay and a worker would."""
        due_jobs_runner(self.services)()

    def stored_answers(self, link: str) -> dict | None:
        survey_id = self.services.signer.survey_id(link.rsplit("/s/", 1)[1])
        with self.services.engine.begin() as conn:
            sealed = conn.execute(select(responses.c.sealed_answers).where(
                responses.c.survey_id == survey_id)).scalar()
        return None if sealed is None else self.services.vault.open(sealed)

    def opted_out(self, link: str) -> bool:
        survey_id = self.services.signer.survey_id(link.rsplit("/s/", 1)[1])
        with self.services.engine.begin() as conn:
            row = conn.execute(select(clients.c.opted_out_at).join(surveys, (
                surveys.c.practice_id == clients.c.practice_id) & (
                surveys.c.patient_id == clients.c.patient_id)).where(surveys.c.id == survey_id)).first()
        return row is not None and row[0] is not None



def run_axe(page) -> list[dict]:
    """axe-core's serious and critical violations of WCAG 2.1 A/AA (and best practice) on the page."""
    require_file(AXE, "axe-core")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values:
              ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})""")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "targets": [node["target"] for node in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
