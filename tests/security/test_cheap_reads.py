"""No cheap denial of service through the public reads.

The attack: one worker saturated at about 100 requests/s of passports with a random ``?v=`` (each a cache miss,
10 ms), and ``/verification`` and ``/evidence`` were built afresh for every request (8 ms each).

Now the response cache's key holds only the query parameters a resource reads (``version``), and an item's reads
with any other parameter take the stored versions' fast path; an item's verdict and evidence bundle are kept like a
passport (while the database is unchanged: exactness as ``api/response_cache.py`` keeps it, the evidence per key);
and every client has a request budget (``api/ratelimit.py``), 429 beyond it.
"""

from __future__ import annotations

import secrets

import pytest

from api.ratelimit import TokenBuckets
from tests.api.conftest import GTIN_A, World
from tests.security.conftest import app_of


def test_random_query_parameters_are_cache_hits(security_world: World, routed: list[str]) -> None:
    w = security_world
    lot = w.lot()
    item = w.item([(lot["lotId"], 100)])
    w.drain()
    item_path = f"/01/{GTIN_A}/21/{item['serial']}"
    targets = [item_path + "/passport", item_path + "/passport.jsonld", item_path + "/qr.svg"]
    lot_uri: str = lot["uri"]  # a lot of a GTIN: its passport is kept in the response cache
    assert lot_uri.startswith(w.settings.resolver_base_url + "/01/")
    targets.append(lot_uri[len(w.settings.resolver_base_url):] + "/passport")
    for path in targets:
        first = w.client.get(path)
        assert first.status_code == 200, (path, first.text[:200])
        routed.clear()
        for _ in range(50):
            again = w.client.get(path, params={"v": secrets.token_hex(8), "utm_source": secrets.token_hex(4)})
            assert again.status_code == 200 and again.content == first.content, path
        assert routed == [], (path, len(routed))  # not one answer was built again
    # A parameter a resource reads still counts: ?version=1 is that version, a bad one a 4xx.
    assert w.client.get(item_path + "/passport", params={"version": "1", "v": "x"}).status_code == 200
    assert w.client.get(item_path + "/passport", params={"version": "999"}).status_code == 404


def test_verification_and_evidence_are_kept_while_nothing_changes(security_world: World, routed: list[str]) -> None:
    w = security_world
    item = w.item([(w.lot()["lotId"], 100)])
    assert w.act(item, "sold", "retailer").status_code == 201
    w.drain()
    path = f"/01/{GTIN_A}/21/{item['serial']}"
    brand = w.auth("brand")

    first = w.client.get(path + "/verification", params={"nocache": "1"})
    evidence = w.client.get(path + "/evidence", headers=brand)
    assert first.status_code == 200 and evidence.status_code == 200
    routed.clear()
    for n in range(20):
        assert w.client.get(path + "/verification", params={"nocache": str(n)}).content == first.content
        assert w.client.get(path + "/evidence", headers=brand).content == evidence.content
    assert routed == []

    # Kept per key: another reader is judged afresh (a retailer may not read the bundle), and nobody is served it
    # without a key.
    assert w.client.get(path + "/evidence", headers=w.auth("retailer")).status_code == 403
    assert w.client.get(path + "/evidence").status_code == 401
    assert routed == [path + "/evidence", path + "/evidence"]

    # Exact: a new event about the item is a commit, and the next answers say so.
    assert w.act(item, "in_use", "retailer").status_code == 201
    w.drain()
    after = w.client.get(path + "/verification").json()
    assert after["events"] == first.json()["events"] + 1
    assert len(w.client.get(path + "/evidence", headers=brand).json()["events"]) == after["events"]


def test_a_client_over_its_budget_gets_429(security_world: World) -> None:
    w = security_world
    item = w.item([(w.lot()["lotId"], 100)])
    path = f"/01/{GTIN_A}/21/{item['serial']}/passport"
    with app_of(w, requests_per_client_per_minute=60, requests_burst=10) as client:
        answers = [client.get(path, headers={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(15)]
        codes = [a.status_code for a in answers]
        assert codes[:10] == [200] * 10 and codes[10:] == [429] * 5  # a forged X-Forwarded-For is the same client
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 2  # one request a second comes back
    with app_of(w, requests_per_client_per_minute=60, requests_burst=10) as client:
        # /rpc is on no budget: it answers only local commands holding the secret of server.json.
        assert [client.post("/rpc", json={}).status_code for _ in range(15)].count(429) == 0
    with app_of(w, requests_per_client_per_minute=60, requests_burst=10, trusted_proxies=["testclient"]) as client:
        for n in range(12):  # behind a configured proxy, each forwarded client has its own budget
            assert client.get(path, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code == 200


def test_the_limiter_forgets_the_least_recent_client_first() -> None:
    buckets = TokenBuckets(rate_per_s=1.0, burst=2, max_keys=3)
    for key in ("a", "b", "c", "d"):
        assert buckets.take(key, now=0.0) is None
    assert len(buckets) == 3  # "a" was forgotten
    assert buckets.take("b", now=0.0) is None and buckets.take("b", now=0.0) == pytest.approx(1.0)
    assert buckets.take("b", now=1.0) is None  # a token a second
