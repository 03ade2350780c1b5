"""The demo (ALLIANCE_DEMO=1) served on a free loopback port, with deploy/demo-practice.json
applied for that port, the real clock and fake delivery channels."""

from __future__ import annotations

import contextlib
import json
import threading

from browser.harness import LiveSite
from werkzeug.serving import make_server

from service import practices
from service.bootstrap import bootstrap, utc_now
from service.config import Settings
from service.persistence.db import make_engine
from service.persistence.migrate import upgrade
from service.web import create_app
from support import ROOT, TEST_SECRET_KEY

DEMO_SECRET = "whsec_ZGVtby1vbmx5LWRvLW5vdC11c2UtaW4tcHJvZHVjdGlvbg=="


@contextlib.contextmanager
def demo_site(tmp_path):
    from integrations.delivery.fake import FakeChannel
    from integrations.ehr.fake import InMemoryEhr

    server = make_server("127.0.0.1", 0, app=None, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    database_url = f"sqlite:///{tmp_path / 'alliance.db'}"
    settings = Settings.from_env({
        "ALLIANCE_DATABASE_URL": database_url, "ALLIANCE_SECRET_KEY": TEST_SECRET_KEY,
        "ALLIANCE_PUBLIC_URL": base_url, "ALLIANCE_VAR_DIR": str(tmp_path / "var"),
        "ALLIANCE_LOG_LEVEL": "WARNING", "ALLIANCE_DEMO": "1"})
    engine = make_engine(database_url)
    upgrade(engine)
    channels = {name: FakeChannel(name) for name in ("sms", "email", "log")}
    ehr = InMemoryEhr(utc_now)
    services = bootstrap(settings, engine=engine, ehr_for=lambda _config: ehr,
                         channel_for=lambda name, _config: channels[name])
    text = (ROOT / "deploy" / "demo-practice.json").read_text()
    document = json.loads(text.replace("http://127.0.0.1:8000", base_url))
    with engine.begin() as conn:
        practices.save(conn, services.box, practices.validate_document(document), now=utc_now())
    site = LiveSite(base_url, services, channels, create_app(services=services, host="127.0.0.1"))
    server.app = site.app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        thread.join(timeout=5)
        engine.dispose()
