"""An IPv6 client is its /64: one subscriber's addresses share one budget.

Found looking for the next attack: every per-client bound (the request budget, return requests, scan rows) keyed on
the client's address, and a home IPv6 connection holds a whole /64 (2^64 addresses): a new address per request was a
new budget each time, as a new ``X-Forwarded-For`` once was. Proved through a configured proxy that forwards the
client's IPv6 address, as a CDN does.

Now an IPv6 address counts by its /64 network (``api/edge.client_key``); an IPv4-mapped one as its IPv4 address.
"""

from __future__ import annotations

from tests.api.conftest import GTIN_A, World
from tests.security.conftest import app_of


def test_a_new_address_in_the_same_64_is_the_same_client(security_world: World) -> None:
    w = security_world
    item = w.item([(w.lot()["lotId"], 100)])
    path = f"/01/{GTIN_A}/21/{item['serial']}/passport"
    with app_of(w, requests_per_client_per_minute=60, requests_burst=10, trusted_proxies=["testclient"]) as client:
        codes = [client.get(path, headers={"X-Forwarded-For": f"2001:db8:7:7::{n:x}"}).status_code for n in range(15)]
        assert codes == [200] * 10 + [429] * 5
        other = client.get(path, headers={"X-Forwarded-For": "2001:db8:7:8::1"})  # another subscriber
        assert other.status_code == 200
        mapped = [client.get(path, headers={"X-Forwarded-For": "::ffff:198.51.100.9"}).status_code for _ in range(11)]
        assert mapped.count(429) == 1  # ::ffff:198.51.100.9 is 198.51.100.9


def test_return_requests_count_the_64(security_world: World) -> None:
    w = security_world
    items = [w.item([(w.lot()["lotId"], 100)]) for _ in range(3)]
    with app_of(w, return_requests_per_minute=2, trusted_proxies=["testclient"]) as client:
        codes = [
            client.post(f"/01/{GTIN_A}/21/{items[n % 3]['serial']}/return-requests", json={},
                        headers={"X-Forwarded-For": f"2001:db8:9:9::{n + 1:x}"}).status_code
            for n in range(5)
        ]
    assert codes == [201, 201, 429, 429, 429]
