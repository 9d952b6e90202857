"""Signing in and out of the console: API keys and one-time links, the session cookie's flags, CSRF on every form,
expiry, and the key kept out of pages, URLs and logs. On SQLite and PostgreSQL (sessions live in the database)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from api.models import Actor, ConsoleLink, ConsoleSession, utcnow
from api.routes.console import issue_sign_in_link
from api.routes.console.web import token_hash
from ledger.client import ItemState

from .helpers import csrf_of, new_client, sign_in, sign_in_csrf


def _cookie_header(answer: Any, name: str) -> str:
    headers = [h for h in answer.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert headers, answer.headers
    return headers[0]


def test_sign_in_with_a_key_sets_a_strict_httponly_cookie(world: Any) -> None:
    client = new_client(world)
    csrf = sign_in_csrf(client)
    answer = client.post("/console/sign-in", data={"csrf": csrf, "api_key": world.keys["brand"]})
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = _cookie_header(answer, "circular_console").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http (a local console): a Secure cookie would never come back
    home = client.get("/console")
    assert home.status_code == 200 and "Brand A" in home.text
    assert world.keys["brand"] not in home.text


def test_over_https_the_cookie_is_secure(world: Any) -> None:
    client = new_client(world, "https://id.circular.example")  # a host the app serves (api/edge.py)
    csrf = sign_in_csrf(client)
    answer = client.post("/console/sign-in", data={"csrf": csrf, "api_key": world.keys["recycler"]})
    assert answer.status_code == 303
    assert "secure" in _cookie_header(answer, "circular_console").lower()


def test_a_wrong_key_is_refused_in_plain_words_and_not_echoed(world: Any) -> None:
    client = new_client(world)
    csrf = sign_in_csrf(client)
    wrong = "clk_" + "x" * 43
    answer = client.post("/console/sign-in", data={"csrf": csrf, "api_key": wrong})
    assert answer.status_code == 401
    assert "This API key is not valid" in answer.text
    assert wrong not in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert client.get("/console").status_code == 303  # not signed in


def test_pages_need_a_session(world: Any) -> None:
    client = new_client(world)
    answer = client.get("/console?from=mail")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console%3Ffrom%3Dmail"
    api = client.post("/console/api/lookup", json={"code": "x"})  # a script's call: an answer it can show
    assert api.status_code == 401 and api.json() == {"message": "Sign in first.", "signIn": "/console/sign-in"}


def test_the_key_is_in_no_page_url_or_log(world: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = new_client(world)
    csrf = sign_in_csrf(client)
    key = world.keys["retailer"]
    answer = client.post("/console/sign-in", data={"csrf": csrf, "api_key": key})
    assert key not in answer.headers.get("location", "")
    for path in ("/console", "/console/sign-in"):
        assert key not in client.get(path).text
    assert key not in caplog.text
    assert all(key not in str(cookie) for cookie in client.cookies.values())


def test_a_forged_csrf_token_is_refused_and_changes_nothing(world: Any) -> None:
    client = sign_in(world, "brand")
    refused = client.post("/console/sign-out", data={"csrf": "forged-token-value"})
    assert refused.status_code == 403 and "could not be accepted" in refused.text
    assert client.get("/console").status_code == 200  # still signed in: the forged sign-out did nothing
    missing = client.post("/console/sign-out", data={})
    assert missing.status_code == 403
    cross_site = client.post(
        "/console/sign-out", data={"csrf": csrf_of(client)}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert client.get("/console").status_code == 200


def test_a_forged_csrf_token_writes_nothing_through_a_form_or_a_script(world: Any) -> None:
    from sqlalchemy import func, select

    from api.models import Item, Lot

    from .helpers import form_fields

    brand = sign_in(world, "brand")
    number = world.unique("FL")
    fields = form_fields(brand.get("/console/lots").text)
    form = {**fields, "lot_number": number, "material_code": "CO", "mass_grams": "5000", "recycled_share": "0"}
    forged = brand.post("/console/lots", data={**form, "csrf": "forged-token-value"})
    assert forged.status_code == 403 and "could not be accepted" in forged.text
    from_elsewhere = brand.post("/console/lots", data=form, headers={"Origin": "https://evil.example"})
    assert from_elsewhere.status_code == 403
    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    shop = sign_in(world, "retailer")
    body = {"key": "f" * 24, "action": "sold", "items": [{"gtin": tee["gtin"], "serial": tee["serial"]}]}
    script = shop.post("/console/api/steps", headers={"X-CSRF-Token": "forged-token-value"}, json=body)
    assert script.status_code == 403 and "could not be accepted" in script.json()["message"]
    cross = shop.post("/console/api/steps", json=body,
                      headers={"X-CSRF-Token": csrf_of(shop, "/console/sales"), "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    with world.service.sessions() as session:
        assert session.scalar(select(func.count()).where(Lot.lot_number == number)) == 0
        assert session.scalar(select(Item.state).where(Item.serial == tee["serial"])) == ItemState.MANUFACTURED
    # The same form with the session's own token is accepted: the refusals above were the token's doing.
    assert brand.post("/console/lots", data=form).status_code == 303


def test_the_sign_in_form_has_its_own_csrf_token(world: Any) -> None:
    client = new_client(world)
    sign_in_csrf(client)
    forged = client.post("/console/sign-in", data={"csrf": "not-the-cookie", "api_key": world.keys["brand"]})
    assert forged.status_code == 403
    no_cookie = new_client(world).post("/console/sign-in", data={"csrf": "x", "api_key": world.keys["brand"]})
    assert no_cookie.status_code == 403


def test_sign_out_ends_the_session(world: Any) -> None:
    client = sign_in(world, "brand")
    token = client.cookies.get("circular_console")
    answer = client.post("/console/sign-out", data={"csrf": csrf_of(client)})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in?why=signed-out"
    client.cookies.set("circular_console", token, path="/console")  # a stolen copy of the cookie is worth nothing
    assert client.get("/console").status_code == 303


@pytest.mark.parametrize("column", ["expires_at", "last_seen_at"])
def test_an_expired_session_goes_back_to_sign_in(world: Any, column: str) -> None:
    client = sign_in(world, "recycler")
    token = client.cookies.get("circular_console")
    past = utcnow() - timedelta(days=2)
    with world.service.sessions() as session:
        session.execute(update(ConsoleSession).values({column: past}))
        session.commit()
    answer = client.get("/console")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?why=expired")
    page = client.get(answer.headers["location"])
    assert "Your session has expired" in page.text
    # The session is gone: a later call of the page's script is told so, and nothing is written.
    assert client.get("/console").headers["location"].startswith("/console/sign-in")
    script = client.post("/console/api/lookup", json={"code": "x"}, headers={"X-CSRF-Token": "x"})
    assert script.status_code == 401 and script.json()["message"] == "Sign in first."
    with world.service.sessions() as session:  # the expired session was deleted, not just refused
        assert session.get(ConsoleSession, token_hash(token)) is None


def test_a_script_call_after_the_session_expired_says_so_and_records_nothing(world: Any) -> None:
    from sqlalchemy import select

    from api.models import Item

    tee = world.item([(world.lot(gtin=None)["lotId"], 150)])
    client = sign_in(world, "retailer")
    token = client.cookies.get("circular_console")
    csrf = csrf_of(client, "/console/sales")
    with world.service.sessions() as session:
        session.execute(update(ConsoleSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    body = {"key": "e" * 24, "action": "sold", "items": [{"gtin": tee["gtin"], "serial": tee["serial"]}]}
    answer = client.post("/console/api/steps", headers={"X-CSRF-Token": csrf}, json=body)
    assert answer.status_code == 401
    assert answer.json() == {"message": "Your session has expired: sign in again.",
                             "signIn": "/console/sign-in?why=expired"}
    with world.service.sessions() as session:
        state = session.scalar(select(Item.state).where(Item.serial == tee["serial"]))
        assert state == ItemState.MANUFACTURED  # not sold
        assert session.get(ConsoleSession, token_hash(token)) is None


def test_a_one_time_link_signs_in_once(world: Any) -> None:
    with world.service.sessions() as session:
        actor = session.query(Actor).filter(Actor.name == "Retailer").one()
        api_settings = world.client.app.state.circular.api_settings
        link = issue_sign_in_link(session, actor, api_settings, world.settings.resolver_base_url)
    assert link.startswith(world.settings.resolver_base_url + "/console/sign-in#code=")
    code = link.split("#code=", 1)[1]
    client = new_client(world)
    answer = client.post("/console/sign-in", data={"csrf": sign_in_csrf(client), "code": code})
    assert answer.status_code == 303
    assert "Retailer" in client.get("/console").text
    again = new_client(world)
    reused = again.post("/console/sign-in", data={"csrf": sign_in_csrf(again), "code": code})
    assert reused.status_code == 401 and "does not work any more" in reused.text


def test_an_expired_link_is_refused(world: Any) -> None:
    with world.service.sessions() as session:
        actor = session.query(Actor).filter(Actor.name == "Retailer").one()
        api_settings = world.client.app.state.circular.api_settings
        code = issue_sign_in_link(session, actor, api_settings, "https://x.example").split("#code=", 1)[1]
        session.execute(update(ConsoleLink).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    client = new_client(world)
    answer = client.post("/console/sign-in", data={"csrf": sign_in_csrf(client), "code": code})
    assert answer.status_code == 401


def test_only_console_paths_are_followed_after_sign_in(world: Any) -> None:
    client = new_client(world)
    csrf = sign_in_csrf(client)
    answer = client.post(
        "/console/sign-in", data={"csrf": csrf, "api_key": world.keys["brand"], "next": "https://evil.example/x"}
    )
    assert answer.headers["location"] == "/console"


def test_console_pages_forbid_framing_and_inline_scripts(world: Any) -> None:
    client = sign_in(world, "brand")
    page = client.get("/console")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and " style=" not in page.text


def test_the_admins_cli_prints_a_link_that_signs_in(world: Any) -> None:
    from typer.testing import CliRunner

    from circular.cli import app

    db = ["--db", world.settings.database_url]
    runner = CliRunner()
    result = runner.invoke(app, ["actors", "link", "--name", "Recycler", "--url", "https://console.example",
                                 "--data-dir", str(world.settings.data_dir), *db])
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[-1]
    assert link.startswith("https://console.example/console/sign-in#code=")
    client = new_client(world)
    answer = client.post("/console/sign-in", data={"csrf": sign_in_csrf(client), "code": link.split("#code=")[1]})
    assert answer.status_code == 303 and "Recycler" in client.get("/console").text
    unknown = runner.invoke(app, ["actors", "link", "--name", "Nobody", "--data-dir", str(world.settings.data_dir),
                                  *db])
    assert unknown.exit_code == 1 and unknown.output.strip().splitlines() == ["error: no actor named 'Nobody'"]


def test_failed_sign_ins_are_limited_per_client(sqlite_world: Any) -> None:
    from api.routes.console.auth import FAILED_SIGN_INS_PER_MINUTE

    world = sqlite_world
    app_state = world.client.app.state.circular
    app_state.extra.pop("console_sign_ins", None)
    try:
        client = new_client(world)
        csrf = sign_in_csrf(client)
        for _ in range(FAILED_SIGN_INS_PER_MINUTE):
            assert client.post("/console/sign-in", data={"csrf": csrf, "api_key": "clk_wrong"}).status_code == 401
        waited = client.post("/console/sign-in", data={"csrf": csrf, "api_key": world.keys["brand"]})
        assert waited.status_code == 429 and "Too many attempts" in waited.text
    finally:
        app_state.extra.pop("console_sign_ins", None)
