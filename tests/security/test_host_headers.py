"""The Host and X-Forwarded-Proto headers a client sends never reach a link.

The attack: ``request_base`` took any ``Host`` and ``X-Forwarded-Proto``. ``Host: evil.example`` gave ``Location:
https://evil.example/...`` on a scan's 307 (``public, max-age=300`` without ``Vary: Host``: a shared cache keyed
without the Host served it to everyone), and the same host in the linkset, the resolver description, EPCIS ``next``
links and the return form's target; a crafted Host injected link-values into the ``Link`` header.

Now every link is built from the configured ``CIRCULAR_RESOLVER_BASE_URL``; a Host the deployment does not serve is a
400 (``api/edge.py``); ``X-Forwarded-Proto`` from a client that is no configured proxy changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.conftest import GTIN_A, RESOLVER, World

EVIL = "evil.example"
# A Host that, pasted into `<{base}{path}?linkType=linkset>`, closes the link-value and adds its own.
INJECTING = 'evil.example/>; rel="canonical", <https://evil.example'


@pytest.fixture(scope="module")
def item(security_world: World) -> dict[str, Any]:
    w = security_world
    cotton = w.lot()
    made = w.item([(cotton["lotId"], 180)])
    w.act(made, "sold", "retailer")
    w.drain()
    return made


def _path(item: dict[str, Any]) -> str:
    return f"/01/{item['gtin']}/21/{item['serial']}"


def _links_of(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"'<>]+", text)


@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:443", INJECTING, "id.circular.example.evil.example"])
def test_a_host_we_do_not_serve_is_refused(security_world: World, item: dict[str, Any], host: str) -> None:
    w = security_world
    for path in (_path(item), _path(item) + "/passport", _path(item) + "?linkType=linkset", "/.well-known/gs1resolver",
                 "/epcis/events"):
        response = w.client.get(path, headers={"Host": host, **w.auth("brand")}, follow_redirects=False)
        assert response.status_code == 400, (path, response.status_code)
        assert "location" not in response.headers and EVIL not in response.headers.get("link", "")
        assert EVIL not in response.text


@pytest.mark.parametrize("host", ["id.circular.example", "localhost:8000", "127.0.0.1", "testserver"])
def test_every_link_names_the_configured_base(security_world: World, item: dict[str, Any], host: str) -> None:
    """Whatever Host (among the served ones) and X-Forwarded-Proto the client sends, the links are the same."""
    w = security_world
    spoof = {"Host": host, "X-Forwarded-Proto": "http", "X-Forwarded-Host": EVIL}
    path = _path(item)

    redirect = w.client.get(path, headers=spoof, follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"{RESOLVER}{path}/passport"
    assert redirect.headers["link"].startswith(f"<{RESOLVER}{path}?linkType=linkset>")
    # Cached publicly: it may be, since nothing in it depends on the Host; it depends on Accept, and says so.
    assert redirect.headers["cache-control"] == "public, max-age=300"
    assert "Accept" in [v.strip() for v in redirect.headers["vary"].split(",")]

    linkset = w.client.get(path + "?linkType=linkset", headers=spoof).json()["linkset"][0]
    hrefs = [link["href"] for rel, links in linkset.items() if isinstance(links, list) for link in links]
    assert linkset["anchor"] == RESOLVER + path and hrefs
    assert all(href.startswith(RESOLVER + "/") for href in hrefs), hrefs

    description = w.client.get("/.well-known/gs1resolver", headers=spoof).json()
    assert description["resolverRoot"] == RESOLVER

    page = w.client.get(path + "/passport", headers=spoof)
    assert page.status_code == 200
    assert f'action="{RESOLVER}{path}/return-requests"' in page.text
    assert all(link.startswith(RESOLVER) or "circular.example" not in link for link in _links_of(page.text))

    jsonld = w.client.get(path + "/passport.jsonld", headers=spoof)
    assert "http://" + host not in jsonld.text and "://testserver" not in jsonld.text

    verification = w.client.get(path + "/verification", headers=spoof).json()
    assert verification["evidenceBundle"] == f"{RESOLVER}{path}/evidence"

    events = w.client.get("/epcis/events", params={"perPage": 1}, headers={**spoof, **w.auth("brand")})
    assert events.status_code == 200
    assert events.headers["link"].startswith(f"<{RESOLVER}/epcis/events?")


def test_the_redirect_is_the_same_for_every_host(security_world: World, item: dict[str, Any]) -> None:
    """A shared cache that keys without the Host can store the 307: every client gets what every other would."""
    w = security_world
    answers = {
        w.client.get(_path(item), headers={"Host": host}, follow_redirects=False).headers["location"]
        for host in ("id.circular.example", "localhost", "127.0.0.1:8000", "[::1]:8000")
    }
    assert answers == {f"{RESOLVER}{_path(item)}/passport"}


def test_links_follow_the_configuration(security_world: World) -> None:
    """The base is the configuration's: the scan's canonical URI is the resolver's, not the server's address."""
    assert security_world.settings.resolver_base_url == RESOLVER
    assert GTIN_A in security_world.client.get(f"/01/{GTIN_A}?linkType=linkset").json()["linkset"][0]["anchor"]
