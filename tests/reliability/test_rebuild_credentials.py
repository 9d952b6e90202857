"""Passport credentials' status survives the database: every status-list index handed out and every revocation is
an archived record signed by the brand, which `circular rebuild` and `circular sync` replay. After revoke → rebuild
the item's bit still reads 1 and the brand's status list credential verifies; after issue → rebuild a new item's
index differs from every earlier one; after backup → revoke → restore → sync the bit reads 1. SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api import credentials
from circular.cli import app
from ledger.archive import Archive
from tests.conftest import AnvilNode
from tests.reliability.pg import pg_schema
from tests.reliability.recovery_world import GTIN, RESOLVER, ApiWorld, cli_args, open_world, settings_for

pytestmark = [pytest.mark.anvil]
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tests" / "api" / "untp_verifier.mjs"
MASTER_DATA = {
    "name": "Field jacket",
    "categoryCode": "282",
    "categoryName": "Wearing apparel, except fur apparel",
    "facilityGln": "9506000000008",
    "facilityName": "Brand A sewing plant",
    "productionCountry": "PT",
}
SERIALS = [f"C{i:02d}" for i in range(6)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest) -> Iterator[tuple[str | None, str | None]]:
    """(the live database, an empty one to rebuild into); None: SQLite in the data directory."""
    if request.param == "sqlite":
        yield None, None
        return
    with pg_schema("creds") as live, pg_schema("creds_rebuilt") as empty:
        yield live, empty


@pytest.fixture()
def node() -> Iterator[AnvilNode]:
    anvil = AnvilNode()
    yield anvil
    anvil.stop()


def _payload(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _populate(world: ApiWorld) -> None:
    world.call("PUT", f"/api/v1/products/{GTIN}", "brand", MASTER_DATA)
    lot = world.call(
        "POST",
        "/api/v1/lots",
        "brand",
        {"lotNumber": "CO-1", "materialCode": "CO", "massGrams": 1_000_000, "recycledShareBps": 2_500},
    )["lot"]
    part = [{"lotId": lot["lotId"], "grams": 600}]
    world.call("POST", "/api/v1/runs", "brand", {"gtin": GTIN, "serials": SERIALS, "composition": part})
    world.drain()


def _credential(world: ApiWorld, serial: str) -> tuple[str, int]:
    answer = world.client.get(f"/01/{GTIN}/21/{serial}/credential")
    assert answer.status_code == 200, answer.text
    return answer.text, int(_payload(answer.text)["credentialStatus"]["statusListIndex"])


def _status_list(world: ApiWorld) -> tuple[str, bytes]:
    answer = world.client.get(f"/brands/{world.actor_ids['brand']}/status/revocation")
    assert answer.status_code == 200, answer.text
    return answer.text, credentials.decode_list(_payload(answer.text)["credentialSubject"]["encodedList"])


def _verify(world: ApiWorld, tmp_path: Path, jwt: str, status_list: str) -> dict[str, Any]:
    """The independent verifier (npm jose in node): the credential through the brand's DID document, then the status
    list credential (its signature, that it is the credential's list) and the credential's bit."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "jose").exists():
        pytest.skip("node and node_modules/jose (make setup) verify the credential")
    brand_id = world.actor_ids["brand"]
    document = world.client.get(f"/brands/{brand_id}/did.json").json()
    documents = {credentials.did_document_url(RESOLVER, brand_id): document}
    source = tmp_path / "verify.json"
    source.write_text(json.dumps({"jwt": jwt, "documents": documents, "statusList": status_list}))
    done = subprocess.run([node, str(VERIFIER), str(source)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["ok"], (answer, done.stderr)
    return answer


def _revoke(world: ApiWorld, serial: str) -> int:
    body = {"gtin": GTIN, "serial": serial, "reason": "recalled"}
    return int(world.call("POST", "/api/v1/credential-revocations", "brand", body)["statusListIndex"])


def test_revoke_issue_rebuild(
    node: AnvilNode, tmp_path: Path, databases: tuple[str | None, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_url, empty_url = databases
    monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "recovery-tests")  # the CLI opens the brand's keys
    settings = settings_for(tmp_path / "data", node.url, live_url)
    with open_world(settings, deploy=True) as world:
        _populate(world)
        issued = {serial: _credential(world, serial) for serial in SERIALS[:4]}
        indexes = {serial: index for serial, (_, index) in issued.items()}
        assert len(set(indexes.values())) == 4
        assert _revoke(world, SERIALS[1]) == indexes[SERIALS[1]]
        done = runner.invoke(app, ["credentials", "revoke", f"{RESOLVER}/01/{GTIN}/21/{SERIALS[2]}",
                                   *cli_args(settings)[2:]])
        assert done.exit_code == 0, done.output
        before, bits = _status_list(world)
        assert [credentials.bit(bits, indexes[s]) for s in SERIALS[:4]] == [0, 1, 1, 0]
        ids = dict(world.actor_ids)

    if empty_url is None:
        (settings.data_dir / "circular.sqlite").unlink()
    else:
        settings = settings_for(settings.data_dir, node.url, empty_url)
    result = runner.invoke(app, ["rebuild", *cli_args(settings)])
    assert result.exit_code == 0, result.output
    assert "credential status" not in result.output  # every archived record was taken
    assert "4 status-list indexes of credentials (2 revoked)" in " ".join(result.output.split())

    with open_world(settings, deploy=False) as world:
        world.actor_ids.update(ids)  # actors keep their ids through a rebuild
        after, bits = _status_list(world)
        assert after == before  # the same list, signed by the same (restored) key: the same bytes
        assert [credentials.bit(bits, indexes[s]) for s in SERIALS[:4]] == [0, 1, 1, 0]
        assert _verify(world, tmp_path, issued[SERIALS[1]][0], after)["revoked"] is True
        assert _verify(world, tmp_path, issued[SERIALS[0]][0], after)["revoked"] is False
        for serial in SERIALS[:4]:  # each item's credential carries the index it had: byte for byte the same
            assert _credential(world, serial) == issued[serial]
        # A credential first issued after the rebuild gets an index no earlier credential carries.
        new_jwt, new_index = _credential(world, SERIALS[4])
        assert new_index not in indexes.values()
        # Revoking it revokes it alone.
        done = runner.invoke(app, ["credentials", "revoke", f"{RESOLVER}/01/{GTIN}/21/{SERIALS[4]}",
                                   *cli_args(settings)[2:]])
        assert done.exit_code == 0, done.output
        latest, bits = _status_list(world)
        assert [credentials.bit(bits, indexes[s]) for s in SERIALS[:4]] == [0, 1, 1, 0]
        assert credentials.bit(bits, new_index) == 1
        assert _verify(world, tmp_path, new_jwt, latest)["revoked"] is True
    print(f"\nFIGURE rebuild credentials: 2 revocations and {len(indexes)} indexes back, new index {new_index}")


def _backup_revoke_restore(
    node: AnvilNode, tmp_path: Path, live_url: str | None
) -> tuple[Any, dict[str, int], dict[str, int], tuple[str, int]]:
    """A snapshot holding two items' indexes; after it, the first item revoked and a third item's index handed out;
    then the snapshot restored. Returns (settings, actor ids, the first two indexes, the third credential)."""
    settings = settings_for(tmp_path / "data", node.url, live_url)
    snapshot = tmp_path / "snapshot.db"
    with open_world(settings, deploy=True) as world:
        _populate(world)
        first = {serial: _credential(world, serial)[1] for serial in SERIALS[:2]}
        result = runner.invoke(app, ["backup", str(snapshot), *cli_args(settings)[2:]])
        assert result.exit_code == 0, result.output
        assert _revoke(world, SERIALS[0]) == first[SERIALS[0]]
        later = _credential(world, SERIALS[2])
        _, bits = _status_list(world)
        assert credentials.bit(bits, first[SERIALS[0]]) == 1
        ids = dict(world.actor_ids)
    result = runner.invoke(app, ["restore", str(snapshot), *cli_args(settings)[2:]])
    assert result.exit_code == 0, result.output
    with open_world(settings, deploy=False) as world:  # the snapshot alone has forgotten the revocation
        world.actor_ids.update(ids)
        _, bits = _status_list(world)
        assert credentials.bit(bits, first[SERIALS[0]]) == 0
    return settings, ids, first, later


def test_backup_revoke_restore_sync(
    node: AnvilNode, tmp_path: Path, databases: tuple[str | None, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "recovery-tests")
    settings, ids, first, (later_jwt, later) = _backup_revoke_restore(node, tmp_path, databases[0])
    result = runner.invoke(app, ["sync", *cli_args(settings)])
    assert result.exit_code == 0, result.output
    assert "credential status" not in result.output
    # The snapshot held the first two indexes; the archive adds the third and brings the revocation back.
    assert "1 status-list indexes of credentials (1 revoked)" in " ".join(result.output.split())

    with open_world(settings, deploy=False) as world:
        world.actor_ids.update(ids)
        status_list, bits = _status_list(world)
        assert credentials.bit(bits, first[SERIALS[0]]) == 1
        assert credentials.bit(bits, first[SERIALS[1]]) == 0
        assert _credential(world, SERIALS[2]) == (later_jwt, later)  # the index given out after the snapshot
        _, newest = _credential(world, SERIALS[3])
        assert newest not in {*first.values(), later}
        assert _verify(world, tmp_path, later_jwt, status_list)["revoked"] is False


def test_a_restored_database_serving_before_sync_reuses_no_index(
    node: AnvilNode, tmp_path: Path, databases: tuple[str | None, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served before `circular sync`, the restored database would hand the third item's index to a fourth item: the
    archive's record at that index stops it, and the archive's records are replayed first."""
    monkeypatch.setenv("CIRCULAR_KEYSTORE_PASSWORD", "recovery-tests")
    settings, ids, first, (later_jwt, later) = _backup_revoke_restore(node, tmp_path, databases[0])
    with open_world(settings, deploy=False) as world:
        world.actor_ids.update(ids)
        _, newest = _credential(world, SERIALS[3])
        assert newest not in {*first.values(), later}
        assert _credential(world, SERIALS[2]) == (later_jwt, later)
        status_list, bits = _status_list(world)
        assert credentials.bit(bits, first[SERIALS[0]]) == 1  # the revocation came back with the records
        assert _verify(world, tmp_path, later_jwt, status_list)["revoked"] is False
    # The archive still gives each index to one item: a rebuild from it agrees.
    archive = Archive(settings.archive_path)
    subjects = {key: data["subject"] for key, _, data in archive.masterdata(credentials.STATUS_KIND)}
    assert subjects[str(later)].endswith(f"/21/{SERIALS[2]}") and subjects[str(newest)].endswith(f"/21/{SERIALS[3]}")
