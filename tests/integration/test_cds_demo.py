"""The demo EHR page (ALLIANCE_DEMO=1) asks the real CDS Hooks service over HTTP, signed with the
demo CDS client's key, and shows its card with the SMART trend link — the whole seam, no fake."""

from __future__ import annotations

import html

import pytest
import requests
from demo_site import DEMO_SECRET, demo_site
from trend_history import DIP, GOOD, seed_history


@pytest.fixture
def site(tmp_path):
    with demo_site(tmp_path) as running:
        yield running


def test_the_demo_ehr_shows_the_services_rupture_card(site):
    seed_history(site.app.test_client(), site.run_due, site.channels, "pat-17",
                 [GOOD, GOOD, DIP], practice_id="demo", secret=DEMO_SECRET, channel="log")
    page = html.unescape(requests.get(f"{site.base_url}/demo/ehr/?patient=pat-17",
                                      timeout=10).text)
    assert "Alliance rupture after the session of" in page
    assert "card-warning" in page
    assert f"{site.base_url}/smart/demo/launch?iss=" in page


def test_the_demo_ehr_shows_no_card_for_a_patient_the_service_does_not_know(site):
    page = requests.get(f"{site.base_url}/demo/ehr/?patient=pat-unknown", timeout=10).text
    assert "No cards for this patient." in page
