"""A node URL's secret is never in an answer.

Found looking for the next attack: a hosted node's URL carries its API key (``https://eth-mainnet.example/v2/<key>``,
or ``https://user:password@node.example``). When the node did not answer, the chain monitor's one-line reason named
the node by its whole URL, and anonymous ``GET /readyz`` showed it (so did the 503 of a refused write, and the
authority's verification problems): anyone who caught an outage read the key.

Now a node is named by its scheme, host and port only (``ledger.health.node_name``), and ``/readyz`` says each
check's state, not the reason.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from api.health import monitor_of
from ledger.chain import JsonRpcBackend
from ledger.health import check_chain, node_name
from tests.api.conftest import World
from tests.security.conftest import app_of

SECRET_URL = "http://operator:hunter2@127.0.0.1:9/v2/SECRET-API-KEY-42?apikey=ALSO-SECRET"
SECRETS = ("hunter2", "operator", "SECRET-API-KEY-42", "ALSO-SECRET")


def test_a_node_is_named_without_its_secrets() -> None:
    backend = JsonRpcBackend(SECRET_URL)
    service = SimpleNamespace(backend=backend, settings=SimpleNamespace(chain_id=None))
    assert node_name(service) == "the node at http://127.0.0.1:9"
    status = check_chain(service, timeout_s=0.5)  # nothing listens on port 9: unreachable
    assert status.state == "unreachable"
    assert not any(secret in status.detail for secret in SECRETS), status.detail


def test_readiness_shows_no_secret_of_the_node(security_world: World) -> None:
    w = security_world
    backend = JsonRpcBackend(SECRET_URL)
    status = check_chain(SimpleNamespace(backend=backend, settings=SimpleNamespace(chain_id=None)), timeout_s=0.5)
    with app_of(w, chain_check_s=3600) as client:
        monitor = monitor_of(client.app.state.circular)  # type: ignore[attr-defined]
        monitor.status, monitor.checked_at = status, time.monotonic()  # what an outage of that node leaves
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["chain"]["state"] == "unreachable"
    assert not any(secret in answer.text for secret in SECRETS), answer.text
