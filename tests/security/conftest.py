"""Fixtures of the security suites: one API world of their own (SQLite: the subject here is not the database).

It is built exactly as the API suites build theirs (``tests/api/conftest.py``), but it is a separate world, so that
hostile requests here (products renamed to ``<script>``, rate-limited return requests ...) never meet the API
suites' expectations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import World, _make_world


@pytest.fixture(scope="session")
def security_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from _make_world("sqlite", tmp_path_factory.mktemp("api-security"))


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The SQLite security world, and a PostgreSQL one: for what the two databases store differently (NUL ...)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("security_world")
    else:
        yield from _make_world("postgresql", tmp_path_factory.mktemp("api-security-pg"))


@contextmanager
def app_of(w: World, **settings: Any) -> Iterator[TestClient]:
    """An app on the world's service with these API settings, the defaults otherwise (the worlds' own apps trust the
    TestClient as a proxy that forwards the client's address and country). Its scan writer is not started: flush
    ``scans_for(client.app.state.circular)`` to write what it buffered."""
    from api import ApiSettings, create_app
    from api import versions as passport_versions

    app = create_app(w.settings, w.service, api_settings=ApiSettings(**settings))
    try:
        yield TestClient(app)
    finally:
        passport_versions.uninstall(app.state.circular)


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths the resolver's dispatcher built an answer for (a cache hit or a fast read never gets there)."""
    calls: list[str] = []
    from api.routes import resolver

    original = resolver.dispatch

    def counting(request: Any, session: Any, state: Any) -> Any:
        calls.append(request.url.path)
        return original(request, session, state)

    monkeypatch.setattr(resolver, "dispatch", counting)
    yield calls


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The on-chain matrix runs on both backends (the root conftest's `session_backend`): mark the Anvil half."""
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:  # this conftest's hook sees every item of the session: ours only
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("session_backend") == "anvil":
            item.add_marker(pytest.mark.anvil)
