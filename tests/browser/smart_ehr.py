"""The fake EHR of the SMART browser tests: its own loopback server (another origin) whose
`/ehr` page frames the app with a real EHR launch, and the practice and histories it shows:
pat-17 (the STORY, ending on an open rupture) and pat-99 (steady). Its fixtures are exposed to
every browser test by conftest.py."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer
from smart_fake import CLIENT_ID, CLIENT_SECRET, FakeSmartServer
from trend_history import GOOD, STORY, seed_history
from werkzeug import Response

from service import practices
from support import practice_document

SIDE_PANEL = 360
EHR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake EHR</title>
<style>body{{margin:0;display:flex;font-family:sans-serif}}main{{flex:1;padding:1rem}}
aside{{width:{width}px;border-left:2px solid #555}}
iframe{{border:0;width:{width}px;height:{height}px}}
</style></head><body><main><h1>Chart: {patient}</h1></main><aside>
<iframe title="Alliance trend" src="{src}"></iframe></aside></body></html>"""


@pytest.fixture
def ehr_server():
    # Its own server on 127.0.0.1, like the app: same site, another origin. (A real EHR is
    # another site: there the cookies are Secure; SameSite=None; Partitioned, over https.)
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def ehr(ehr_server, live):
    httpserver = ehr_server
    fake = FakeSmartServer(httpserver, redirect_uri=f"{live.base_url}/smart/northside/callback")

    def ehr_page(request):
        patient = request.args.get("patient", "pat-17")
        src = fake.launch_url(live.base_url, "northside", fake.new_launch(patient))
        height = int(request.args.get("height", "1500"))
        return Response(EHR_PAGE.format(width=SIDE_PANEL, height=height, patient=patient,
                                        src=src.replace("&", "&amp;")),
                        content_type="text/html; charset=utf-8")

    httpserver.expect_request("/ehr").respond_with_handler(ehr_page)
    document = practices.validate_document(practice_document(smart_app={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuers": [fake.iss],
        "frame_ancestors": [fake.origin]}))
    with live.services.engine.begin() as conn:
        practices.save(conn, live.services.box, document, now=live.services.clock())
    client = live.app.test_client()
    seed_history(client, live.run_due, live.channels, "pat-17", STORY)
    seed_history(client, live.run_due, live.channels, "pat-99", [GOOD, GOOD])
    return fake


def open_in_ehr(page, ehr, patient: str = "pat-17"):
    page.goto(f"{ehr.origin}/ehr?patient={patient}")
    frame = page.frame_locator("iframe[title='Alliance trend']")
    frame.get_by_role("heading", name="Alliance trend", level=1).wait_for()
    return page.frame(url=lambda url: "/smart/northside/view" in url)
