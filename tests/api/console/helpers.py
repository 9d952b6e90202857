"""Helpers of the console's tests: a browser-like client of the world's app, signed in as one of its actors."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
FIELD = re.compile(r'<input type="hidden" name="(csrf|submission)" value="([^"]*)">')


def new_client(world: Any, base_url: str = "http://testserver") -> TestClient:
    """A client of its own (its own cookie jar), on the world's app; redirects are not followed."""
    return TestClient(world.client.app, base_url=base_url, follow_redirects=False)


def sign_in_csrf(client: TestClient) -> str:
    page = client.get("/console/sign-in")
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def sign_in(world: Any, role: str, base_url: str = "http://testserver") -> TestClient:
    client = new_client(world, base_url)
    csrf = sign_in_csrf(client)
    answer = client.post("/console/sign-in", data={"csrf": csrf, "api_key": world.keys[role], "next": "/console"})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: TestClient, path: str = "/console") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF_META.search(page.text)
    assert match is not None and match.group(1)
    return match.group(1)


def form_fields(html: str) -> dict[str, str]:
    """The hidden csrf and submission fields of the first form that has them."""
    return dict(FIELD.findall(html))
