"""The demo EHR (ALLIANCE_DEMO=1): its page, and a real SMART EHR launch against its
authorization server in the same process, over HTTP; and none of it without the demo flag."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from demo_site import DEMO_SECRET, demo_site
from trend_history import DIP, GOOD, seed_history


@pytest.fixture
def site(tmp_path):
    with demo_site(tmp_path) as running:
        yield running


def follow_launch(session: requests.Session, site) -> requests.Response:
    page = session.get(f"{site.base_url}/demo/ehr/?patient=pat-17", timeout=10)
    assert page.status_code == 200
    launch_url = re.search(r'class="launch" href="([^"]+)"', page.text).group(1)
    return session.get(launch_url.replace("&amp;", "&"), timeout=10)


def test_the_trend_link_is_a_real_smart_launch_that_ends_on_the_patients_view(site):
    client = site.app.test_client()
    seed_history(client, site.run_due, site.channels, "pat-17", [GOOD, GOOD, DIP],
                 practice_id="demo", secret=DEMO_SECRET, channel="log")

    with requests.Session() as browser:
        view = follow_launch(browser, site)
        hops = [urlsplit(r.url).path for r in view.history]

    assert hops == ["/smart/demo/launch", "/demo/ehr/authorize", "/smart/demo/callback"]
    assert view.status_code == 200 and urlsplit(view.url).path == "/smart/demo/view"
    assert "pat-17" in view.text and "Alliance rupture" in view.text
    assert "Practitioner/demo-clinician" in view.text  # from the demo EHR's verified id_token
    assert f"frame-ancestors {site.base_url}" in view.headers["Content-Security-Policy"]


def test_the_demo_authorization_server_checks_pkce_client_and_single_use(site):
    with requests.Session() as browser:
        page = browser.get(f"{site.base_url}/demo/ehr/", timeout=10)
        launch_url = re.search(r'class="launch" href="([^"]+)"', page.text).group(1)
        to_authorize = browser.get(launch_url.replace("&amp;", "&"), allow_redirects=False,
                                   timeout=10).headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(to_authorize).query).items()}
        code = parse_qs(urlsplit(browser.get(to_authorize, allow_redirects=False, timeout=10)
                                 .headers["Location"]).query)["code"][0]
    token_url = f"{site.base_url}/demo/ehr/token"
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": "x" * 50,
            "redirect_uri": query["redirect_uri"]}
    client = ("alliance-trend-demo", "demo-only-client-secret-not-for-production")

    wrong_secret = requests.post(token_url, data=form, auth=(client[0], "wrong"), timeout=10)
    assert wrong_secret.status_code == 401
    wrong_verifier = requests.post(token_url, data=form, auth=client, timeout=10)
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    # The code was spent by the refused attempt, as a real server spends it.
    assert requests.post(token_url, data=form, auth=client, timeout=10).json()[
        "error_description"] == "code already used"


def test_the_demo_page_asks_for_cds_cards_or_says_why_there_are_none(site):
    page = requests.get(f"{site.base_url}/demo/ehr/", timeout=10)

    assert page.status_code == 200
    assert "Decision support (CDS Hooks cards)" in page.text
    assert "frame-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'iframe name="trend"' in page.text


def test_without_the_demo_flag_there_is_no_demo_ehr(services):
    from service.web import create_app

    client = create_app(services=services).test_client()
    for path in ("/demo/ehr/", "/demo/fhir/.well-known/smart-configuration", "/demo/ehr/jwks"):
        assert client.get(path).status_code == 404


def test_cards_from_the_cds_service_show_with_their_smart_link_launching_the_app(
        site, httpserver, monkeypatch):
    """The seam to the CDS Hooks service (service/clinician/cds_client.py, built beside this):
    the page signs a patient-view request with the demo key, shows the cards, and a card's
    `smart` link gets the launch parameters, as an EHR appends them."""
    import sys
    import types
    from dataclasses import dataclass

    from service import practices

    calls = []

    @dataclass(frozen=True)
    class Signed:
        method: str
        url: str
        headers: dict
        body: dict

    def hook_request(base_url, practice_id, patient_id, private_jwk, iss, **options):
        calls.append((base_url, practice_id, patient_id, iss, options))
        return Signed("POST", httpserver.url_for("/cds-services/alliance-patient-view"),
                      {"Authorization": "Bearer signed"}, {"context": {"patientId": patient_id}})

    fake = types.ModuleType("service.clinician.cds_client")
    fake.demo_cds_client = lambda settings: types.SimpleNamespace(iss="demo-iss", private_jwk={})
    fake.hook_request = hook_request
    monkeypatch.setitem(sys.modules, "service.clinician.cds_client", fake)
    card = {"uuid": "c1", "summary": "Alliance rupture: tension reported <b>4 of 5</b>",
            "indicator": "warning", "detail": "Reasons…", "source": {"label": "alliance-feedback"},
            "links": [{"label": "Alliance trend", "type": "smart",
                       "url": f"{site.base_url}/smart/demo/launch"}]}
    httpserver.expect_request("/cds-services/alliance-patient-view", method="POST",
                              headers={"Authorization": "Bearer signed"}).respond_with_json(
        {"cards": [card]})
    with site.services.engine.begin() as conn:  # the CDS section that work adds to the demo
        document = practices.load(conn, site.services.box, "demo").document
        practices.save(conn, site.services.box, {**document, "cds_hooks": {"clients": []}},
                       now=site.services.clock())

    page = requests.get(f"{site.base_url}/demo/ehr/?patient=pat-17", timeout=10)

    assert calls == [(site.base_url, "demo", "pat-17", "demo-iss",
                      {"user_id": "Practitioner/demo-clinician"})]
    assert "Alliance rupture: tension reported &lt;b&gt;4 of 5&lt;/b&gt;" in page.text
    link = re.search(r'<a href="([^"]+)" target="trend">Alliance trend</a>', page.text).group(1)
    assert link.startswith(f"{site.base_url}/smart/demo/launch?iss=")
    with requests.Session() as browser:
        view = browser.get(link.replace("&amp;", "&"), timeout=10)
    assert view.status_code == 200 and urlsplit(view.url).path == "/smart/demo/view"
