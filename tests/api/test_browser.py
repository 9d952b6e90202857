"""A phone's view: headless Chromium follows a scanned Digital Link to the passport page, whose composition chart,
timeline and verified badge are visible. A screenshot is saved under the test's tmp dir."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api import create_app
from api import versions as passport_versions

from .conftest import GTIN_A, RESOLVER

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_scanned_link_opens_a_verified_passport(world: Any, tmp_path: Path) -> None:
    if world.db != "sqlite":
        pytest.skip("one browser run is enough")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make setup installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    cotton = world.lot()
    item = world.item([(cotton["lotId"], 180)])
    world.act(item, "sold", "retailer")
    world.drain()

    port = _free_port()
    app = create_app(world.settings, world.service, run_worker=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": str(home)}
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, env=env, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 412, "height": 915}, is_mobile=True)
            # Every link names the configured resolver (RESOLVER, as a printed QR code does): its requests are
            # answered by this server, as DNS would send them to it in production. Chromium does not route the
            # redirect of an answer fulfilled here, so the scan's 307 is sent on to this server's own address.
            local = f"http://127.0.0.1:{port}"

            def answer(route: Any) -> None:
                fetched = route.fetch(url=local + route.request.url[len(RESOLVER):], max_redirects=0)
                headers = dict(fetched.headers)
                if "location" in headers:
                    assert headers["location"].startswith(RESOLVER + "/"), headers["location"]
                    headers["location"] = local + headers["location"][len(RESOLVER):]
                route.fulfill(response=fetched, headers=headers)

            page.route(f"{RESOLVER}/**", answer)
            response = page.goto(f"{RESOLVER}/01/{GTIN_A}/21/{item['serial']}")
            assert response is not None and response.ok
            assert "/passport" in page.url  # the 307 to the default link was followed
            for selector in ("svg.donut", "#lifecycle .timeline", "#verification"):
                assert page.locator(selector).first.is_visible(), selector
            assert "Verified" in page.locator("#verification").inner_text()
            shot = tmp_path / "passport.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        # This app shares the world's service: its passport-versions hook must not outlive it (other tests of the
        # world count the versions anchoring makes).
        passport_versions.uninstall(app.state.circular)
