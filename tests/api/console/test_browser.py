"""The console's journeys in headless Chromium (Debian's, driven by Playwright) on a phone's viewport (390 px):

- a brand signs in with its key, adds a product, imports a CSV of lots, makes a run of 100 (the seconds counted
  while it lands) and downloads its label sheet, every label of which decodes (pdftoppm + zxing-cpp);
- a retailer records the sale of 50 items by pasting their serials (and, later, their return);
- a recycler signs in with a one-time link, scans an item with the camera (Chromium's fake capture of a QR code,
  decoded in the page by zxing-wasm), pastes the other 49, collects all 50 in one action and recycles them into a
  recovered lot (a mass above the items' is refused in plain words first);
- the brand's material-flow page then shows the recovered grams, and draws its charts.

On the way: a double click registers one lot; the recycler's session expires with 50 items in its list, which stay
there through signing in again; the recycler approves grams of its recovered lot to the brand, which sees it among
its lots; a refused sign-in and a page that is not found.

On the embedded default (in-process chain, SQLite) and once on Anvil and PostgreSQL. axe-core (pinned through npm)
runs inside every page the console has (the test fails when a console page was not checked): no serious or critical
violation. No page logs an error (a script or a style the Content-Security-Policy refused would). One browser
serves every test of the session.
``CIRCULAR_CONSOLE_SCREENSHOTS=<dir>`` saves the main pages' screenshots there (``docs/console`` holds them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.routing import APIRoute
from PIL import Image
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select, update

from api import create_app
from api import versions as passport_versions
from api.models import Actor, ConsoleSession, Item, Lot, utcnow
from api.qr import qr_png
from api.routes.console import issue_sign_in_link
from api.uris import item_uri
from ledger.client import ItemState
from tests.conftest import ROOT

from ..conftest import GTIN_A, _make_world
from .test_labels import decode_sheet

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
CAMERA_SIZE = (640, 480)
SCREENSHOTS = os.environ.get("CIRCULAR_CONSOLE_SCREENSHOTS")
# Console routes that answer with something other than a page (a file to download).
NOT_PAGES = {"/console/import/example.csv", "/console/runs/{run_id}/labels.pdf"}
# Pages a form's post answers with (no GET of their own).
POSTED_PAGES = {"/console/import/preview", "/console/import/commit"}
NOT_FOUND = "(not found)"


def _get_routes(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """The paths of GET routes, through included routers (FastAPI keeps an included router whole, with its prefix)."""
    for route in routes:
        if isinstance(route, APIRoute):
            if "GET" in route.methods:
                yield prefix + route.path
        elif hasattr(route, "original_router"):
            yield from _get_routes(route.original_router.routes, prefix + route.include_context.prefix)


def console_pages(app: Any) -> dict[str, re.Pattern[str]]:
    """Every page of the console, by its route's path: each GET route, and the pages posted forms answer with."""
    paths = {path for path in _get_routes(app.routes)
             if path.startswith("/console") and not path.startswith("/console/api/")}
    paths = (paths - NOT_PAGES) | POSTED_PAGES
    return {path: re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))) for path in paths}


