"""Document versions (ledger/versions.py): JCS envelopes chained by hash, anchored beside the events as leaves of
their own kind, exported in evidence bundles and checked by `verify_bundle` and, independently, by public JavaScript
libraries (OpenZeppelin's merkle-tree, npm canonicalize, node's SHA-256)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.archive import Archive, verify_batch
from ledger.epcis import events as ev
from ledger.evidence import export_bundle, verify_bundle
from ledger.merkle import verify_proof
from ledger.outbox import Batch, EventStatus, split_proof
from ledger.service import LedgerService
from ledger.versions import (
    Canonical,
    DocumentVersion,
    NewVersion,
    VersionError,
    add_versions,
    canonical,
    envelope_bytes,
    history,
    version,
    version_leaf,
)

ROOT = Path(__file__).resolve().parents[2]
ITEM = "https://id.example/01/09506000134352/21/V1"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(content=st.dictionaries(st.text(max_size=8), _json, max_size=6), number=st.integers(1, 10_000))
def test_the_envelope_is_the_jcs_form_of_the_whole(content: dict[str, Any], number: int) -> None:
    meta = {"kind": "passport", "subject": ITEM, "number": number, "createdAt": "2026-11-01T12:00:00.000Z",
            "reason": "event", "previous": None}
    assert envelope_bytes(meta, canonical(content)) == rfc8785.dumps({**meta, "content": content})


@settings(max_examples=200, deadline=None)
@given(content=st.dictionaries(st.text(max_size=8), _json, min_size=1, max_size=6), data=st.data())
def test_parts_canonicalised_once_make_the_same_bytes(content: dict[str, Any], data: st.DataObject) -> None:
    shared = data.draw(st.sets(st.sampled_from(sorted(content))))
    mixed = {key: Canonical.of(value) if key in shared else value for key, value in content.items()}
    assert canonical(mixed) == rfc8785.dumps(content)


def test_what_json_cannot_say_exactly_is_refused() -> None:
    with pytest.raises(VersionError):
        canonical({"grams": 2**60})
    with pytest.raises(VersionError):
        canonical({"share": float("nan")})


def _add(service: LedgerService, content: dict[str, Any], reason: str = "event", subject: str = ITEM) -> list[Any]:
    with service.sessions.begin() as session:
        return add_versions(session, "passport", [NewVersion(subject, content, reason)])


def test_versions_are_numbered_chained_and_made_only_when_the_content_changes(service: LedgerService) -> None:
    [first] = _add(service, {"state": "made"}, "created")
    assert _add(service, {"state": "made"}) == []  # the same content: no version
    [second] = _add(service, {"state": "sold"})
    with service.sessions() as session:
        stored = history(session, "passport", ITEM)
    assert [v.number for v in stored] == [1, 2] and (first.number, second.number) == (1, 2)
    envelopes = [json.loads(v.document) for v in stored]
    assert envelopes[0]["previous"] is None and envelopes[1]["previous"] == stored[0].sha256.hex()
    assert [e["reason"] for e in envelopes] == ["created", "event"]
    for v in stored:
        assert hashlib.sha256(v.document.encode()).digest() == v.sha256
        assert rfc8785.dumps(json.loads(v.document)) == v.document.encode()  # stored in its canonical form
        assert v.leaf == version_leaf(v.sha256) and v.status == "pending"


def test_versions_are_anchored_with_the_events_as_leaves_of_their_own(service: LedgerService) -> None:
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    service.record(brand, [ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0)])
    _add(service, {"state": "sold"})
    [result] = service.worker(anchorer).drain()
    assert (result.events, result.versions) == (1, 1)
    with service.sessions() as session:
        stored = version(session, "passport", ITEM)
        batch = session.get_one(Batch, result.batch_id)
        count = batch.event_count
    assert stored is not None and stored.status == "anchored" and stored.root == result.root
    assert count == 2  # the count anchored on-chain is of every leaf
    proof = split_proof(stored.proof)
    assert verify_proof(result.root, version_leaf(stored.sha256), proof)
    assert service.ledger.verify_event_on_chain(result.root, version_leaf(stored.sha256), proof)
    # A version never passes for an event: its leaf is no event's digest, and its hash alone is not a leaf.
    assert not verify_proof(result.root, stored.sha256, proof)


def test_a_batch_of_versions_alone_is_anchored(service: LedgerService) -> None:
    anchorer = service.backend.dev_accounts()[6]
    for n in range(3):
        _add(service, {"n": n}, subject=f"{ITEM}-{n}")
    results = service.worker(anchorer).drain()
    assert [(r.events, r.versions) for r in results] == [(0, 3)]
    with service.sessions() as session:
        statuses = set(session.scalars(select(DocumentVersion.status)))
    assert statuses == {EventStatus.ANCHORED}


def test_hooks_run_after_each_confirmation(service: LedgerService) -> None:
    anchorer = service.backend.dev_accounts()[6]
    seen: list[int] = []
    service.after_anchoring.append(lambda result: seen.append(result.versions))
    _add(service, {"n": 1})
    service.worker(anchorer).drain()
    assert seen == [1]


def _bundle(service: LedgerService) -> dict[str, Any]:
    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    service.record(brand, [ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0)])
    _add(service, {"state": "made"}, "created")
    _add(service, {"state": "sold", "note": "é"})
    service.worker(anchorer).drain()
    return export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, ITEM)


def test_the_evidence_bundle_holds_and_verify_checks_every_version(service: LedgerService) -> None:
    bundle = _bundle(service)
    assert [v["number"] for v in bundle["versions"]] == [1, 2]
    verdict = verify_bundle(bundle, service.backend.web3)
    assert verdict.ok and [v.ok for v in verdict.versions] == [True, True], verdict
    assert set(verdict.versions[1].checks) == {"hash", "chain", "proof", "onChain"}

    tampered = json.loads(json.dumps(bundle))
    tampered["versions"][1]["document"] = tampered["versions"][1]["document"].replace('"sold"', '"disposed"')
    verdict = verify_bundle(tampered, service.backend.web3)
    assert not verdict.ok and "hashes to" in verdict.versions[1].problems[0]

    # A consistent forgery (a new text with its own hash) has no proof to the anchored root.
    forged = json.loads(json.dumps(bundle))
    text = forged["versions"][1]["document"].replace('"sold"', '"disposed"')
    forged["versions"][1].update(document=text, sha256="0x" + hashlib.sha256(text.encode()).hexdigest())
    verdict = verify_bundle(forged, service.backend.web3)
    assert not verdict.ok and verdict.versions[1].checks["proof"] is False

    swapped = json.loads(json.dumps(bundle))
    swapped["versions"].reverse()  # each version names its predecessor's hash: out of order, the chain breaks
    verdict = verify_bundle(swapped, service.backend.web3)
    assert not verdict.ok and verdict.versions[1].checks["chain"] is False


def test_a_version_not_anchored_yet_is_pending_not_verified(service: LedgerService) -> None:
    bundle = _bundle(service)
    _add(service, {"state": "in use"})
    bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, ITEM)
    verdict = verify_bundle(bundle, service.backend.web3)
    assert not verdict.ok and verdict.versions[-1].checks == {"hash": True, "chain": True, "anchored": False}


class _Node:
    """tests/ledger/oz_versions.mjs, asked one line at a time."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not on PATH, but node_modules is installed: install Node 20")
        script = Path(__file__).with_name("oz_versions.mjs")
        self.process = subprocess.Popen(
            [node, str(script)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ask(self, entry: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {"document": entry["document"], "sha256": entry["sha256"], "root": entry["anchor"]["root"],
                   "proof": entry["proof"]}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        assert "error" not in reply, reply
        return reply

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def test_openzeppelins_merkle_tree_verifies_a_version_leaf_in_node(service: LedgerService) -> None:
    bundle = _bundle(service)
    node = _Node()
    try:
        for entry in bundle["versions"]:
            reply = node.ask(entry)
            assert reply == {
                "canonical": True,
                "hashMatches": True,
                "leaf": "0x" + version_leaf(bytes.fromhex(entry["sha256"][2:])).hex(),
                "verified": True,
            }
        edited = dict(bundle["versions"][1], document=bundle["versions"][1]["document"].replace("sold", "lost"))
        reply = node.ask(edited)
        assert reply["canonical"] and not reply["hashMatches"] and not reply["verified"]
    finally:
        node.close()


def test_the_archive_holds_versions_and_gives_them_back_checked(service: LedgerService, tmp_path: Path) -> None:
    from ledger.anchoring import AnchoringWorker

    brand, anchorer = service.backend.dev_accounts()[1], service.backend.dev_accounts()[6]
    archive = Archive(tmp_path / "archive")
    service.record(brand, [ev.lifecycle(ev.Lifecycle.SOLD, [ITEM], at=T0 + timedelta(seconds=1))])
    _add(service, {"state": "sold"})
    worker = AnchoringWorker(service.ledger, service.sessions, anchorer, batch_size=50, max_wait_s=0, archive=archive)
    [result] = worker.drain()
    document = archive.fetch_batch(result.root)
    assert document is not None
    check = verify_batch(document, result.root, 2, service.domain)
    assert check.ok and len(check.events) == 1 and len(check.versions) == 1
    with service.sessions() as session:
        stored = version(session, "passport", ITEM)
    assert stored is not None and check.versions[0].document == stored.document
    assert b"".join(check.version_proofs[stored.leaf]) == stored.proof
    document["circ:batch"]["versions"][0]["document"] = stored.document.replace("sold", "made")
    assert not verify_batch(document, result.root, 2, service.domain).ok
