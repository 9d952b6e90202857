"""Evidence bundles: one JSON file per item that anyone can check with public tools alone.

A bundle holds the chain id, the EventAnchor contract, the item's Digital Link and, per event, the event itself, its
CBV 2.0 Event Hash ID, its signer's EIP-712 signature, the anchor (root, transaction, block) and the Merkle proof; and
per version of the item's passport (``ledger/versions.py``), its exact canonical text, its SHA-256, the anchor and the
Merkle proof of its leaf. Versions are checked like events: the text must be canonical JCS and hash to the recorded
hash, name its predecessor's hash, and its leaf must lead to a root anchored on-chain.
:func:`verify_bundle` recomputes every hash from the event itself, recovers every signature, checks every proof
offline, and checks every root on-chain: the root must be in a ``RootAnchored`` log that ``contract`` emitted in
``txHash``, on the canonical chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from materials import bps_to_fraction

from . import versions
from .artifacts import load_artifact
from .claims import ContentCheck, check_recycled_content, stated_share
from .epcis.corrections import is_declaration, record_id
from .epcis.hashing import event_hash_id, hash_digest
from .lifecycle import Action, action_of_event
from .merkle import verify_proof
from .outbox import Outbox, OutboxEvent, proofs_as_hex, split_proof
from .signing import EventDomain, recover_event_signer

BUNDLE_FORMAT = "circular-ledger-evidence/1"


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def bundle_entry(row: OutboxEvent) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "event": row.event,
        "eventID": row.event_id,
        "signature": {"signer": row.signer, "deadline": row.deadline, "value": _hex(row.signature)},
        "anchor": None,
        "proof": proofs_as_hex(split_proof(row.proof)) if row.proof is not None else None,
    }
    if row.batch is not None and row.batch.block_number is not None and row.batch.tx_hash is not None:
        entry["anchor"] = {
            "root": _hex(row.batch.root),
            "txHash": _hex(row.batch.tx_hash),
            "blockNumber": row.batch.block_number,
        }
    return entry


def evidence_rows(outbox: Outbox, item_uri: str) -> list[OutboxEvent]:
    """The events an item's passport rests on, and no others, oldest first: every event naming the item; the event
    registering each lot it is made of; for a recovered lot, the recycling event that made it and, for each item
    recycled into it, the event that made that item and its collection; and so on through every generation.

    Walked a generation at a time (its lots, then its items, each a set-based query). Events that only share a lot
    with the item (other items made from the same virgin lot) are not part of its evidence and stay out."""
    chosen: dict[str, OutboxEvent] = {}
    own = outbox.events_for(item_uri)
    lots: set[str] = set()
    for row in own:
        chosen[row.event_id] = row
        if _makes(row.event, item_uri):
            lots.update(uri for uri, _ in _quantity_classes(row.event, "inputQuantityList"))
    seen_lots: set[str] = set()
    seen_items = {item_uri}
    while lots:
        new_lots = sorted(lots - seen_lots)
        seen_lots.update(new_lots)
        sources: set[str] = set()
        for lot, rows in outbox.events_for_many(new_lots).items():
            for row in rows:
                step = action_of_event(row.event)
                action = step.action if step is not None else None
                if action is Action.LOT and lot in _classes_of(row.event, "quantityList"):
                    chosen.setdefault(row.event_id, row)
                elif action is Action.RECYCLED and lot in _classes_of(row.event, "outputQuantityList"):
                    chosen.setdefault(row.event_id, row)
                    sources.update(str(uri) for uri in row.event.get("inputEPCList") or ())
        new_items = sorted(sources - seen_items)
        seen_items.update(new_items)
        lots = set()
        for source, rows in outbox.events_for_many(new_items).items():
            for row in rows:
                step = action_of_event(row.event)
                action = step.action if step is not None else None
                if action is Action.MANUFACTURED and _makes(row.event, source):
                    chosen.setdefault(row.event_id, row)
                    lots.update(uri for uri, _ in _quantity_classes(row.event, "inputQuantityList"))
                elif action is Action.COLLECTED:
                    chosen.setdefault(row.event_id, row)
    return sorted(chosen.values(), key=lambda r: r.id)


def _makes(event: dict[str, Any], item_uri: str) -> bool:
    step = action_of_event(event)
    return step is not None and step.action is Action.MANUFACTURED and item_uri in (event.get("outputEPCList") or ())


def _quantity_classes(event: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    return [
        (str(entry["epcClass"]), entry.get("quantity"))
        for entry in event.get(key) or ()
        if isinstance(entry, dict) and "epcClass" in entry
    ]


def _classes_of(event: dict[str, Any], key: str) -> set[str]:
    return {uri for uri, _ in _quantity_classes(event, key)}


def export_bundle(outbox: Outbox, chain_id: int, contract: str, item_uri: str) -> dict[str, Any]:
    """The evidence bundle of `item_uri`: the events its passport rests on (:func:`evidence_rows`) and its passport's
    versions. The CLI's ``export`` and the API's ``/evidence`` both make it here, so both give the same bytes."""
    ordered = evidence_rows(outbox, item_uri)
    with outbox.sessions() as session:
        stored = versions.history_of(session, item_uri)
    return {
        "format": BUNDLE_FORMAT,
        "chainId": chain_id,
        "contract": contract,
        "item": item_uri,
        "events": [bundle_entry(r) for r in ordered],
        "versions": [version_entry(v) for v in stored],
    }


def bundle_text(bundle: dict[str, Any]) -> str:
    """A bundle as the file ``circular export`` writes and the API's ``/evidence`` answers: the same bytes."""
    return json.dumps(bundle, indent=2) + "\n"