def write_y4m(path: Path, uris: list[str], frames_each: int = 10) -> None:
    """A Y4M video (what Chromium's fake camera plays, in a loop) showing each URI's QR code in turn."""
    width, height = CAMERA_SIZE
    chroma = bytes([128]) * (width // 2 * height // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for uri in uris or [""]:
            frame = Image.new("L", CAMERA_SIZE, 255)
            if uri:
                code = Image.open(BytesIO(qr_png(uri))).convert("L")
                side = 360
                frame.paste(code.resize((side, side), Image.Resampling.NEAREST),
                            ((width - side) // 2, (height - side) // 2))
            for _ in range(frames_each):
                out.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)


@dataclass
class Chromium:
    browser: Any
    camera: Path
    axe_source: str


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make setup installs it)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make setup)")
    if not (ROOT / "api" / "static" / "console" / "vendor" / "zxing_reader.wasm").exists():
        pytest.fail("the console's browser code is not built: run `make setup` (scripts/console_assets.py)")
    home = tmp_path_factory.mktemp("chromium-home")
    camera = home / "camera.y4m"
    write_y4m(camera, [])
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": str(home)}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            env=env,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                  f"--use-file-for-fake-video-capture={camera}"],
        )
        yield Chromium(browser, camera, AXE.read_text())
        browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def served(world: Any) -> Iterator[str]:
    """The world's app behind a real HTTP server (uvicorn in a thread); its base URL."""
    port = _free_port()
    app = create_app(world.settings, world.service, run_worker=False,
                     api_settings=world.client.app.state.circular.api_settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        # This app shares the world's service: its passport-versions hook must not outlive it (other tests of the
        # world count the versions anchoring makes).
        passport_versions.uninstall(app.state.circular)


@dataclass
class Phone:
    """A browser context of its own (its own cookies) on a phone's viewport, checking every page it shows."""

    chromium: Chromium
    base: str
    shots: Path | None
    pages: dict[str, re.Pattern[str]]
    page: Any = None
    errors: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        context = self.chromium.browser.new_context(**PHONE, accept_downloads=True, permissions=["camera"],
                                                    device_scale_factor=2 if self.shots else 1)
        context.set_default_timeout(30_000)
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: Any) -> None:
        # A form refused in plain words is answered with its 4xx status, which Chromium logs as a failed load; so is
        # a page or a code looked up that is not found (but a file of the page's own that is not found is an error).
        if message.type != "error" or re.search(r"status of (401|409|422) ", message.text):
            return
        if re.search(r"status of 404 ", message.text) and "/static/" not in str(message.location.get("url", "")):
            return
        self.errors.append(message.text)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, (path, response.status if response else None)
        return response

    def check(self, shot: str | None = None) -> None:
        """axe-core inside the page: no serious or critical violation; no error logged; the screenshot, if asked."""
        self.page.evaluate(self.chromium.axe_source + ";0")
        violations = self.page.evaluate(
            """() => axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
                 .filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`))"""
        )
        assert violations == [], (self.page.url, violations)
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["viewport"]["width"], (self.page.url, f"{width} px wide: the page scrolls sideways")
        assert self.errors == [], (self.page.url, self.errors)
        path = self.page.url.split("?")[0].replace(self.base, "")
        if self.page.title().startswith("Not found"):
            path = NOT_FOUND
        self.checked.append(next((route for route, pattern in self.pages.items() if pattern.fullmatch(path)), path))
        if shot and self.shots:  # the page's top, at most two and a half phone screens
            height = min(int(self.page.evaluate("document.documentElement.scrollHeight")), 2_100)
            png = self.page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": PHONE["viewport"]["width"],
                                                             "height": height})
            # 256 colours are plenty for a page of text and flat colours: a third of the bytes in the repository.
            Image.open(BytesIO(png)).quantize(256).save(self.shots / f"{shot}.png", optimize=True)

    def close(self) -> None:
        self.page.context.close()


def _recorded(page: Any, count: int) -> None:
    """Wait until the scanning page has recorded `count` items; say which were refused, and why, if not."""
    done = page.locator("#progress-text")
    expect(done).not_to_contain_text("Sending", timeout=120_000)
    expect(done).not_to_contain_text(" sent: ", timeout=120_000)
    text = done.inner_text()
    assert text.startswith(f"{count} of {count} recorded"), (text, page.locator("#basket").inner_text())


def _text(phone: Phone, selector: str) -> str:
    return str(phone.page.locator(selector).inner_text())


def _grams(text: str) -> int:
    return int(text.replace(",", "").replace("\xa0", " ").split()[0])


