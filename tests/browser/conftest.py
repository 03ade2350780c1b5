"""A real server and a real headless Chromium (Debian's package, driven by Playwright).

The app runs with werkzeug's `make_server` in a thread on a free loopback port, on SQLite, with
the real clock and fake delivery channels: the test reads the survey link the channel "sent".
"""

from __future__ import annotations

import threading

import pytest
from browser.harness import CHROMIUM, CHROMIUM_ARGS, PHONE, LiveSite, require_file
from browser.smart_ehr import ehr, ehr_server  # noqa: F401 (fixtures of the SMART tests)
from werkzeug.serving import make_server

from service import practices
from service.bootstrap import bootstrap, utc_now
from service.config import Settings
from service.persistence.db import make_engine
from service.persistence.migrate import upgrade
from service.web import create_app
from support import TEST_SECRET_KEY, practice_document


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    require_file(CHROMIUM, "Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A phone-sized page. CSP is bypassed only so that axe-core can be injected."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, bypass_csp=True)
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


@pytest.fixture
def live(tmp_path):
    """The whole web app on 127.0.0.1:<free port>, stopped after the test."""
    from integrations.delivery.fake import FakeChannel
    from integrations.ehr.fake import InMemoryEhr

    server = make_server("127.0.0.1", 0, app=None, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    database_url = f"sqlite:///{tmp_path / 'alliance.db'}"
    settings = Settings.from_env({
        "ALLIANCE_DATABASE_URL": database_url, "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
        "ALLIANCE_PUBLIC_URL": base_url, "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
        "ALLIANCE_LOG_LEVEL": "WARNING",
    })
    engine = make_engine(database_url)
    upgrade(engine)
    channels = {name: FakeChannel(name) for name in ("sms", "email", "log")}
    fhir_store = InMemoryEhr(utc_now)
    services = bootstrap(settings, engine=engine, ehr_for=lambda _config: fhir_store,
                         channel_for=lambda name, _config: channels[name])
    with engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(practice_document()),
                       now=utc_now())
    site = LiveSite(base_url, services, channels, create_app(services=services))
    server.app = site.app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    thread.join(timeout=5)
    engine.dispose()