def version_entry(stored: versions.StoredVersion) -> dict[str, Any]:
    """A document version (a passport) in a bundle: its exact canonical text, hash, anchor and Merkle proof."""
    entry: dict[str, Any] = {
        "kind": stored.kind,
        "subject": stored.subject,
        "number": stored.number,
        "document": stored.document,
        "sha256": _hex(stored.sha256),
        "anchor": None,
        "proof": None,
    }
    if stored.root is not None and stored.tx_hash is not None and stored.block_number is not None:
        anchor = {"root": _hex(stored.root), "txHash": _hex(stored.tx_hash), "blockNumber": stored.block_number}
        entry["anchor"] = anchor
        entry["proof"] = proofs_as_hex(split_proof(stored.proof))
    return entry


@dataclass
class EventVerdict:
    event_id: str
    ok: bool
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def fail(self, check: str, problem: str) -> None:
        self.checks[check] = False
        self.problems.append(problem)
        self.ok = False


@dataclass
class VersionVerdict:
    """The checks of one document version: ``hash`` (its text is canonical and hashes to its hash, and it is the
    version of the bundle's item it says), ``chain`` (it names its predecessor's hash), ``anchored``, ``proof`` and
    ``onChain`` as for events."""

    kind: str
    number: int
    ok: bool
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def fail(self, check: str, problem: str) -> None:
        self.checks[check] = False
        self.problems.append(f"{self.kind} version {self.number}: {problem}")
        self.ok = False


@dataclass
class BundleVerdict:
    item: str
    events: list[EventVerdict]
    problems: list[str] = field(default_factory=list)
    # The timestamp of the newest block holding one of the bundle's verified roots: "verified as of" from the chain,
    # the same on every check (a clock reading would make two renderings of the same evidence differ).
    anchored_at: int | None = None
    versions: list[VersionVerdict] = field(default_factory=list)
    # The recycled share the bundle's (correctly hashed) events prove for the item, recomputed from them alone.
    content: ContentCheck | None = None
    stated_share: float | None = None  # what the newest passport version in the bundle states, 0..1

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and bool(self.events)
            and all(e.ok for e in self.events)
            and all(v.ok for v in self.versions)
        )


