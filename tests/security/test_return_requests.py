"""The return-request limit holds against a forged ``X-Forwarded-For``; an item's open codes are few and expire.

The attack: the limit (per client, per minute) keyed on the first ``X-Forwarded-For`` value, which any client writes:
a new one per request gave 200 of 200 requests accepted, and 205 open drop-off codes for one item, none ever
expiring.

Now the limit keys on the real client after trusted-proxy handling (``api/edge.py``: a forwarded address counts only
from a configured proxy), an item has at most ``return_requests_open_per_item`` unexpired open codes, and a code
expires after ``drop_off_code_days``: an expired one is refused at intake with 410, saying since when. SQLite and
PostgreSQL (the open codes are counted, and expiry compared, by the database).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from api.models import Item, ReturnRequest, utcnow
from ledger.lifecycle import ItemState
from tests.api.conftest import World
from tests.security.conftest import app_of


def _path(item: dict[str, Any]) -> str:
    return f"/01/{item['gtin']}/21/{item['serial']}/return-requests"


def _sold(w: World) -> dict[str, Any]:
    item = w.item([(w.lot()["lotId"], 200)])
    assert w.act(item, "sold", "retailer").status_code == 201
    return item


def test_a_forged_forwarded_for_is_one_client(any_db_world: World) -> None:
    """The attack replayed: 200 requests, each with a new X-Forwarded-For, from a client that is no proxy."""
    w = any_db_world
    items = [_sold(w) for _ in range(4)]
    with app_of(w, return_requests_per_minute=5, return_requests_open_per_item=100) as client:
        answers = [
            client.post(_path(items[n % 4]), json={}, headers={"X-Forwarded-For": f"198.51.{n // 250}.{n % 250}"})
            for n in range(200)
        ]
    accepted = sum(a.status_code == 201 for a in answers)
    assert accepted == 5, accepted  # one client's five a minute, not 200
    refused = [a for a in answers if a.status_code != 201]
    assert {a.status_code for a in refused} == {429}
    assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
    print(f"\nFIGURE forged-xff: {accepted} of 200 return requests accepted with a new X-Forwarded-For each")


def test_a_configured_proxy_is_believed(any_db_world: World) -> None:
    """Behind a configured proxy, the forwarded address is the client: two clients have a limit each."""
    w = any_db_world
    item = _sold(w)
    with app_of(w, return_requests_per_minute=2, trusted_proxies=["testclient"]) as client:
        codes = [
            client.post(_path(item), json={}, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in (1, 1, 1, 2)
        ]
    assert codes == [201, 201, 429, 201]


def test_an_item_has_few_open_codes(any_db_world: World) -> None:
    """From many real clients, one item still gets at most return_requests_open_per_item open codes."""
    w = any_db_world
    item = _sold(w)
    with app_of(w, return_requests_open_per_item=3, trusted_proxies=["testclient"]) as client:
        answers = [
            client.post(_path(item), json={}, headers={"X-Forwarded-For": f"192.0.2.{n}"}) for n in range(1, 21)
        ]
    assert [a.status_code for a in answers].count(201) == 3
    refused = answers[3]
    assert refused.status_code == 429 and "3 open drop-off codes" in refused.json()["detail"]
    # Until the first one expires (30 days by default).
    assert 29 * 86_400 < int(refused.headers["retry-after"]) <= 30 * 86_400
    with w.service.sessions() as session:
        pk = session.scalars(select(Item.id).where(Item.serial == item["serial"])).one()
        open_codes = session.scalars(
            select(ReturnRequest).where(ReturnRequest.item_pk == pk, ReturnRequest.status == "open")
        ).all()
    assert len(open_codes) == 3


def test_codes_expire(any_db_world: World) -> None:
    w = any_db_world
    item = _sold(w)
    with app_of(w, return_requests_open_per_item=1, drop_off_code_days=7) as client:
        first = client.post(_path(item), json={})
        assert first.status_code == 201
        answer = first.json()
        code = answer["dropOffCode"]
        lifetime = _parse(answer["expiresAt"]) - _parse(answer["createdAt"])
        assert lifetime == timedelta(days=7)
        assert client.post(_path(item), json={}).status_code == 429  # the one open code is still valid

        # Eight days later: the code is refused at intake, in plain words, and the item may get a new one.
        with w.service.sessions() as session:
            session.execute(
                update(ReturnRequest).where(ReturnRequest.code == code).values(expires_at=utcnow() - timedelta(days=1))
            )
            session.commit()
        looked_up = w.client.get(f"/api/v1/return-requests/{code}", headers=w.auth("recycler"))
        assert looked_up.status_code == 200 and looked_up.json()["expiresAt"]
        intake = w.post("/api/v1/lifecycle-events", "recycler", {"dropOffCode": code, "action": "collected"})
        assert intake.status_code == 410, intake.text
        problem = intake.json()
        assert problem["title"] == "Drop-off code expired" and code in problem["detail"]
        assert problem["dropOffCode"] == code
        again = client.post(_path(item), json={})
        assert again.status_code == 201 and again.json()["dropOffCode"] != code
    # The item itself was not taken in by the expired code.
    with w.service.sessions() as session:
        state = session.scalars(select(Item.state).where(Item.serial == item["serial"])).one()
    assert state == ItemState.SOLD


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
