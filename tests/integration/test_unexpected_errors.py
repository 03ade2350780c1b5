"""An unexpected failure gives a friendly page to clients, problem+json to APIs, and a log
line that names the route but never the client's link token."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from service.web import create_app


@pytest.fixture
def broken_client(services, practice):
    def broken():
        raise RuntimeError("simulated outage")

    services.instruments = broken  # every survey request needs the catalogue
    return create_app(services=services).test_client()


def test_client_page_gets_a_friendly_page_and_the_token_stays_out_of_logs(broken_client, services):
    token = services.signer.token_for("0b5e7c5e-8d3a-4c1f-9a47-3f3c2a4b9d10")
    with capture_logs() as logs:
        page = broken_client.get(f"/s/{token}", headers={"Accept-Language": "es"})
    assert page.status_code == 500
    assert "Algo salió mal" in page.get_data(as_text=True)
    assert token not in repr(logs)
    assert any(entry.get("route") == "/s/<token>" for entry in logs)


def test_api_gets_problem_json(broken_client, services):
    token = services.signer.token_for("0b5e7c5e-8d3a-4c1f-9a47-3f3c2a4b9d10")
    answer = broken_client.get(f"/api/v1/surveys/{token}")
    assert answer.status_code == 500
    assert answer.mimetype == "application/problem+json"