def verify_bundle(bundle: dict[str, Any], web3: Web3 | None) -> BundleVerdict:
    """Check every part of `bundle`. With `web3` None only the offline checks run (and the verdict says so)."""
    verdict = BundleVerdict(str(bundle.get("item", "")), [])
    try:
        chain_id = int(bundle["chainId"])
        contract = Web3.to_checksum_address(bundle["contract"])
        entries = list(bundle["events"])
    except (KeyError, TypeError, ValueError) as exc:
        verdict.problems.append(f"malformed bundle: {exc}")
        return verdict
    if bundle.get("format") != BUNDLE_FORMAT:
        verdict.problems.append(f"unknown bundle format {bundle.get('format')!r}")
    if not entries:
        verdict.problems.append("the bundle holds no events")
    anchor_contract = None
    if web3 is not None:
        if web3.eth.chain_id != chain_id:
            verdict.problems.append(f"the node is on chain {web3.eth.chain_id}, the bundle on chain {chain_id}")
            web3 = None
        else:
            anchor_contract = web3.eth.contract(address=contract, abi=load_artifact("EventAnchor").abi)
    else:
        verdict.problems.append("on-chain checks skipped: no node to ask")
    domain = EventDomain(chain_id, contract)
    roots_checked: dict[tuple[str, str], str | None] = {}
    block_times: dict[int, int] = {}
    for entry in entries:
        verdict.events.append(_verify_entry(entry, domain, web3, anchor_contract, roots_checked, block_times))
    previous: dict[str, str] = {}  # kind → hash of the version before, as the next one must name it
    for entry in bundle.get("versions") or []:
        verdict.versions.append(
            _verify_version(entry, verdict.item, previous, web3, anchor_contract, roots_checked, block_times)
        )
    verdict.anchored_at = max(block_times.values(), default=None)
    _check_content(bundle, entries, verdict)
    return verdict


def _check_content(bundle: dict[str, Any], entries: list[Any], verdict: BundleVerdict) -> None:
    """Whether the recycled share the passport states follows from the events (``ledger.claims``): recomputed from
    the events whose hash checked out, grams in and grams out, per material, through every generation."""
    hashed = [
        (str(entry.get("eventID", "")), entry["event"])
        for entry, checked in zip(entries, verdict.events, strict=True)
        if checked.checks.get("hash") and isinstance(entry, dict) and isinstance(entry.get("event"), dict)
    ]
    content = check_recycled_content(verdict.item, hashed)
    verdict.content = content
    verdict.stated_share = stated_share([v for v in bundle.get("versions") or [] if isinstance(v, dict)])
    if content.share_bps is None and verdict.stated_share is None:
        return  # a bundle of lifecycle events alone: it claims no composition, so there is none to check
    verdict.problems += [f"recycled content: {problem}" for problem in content.problems]
    if verdict.stated_share is not None and content.share_bps is not None:
        shown = round(bps_to_fraction(content.share_bps), 4)
        if shown != round(verdict.stated_share, 4):
            verdict.problems.append(
                f"recycled content: the passport states {verdict.stated_share:.2%}, the events prove {shown:.2%}"
            )


def _verify_version(
    entry: Any,
    item: str,
    previous: dict[str, str],
    web3: Web3 | None,
    anchor_contract: Any,
    roots_checked: dict[tuple[str, str], str | None],
    block_times: dict[int, int],
) -> VersionVerdict:
    try:
        kind, number, document = str(entry["kind"]), int(entry["number"]), str(entry["document"])
        claimed = _unhex(str(entry["sha256"]))
    except (KeyError, TypeError, ValueError) as exc:
        result = VersionVerdict("?", 0, True)
        result.fail("hash", f"malformed version entry: {exc}")
        return result
    result = VersionVerdict(kind, number, True)
    digest = hashlib.sha256(document.encode()).digest()
    if digest != claimed:
        result.fail("hash", f"hashes to 0x{digest.hex()}, not 0x{claimed.hex()}")
        return result
    try:
        envelope = json.loads(document)
        canonical = versions.canonical(envelope) == document.encode()
    except (ValueError, versions.VersionError):
        envelope, canonical = None, False
    if not isinstance(envelope, dict) or not canonical:
        result.fail("hash", "is not a canonical (JCS) JSON document")
        return result
    if envelope.get("kind") != kind or envelope.get("subject") != item or envelope.get("number") != number:
        result.fail("hash", f"is not version {number} of {item}")
        return result
    result.checks["hash"] = True
    expected = previous.get(kind)
    result.checks["chain"] = expected is None or envelope.get("previous") == expected
    if not result.checks["chain"]:
        result.fail("chain", f"names 0x{envelope.get('previous')} as its predecessor, not 0x{expected}")
    previous[kind] = digest.hex()
    anchor = entry.get("anchor")
    if not anchor:
        result.fail("anchored", "not anchored yet")
        return result
    try:
        root = _unhex(anchor["root"])
        proof = [_unhex(p) for p in entry.get("proof") or []]
    except (KeyError, TypeError, ValueError) as exc:
        result.fail("proof", f"malformed anchor or proof: {exc}")
        return result
    result.checks["proof"] = verify_proof(root, versions.version_leaf(digest), proof)
    if not result.checks["proof"]:
        result.fail("proof", "the Merkle proof of its leaf does not lead to the root")
    if web3 is not None:
        key = (anchor["root"], anchor["txHash"])
        if key not in roots_checked:
            roots_checked[key] = _root_problem(web3, anchor_contract, root, anchor, block_times)
        problem = roots_checked[key]
        result.checks["onChain"] = problem is None
        if problem is not None:
            result.fail("onChain", problem)
    return result