def journeys(world: Any, chromium: Chromium, tmp: Path) -> list[str]:
    shots = Path(SCREENSHOTS) if SCREENSHOTS and world.db == "sqlite" else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    checked: list[str] = []
    pages = console_pages(world.client.app)
    with served(world) as base:
        # -- a brand: sign in, a product, a CSV of lots, a run of 100, its label sheet ----------------------------
        brand = Phone(chromium, base, shots, pages)
        page = brand.page
        brand.go("/console/items")
        assert "/console/sign-in" in page.url
        brand.check("sign-in")
        # A wrong key: refused in plain words next to the field, which is empty again (the key is never echoed).
        page.fill("#f-api_key", "clk_" + "x" * 43)
        page.click("#key-form button[type=submit]")
        expect(page.locator("#e-api_key")).to_contain_text("This API key is not valid")
        assert page.input_value("#f-api_key") == "" and page.get_attribute("#f-api_key", "aria-invalid") == "true"
        brand.check()
        # With the keyboard alone: Tab to the key's field, type it, Enter.
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "f-api_key":
                break
        assert page.evaluate("document.activeElement.id") == "f-api_key"
        page.keyboard.type(world.keys["brand"])
        page.keyboard.press("Enter")
        page.wait_for_url(base + "/console/items")
        assert world.keys["brand"] not in page.content()
        brand.go("/console")
        brand.check()
        brand.go("/console/products")
        brand.check()
        page.fill("#f-gtin", GTIN_A)
        page.fill("#f-name", "Organic cotton T-shirt")
        page.fill("#f-care", "Wash at 30 °C, inside out.")
        page.click("form[action='/console/products'] button[type=submit]")
        page.wait_for_url(f"{base}/console/products/{GTIN_A}?ok=saved")
        brand.check()
        numbers = [world.unique("BL") for _ in range(3)]
        lots_csv = ("lot_number,material_code,mass_grams,recycled_share,origin\n"
                    f"{numbers[0]},CO,250000,0,Gujarat\n{numbers[1]},PES,80000,30,\n{numbers[2]},CO,1000,0,\n")
        brand.go("/console/import")
        brand.check()
        page.set_input_files("#f-file", files=[{"name": "lots.csv", "mimeType": "text/csv",
                                                 "buffer": lots_csv.encode()}])
        page.click("form[action='/console/import/preview'] button[type=submit]")
        page.wait_for_url(base + "/console/import/preview")
        assert "Every row passed" in _text(brand, "#ready")
        brand.check("import-preview")
        page.click("#ready button[type=submit]")
        page.wait_for_url(base + "/console/import/commit")
        assert "3 written" in _text(brand, "#imported")
        brand.check()
        brand.go("/console/lots")
        for number in numbers:
            assert number in _text(brand, "#lots")
        brand.check()
        with world.service.sessions() as session:
            cotton = session.scalar(select(Lot).where(Lot.lot_number == numbers[0]))
            assert cotton is not None
            cotton_id = cotton.lot_id
        # A double click on a write sends it once.
        single = world.unique("DL")
        page.fill("#f-lot_number", single)
        page.fill("#f-mass_grams", "5000")
        page.dblclick("form[action='/console/lots'] button[type=submit]")
        page.wait_for_url(f"{base}/console/lots/**")
        with world.service.sessions() as session:
            assert len(session.scalars(select(Lot).where(Lot.lot_number == single)).all()) == 1
        assert f"Lot {single}" in _text(brand, "h1") and "5,000" in _text(brand, "#left")
        brand.check()
        brand.go("/console/partners")
        assert "Retailer" in _text(brand, "main") and "Recycler" in _text(brand, "main")
        brand.check()
        # A page that is not there (or not the brand's): a page of its own, in plain words.
        missing = page.goto(base + "/console/runs/0x" + "0" * 64)
        assert missing is not None and missing.status == 404
        assert "There is no such page" in _text(brand, "main")
        brand.check()
        brand.go("/console/items")
        prefix = world.unique("B") + "-"
        page.fill("#f-run_gtin", GTIN_A)
        page.fill("#f-run_count", "100")
        page.fill("#f-run_prefix", prefix)
        page.select_option("#f-run_lot_0", cotton_id)
        page.fill("#f-run_grams_0", "180")
        brand.check()
        # While the run lands (held back here for 2.5 s), the page counts the seconds and its button cannot be
        # clicked again: what the form shows is kept in sessionStorage, which outlives the page.
        page.evaluate("""() => {
            const form = document.querySelector("form[action='/console/runs']");
            const seen = [];
            new MutationObserver(() => {
                seen.push([form.querySelector(".progress-box").hidden,
                           form.querySelector(".progress-text").textContent,
                           form.querySelector("button[type=submit]").disabled]);
                sessionStorage.setItem("run-progress", JSON.stringify(seen));
            }).observe(form, {subtree: true, childList: true, characterData: true, attributes: true});
        }""")
        page.route("**/console/runs", lambda route: (time.sleep(2.5), route.continue_()))
        page.click("form[action='/console/runs'] button[type=submit]")
        page.wait_for_url(f"{base}/console/runs/**")
        page.unroute("**/console/runs")
        seen = json.loads(page.evaluate("sessionStorage.getItem('run-progress')"))
        assert [False, "Registering the run in one transaction… 1 s", True] in seen, seen
        assert "Run of 100" in _text(brand, "h1")
        brand.check("run")
        with page.expect_download() as download:
            page.click("a.label-sheet[href$='paper=a4']")
        pdf = Path(download.value.path()).read_bytes()
        sheet_dir = tmp / f"labels-{world.db}"
        sheet_dir.mkdir()
        serials = [f"{prefix}{n:05d}" for n in range(1, 101)]
        expected = [item_uri(world.settings.resolver_base_url, GTIN_A, serial) for serial in serials]
        assert decode_sheet(pdf, "a4", sheet_dir) == expected
        brand.go("/console/flow")
        recovered_before = _grams(_text(brand, "#recovered-grams"))

        # -- a retailer: the sale of 50 items, by their serials -----------------------------------------------------
        retailer = Phone(chromium, base, shots, pages)
        page = retailer.page
        retailer.go("/console/sign-in")
        page.fill("#f-api_key", world.keys["retailer"])
        page.click("#key-form button[type=submit]")
        page.wait_for_url(base + "/console")
        retailer.check()
        retailer.go("/console/sales")
        sold = serials[:50]
        # A code typed (as a barcode scanner that types sends it) is added on Enter, at once; pasted lines on the
        # button.
        page.focus("#codes")
        page.keyboard.type(sold[0])
        page.keyboard.press("Enter")
        expect(page.locator("#count")).to_have_text("1")
        assert page.input_value("#codes") == "" and sold[0] in _text(retailer, "#basket")
        page.fill("#codes", "\n".join(sold[1:]))
        page.click("#typed button[type=submit]")
        expect(page.locator("#count")).to_have_text("50", timeout=60_000)
        assert _text(retailer, "#apply") == "Sale 50 items"
        page.click("#apply")
        _recorded(page, 50)
        retailer.check("sales")
        # Later, the same 50 come back to the counter.
        page.click("#clear")
        page.fill("#codes", "\n".join(sold))
        page.click("#typed button[type=submit]")
        expect(page.locator("#count")).to_have_text("50", timeout=60_000)
        page.select_option("#action", "returned")
        page.click("#apply")
        _recorded(page, 50)
        retailer.close()

        # -- a recycler: a one-time link, the camera, 50 collected in one action, recycled into a lot ---------------
        with world.service.sessions() as session:
            actor = session.scalar(select(Actor).where(Actor.name == "Recycler"))
            assert actor is not None
            link = issue_sign_in_link(session, actor, world.client.app.state.circular.api_settings, base)
        recycler = Phone(chromium, base, shots, pages)
        page = recycler.page
        page.goto(link)
        page.wait_for_url(base + "/console")
        assert "#code=" not in page.url
        recycler.check()
        recycler_id = actor.id
        recycler.go("/console/intake")
        write_y4m(chromium.camera, [expected[0]])
        page.click("#camera-start")
        expect(page.locator("#count")).to_have_text("1", timeout=60_000)
        assert serials[0] in _text(recycler, "#basket")
        page.click("#camera-stop")
        page.fill("#codes", "\n".join(sold[1:]))
        page.click("#typed button[type=submit]")
        expect(page.locator("#count")).to_have_text("50", timeout=60_000)
        # The session expires with the 50 in the list: the action says so, records nothing, and loses nothing.
        with world.service.sessions() as session:
            session.execute(update(ConsoleSession).where(ConsoleSession.actor_id == recycler_id)
                            .values(expires_at=utcnow() - timedelta(seconds=1)))
            session.commit()
        page.click("#apply")
        expect(page.locator("#progress-text")).to_have_text("Your session has expired: sign in again.")
        expect(page.locator("#session-ended")).to_be_visible()
        page.click("#session-ended a")
        page.wait_for_url(base + "/console/sign-in?why=expired&next=%2Fconsole%2Fintake")
        assert "Your session has expired" in _text(recycler, "main")
        recycler.check()
        page.fill("#f-api_key", world.keys["recycler"])
        page.click("#key-form button[type=submit]")
        page.wait_for_url(base + "/console/intake")
        expect(page.locator("#count")).to_have_text("50")
        with world.service.sessions() as session:  # nothing was collected while signed out
            collected = session.scalars(select(Item.state).where(Item.serial.in_(sold))).all()
            assert len(collected) == 50 and set(collected) == {ItemState.RETURNED}
        assert _text(recycler, "#apply") == "Collect 50 items"
        page.click("#apply")
        _recorded(page, 50)
        recycler.check("intake")
        recycler.go("/console/recycle")
        assert page.locator("#collected input[name=item]:checked").count() >= 50
        recycler.check("recycle")
        total = sum(int(b.get_attribute("data-grams") or 0)
                    for b in page.locator("#collected input[name=item]:checked").all())
        page.select_option("#f-material_code", "rCO")
        lot_number = world.unique("RL")
        page.fill("#f-lot_number", lot_number)
        page.fill("#f-mass_grams", str(total + 1))
        page.click("#recycle-form button[type=submit]")
        page.wait_for_url(base + "/console/recycle")
        assert "cannot weigh more than the items recycled into it" in _text(recycler, "#e-mass_grams")
        assert page.input_value("#f-lot_number") == lot_number  # nothing typed is lost
        recycler.check()
        recovered = 8_500
        page.fill("#f-mass_grams", str(recovered))
        page.click("#recycle-form button[type=submit]")
        page.wait_for_url(f"{base}/console/lots/**")
        assert f"Lot {lot_number}" in _text(recycler, "h1")
        recycler.check("recovered-lot")
        # Approve grams of it to the brand, which then sees it among its lots.
        page.select_option("#f-operator", label="Brand A")
        page.fill("#f-grams", "6000")
        page.click("form[action$='/approvals'] button[type=submit]")
        page.wait_for_url("**?ok=approved")
        assert "Brand A: 6,000" in _text(recycler, "section[aria-labelledby=approve]")
        recycler.check()
        recycler.close()

        # -- the brand: the recovered lot approved to it, and its material flow with the recovered grams ----------
        page = brand.page
        brand.go("/console/lots")
        page.click(f"#lots a:text-is('{lot_number}')")
        page.wait_for_url(f"{base}/console/lots/**")
        assert f"Lot {lot_number}" in _text(brand, "h1") and "recovered" in _text(brand, "h1")
        brand.check()
        brand.go("/console/flow")
        page.wait_for_selector("body[data-charts=drawn]")
        assert page.locator("#sankey canvas").count() >= 1 and page.locator("#monthly canvas").count() >= 1
        assert _grams(_text(brand, "#recovered-grams")) - recovered_before == recovered
        brand.check("flow")
        checked = brand.checked + retailer.checked + recycler.checked
        brand.close()
    return checked


def test_the_journeys_on_the_embedded_default(sqlite_world: Any, chromium: Chromium, tmp_path: Path) -> None:
    checked = set(journeys(sqlite_world, chromium, tmp_path))
    pages = set(console_pages(sqlite_world.client.app)) | {NOT_FOUND}
    assert len(pages) >= 17, sorted(pages)
    assert pages - checked == set(), "console pages axe-core did not check"


@pytest.mark.anvil
@pytest.mark.postgres
def test_the_journeys_on_anvil_and_postgresql(anvil_node: Any, chromium: Chromium, tmp_path: Path) -> None:
    from ledger.chain import JsonRpcBackend

    world_iter = _make_world("postgresql", tmp_path / "data", backend=JsonRpcBackend(anvil_node.url))
    world = next(world_iter)
    try:
        journeys(world, chromium, tmp_path)
    finally:
        with contextlib.suppress(StopIteration):
            next(world_iter)