def _verify_entry(
    entry: dict[str, Any],
    domain: EventDomain,
    web3: Web3 | None,
    anchor_contract: Any,
    roots_checked: dict[tuple[str, str], str | None],
    block_times: dict[int, int],
) -> EventVerdict:
    claimed = str(entry.get("eventID", ""))
    result = EventVerdict(claimed, True)
    try:
        event = dict(entry["event"])
        recomputed = record_id(event)  # an error declaration's record binds its declaration too
        named = event_hash_id(event) if is_declaration(event) else recomputed
    except Exception as exc:
        result.fail("hash", f"event cannot be hashed: {exc}")
        return result
    result.checks["hash"] = recomputed == claimed and event.get("eventID", named) == named
    if not result.checks["hash"]:
        result.fail("hash", f"event hashes to {recomputed}, not {claimed}")
        return result
    digest = hash_digest(recomputed)
    signature = entry.get("signature") or {}
    try:
        signer = recover_event_signer(domain, digest, int(signature["deadline"]), _unhex(signature["value"]))
        result.checks["signature"] = signer.lower() == str(signature["signer"]).lower()
        if not result.checks["signature"]:
            result.fail("signature", f"signed by {signer}, not {signature['signer']}")
    except Exception as exc:
        result.fail("signature", f"bad signature: {exc}")
    anchor = entry.get("anchor")
    if not anchor:
        result.fail("anchored", "not anchored yet")
        return result
    try:
        root = _unhex(anchor["root"])
        proof = [_unhex(p) for p in entry.get("proof") or []]
    except (KeyError, TypeError, ValueError) as exc:
        result.fail("proof", f"malformed anchor or proof: {exc}")
        return result
    result.checks["proof"] = verify_proof(root, digest, proof)
    if not result.checks["proof"]:
        result.fail("proof", "the Merkle proof does not lead to the root")
    if web3 is not None:
        key = (anchor["root"], anchor["txHash"])
        if key not in roots_checked:
            roots_checked[key] = _root_problem(web3, anchor_contract, root, anchor, block_times)
        problem = roots_checked[key]
        result.checks["onChain"] = problem is None
        if problem is not None:
            result.fail("onChain", problem)
    return result


def _root_problem(
    web3: Web3, anchor_contract: Any, root: bytes, anchor: dict[str, Any], block_times: dict[int, int]
) -> str | None:
    """None when `root` is in a RootAnchored log of the contract in `txHash`, on the canonical chain (and then the
    block's timestamp is in `block_times`)."""
    try:
        receipt = web3.eth.get_transaction_receipt(anchor["txHash"])
    except TransactionNotFound:
        return f"transaction {anchor['txHash']} is not on the chain"
    if receipt["status"] != 1:
        return f"transaction {anchor['txHash']} failed"
    block = web3.eth.get_block(receipt["blockNumber"])
    if block["hash"] != receipt["blockHash"]:
        return f"transaction {anchor['txHash']} is not on the canonical chain"
    logs = [
        log
        for log in anchor_contract.events.RootAnchored().process_receipt(receipt, errors=DISCARD)
        if log["address"] == anchor_contract.address and bytes(log["args"]["root"]) == root
    ]
    if not logs:
        return f"no RootAnchored log of the root by {anchor_contract.address} in {anchor['txHash']}"
    if int(anchor.get("blockNumber", -1)) != receipt["blockNumber"]:
        return f"anchor block {anchor.get('blockNumber')} is not the transaction's block {receipt['blockNumber']}"
    block_times[int(receipt["blockNumber"])] = int(block["timestamp"])
    return None


__all__ = [
    "BUNDLE_FORMAT",
    "BundleVerdict",
    "EventVerdict",
    "VersionVerdict",
    "bundle_text",
    "evidence_rows",
    "export_bundle",
    "verify_bundle",
    "version_entry",
]
