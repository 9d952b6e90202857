"""Reading an item's passport: its stored version, checked against its anchored hash, rendered once per version.

A read is one indexed lookup (``ledger_versions`` by kind, subject and number, with its batch's root) on a
connection of its own, then, in memory:

1. the stored bytes are hashed (SHA-256, microseconds) and must be the version's recorded hash, whose leaf
   (``ledger.versions.version_leaf``) must be the recorded leaf;
2. a version not anchored yet is **pending anchoring**, never verified;
3. an anchored one must have a Merkle proof from its leaf to its batch's root (checked once per leaf, proof and
   root, then remembered), and the root must be one the chain confirms (``EventAnchor.anchorOf``: asked once per
   root, then kept: a root anchored on-chain stays so). A chain that cannot be asked makes the answer
   **verification unavailable**, never verified.

Whatever the stored row says, the bytes served are rendered from the bytes just hashed: an edit of the row (of the
document, of its hash, of its proof or batch) is caught on the next read. Renderings are kept by the document's
hash, the resource, the request's scheme and host and the verdict, so each version is rendered once per page kind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine

from ledger.merkle import verify_proof
from ledger.outbox import EventStatus, split_proof
from ledger.versions import version_leaf

from . import passport as pp
from .access import Tier, restrict, withheld
from .health import monitor_of, unavailable_detail
from .links import JSONLD, item_path
from .state import AppState
from .versions import KIND, REASONS

log = logging.getLogger("circular.api.reads")

ANCHORED = EventStatus.ANCHORED.name  # as the Enum column stores it
UNAVAILABLE_RETRY_S = 5.0  # after the chain could not be asked about a root, ask again no sooner than this


@dataclass(frozen=True)
class VersionRow:
    number: int
    document: str
    sha256: bytes
    leaf: bytes
    status: str
    proof: bytes | None
    root: bytes | None
    tx_hash: bytes | None
    block_number: int | None
    created_at: Any = None
    reason: str = ""


@dataclass(frozen=True)
class Check:
    """The verdict on a stored version: ``verified``, ``pending`` (anchoring), ``failed`` or ``unavailable``."""

    status: str
    problems: tuple[str, ...] = ()
    anchored_at: int | None = None  # the anchoring block's timestamp (from the chain), when verified

    @property
    def checked_at(self) -> str:
        if self.anchored_at is None:
            return ""
        return datetime.fromtimestamp(self.anchored_at, UTC).isoformat(timespec="seconds")


class VersionStore:
    """The passport's lookups, on a database connection of its own (outside any transaction, so every read sees
    the latest commit), shared by the event loop's fast path and the routes under one lock."""

    COLUMNS = "v.number, v.document, v.sha256, v.leaf, v.status, v.proof, b.root, b.tx_hash, b.block_number"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        mark = "?" if self.sqlite else "%s"
        base = (
            f"SELECT {self.COLUMNS} FROM ledger_versions v LEFT JOIN ledger_batches b ON b.id = v.batch_id "
            f"WHERE v.kind = {mark} AND v.subject = {mark}"
        )
        self._latest = base + " ORDER BY v.number DESC LIMIT 1"
        self._numbered = base + f" AND v.number = {mark}"
        self._history = (
            f"SELECT {self.COLUMNS}, v.created_at, v.reason FROM ledger_versions v "
            f"LEFT JOIN ledger_batches b ON b.id = v.batch_id WHERE v.kind = {mark} AND v.subject = {mark} "
            "ORDER BY v.number"
        )
        self._exists = f"SELECT 1 FROM ledger_versions WHERE kind = {mark} AND subject = {mark} LIMIT 1"
        self._connection: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        fairy = self.engine.raw_connection()
        connection: Any = fairy.driver_connection
        fairy.detach()  # ours for good, never handed back to the pool in autocommit mode
        if self.sqlite:
            connection.isolation_level = None  # no transaction left open: each read sees the latest commit
        else:
            connection.autocommit = True
        return connection

    def _fetch(self, sql: str, params: tuple[Any, ...], many: bool = False) -> Any:
        with self._lock:
            for attempt in range(2):
                try:
                    if self._connection is None:
                        self._connection = self._connect()
                    cursor = self._connection.cursor()
                    try:
                        cursor.execute(sql, params)
                        return cursor.fetchall() if many else cursor.fetchone()
                    finally:
                        cursor.close()
                except Exception:
                    if self._connection is not None:
                        with contextlib.suppress(Exception):
                            self._connection.close()
                        self._connection = None
                    if attempt:
                        raise
        return None  # pragma: no cover - the loop returns or raises

    @staticmethod
    def _row(raw: Any) -> VersionRow:
        return VersionRow(
            int(raw[0]),
            str(raw[1]),
            bytes(raw[2]),
            bytes(raw[3]),
            str(raw[4]),
            bytes(raw[5]) if raw[5] is not None else None,
            bytes(raw[6]) if raw[6] is not None else None,
            bytes(raw[7]) if raw[7] is not None else None,
            int(raw[8]) if raw[8] is not None else None,
            *(raw[9:11] if len(raw) > 9 else ()),
        )

    def read(self, subject: str, number: int | None = None) -> VersionRow | None:
        """Version `number` of `subject`'s passport (the newest when None)."""
        if number is None:
            raw = self._fetch(self._latest, (KIND, subject))
        else:
            raw = self._fetch(self._numbered, (KIND, subject, number))
        return self._row(raw) if raw is not None else None

    def exists(self, subject: str) -> bool:
        """Whether `subject` has a passport (a registered item of a registered product)."""
        return self._fetch(self._exists, (KIND, subject)) is not None

    def history(self, subject: str) -> list[VersionRow]:
        return [self._row(raw) for raw in self._fetch(self._history, (KIND, subject), many=True)]


class Verifier:
    """Checks stored versions (see the module's docstring); remembers what never changes: confirmed roots and the
    proofs and documents already checked."""

    def __init__(self, state: AppState, max_entries: int = 100_000) -> None:
        self.state = state
        self.max_entries = max_entries
        self._roots: dict[bytes, int] = {}  # root → the anchoring block's timestamp, as the chain says
        self._unavailable_until = 0.0
        self._proofs: set[tuple[bytes, bytes, bytes]] = set()  # (leaf, proof, root) that verify
        self._lock = threading.Lock()

    def check(self, row: VersionRow, digest: bytes, envelope: Mapping[str, Any], subject: str) -> Check:
        if digest != row.sha256:
            return Check("failed", ("the stored passport does not hash to its recorded hash",))
        if version_leaf(digest) != row.leaf:
            return Check("failed", ("the passport's recorded Merkle leaf is not its hash's",))
        if envelope.get("kind") != KIND or envelope.get("subject") != subject or envelope.get("number") != row.number:
            return Check("failed", ("the stored passport is not this item's version",))
        if row.status != ANCHORED or row.root is None:
            return Check("pending")
        proof = row.proof or b""
        key = (row.leaf, proof, row.root)
        if key not in self._proofs:
            if len(proof) % 32 or not verify_proof(row.root, row.leaf, split_proof(proof)):
                return Check("failed", ("the passport's Merkle proof does not lead to its batch's root",))
            with self._lock:
                if len(self._proofs) >= self.max_entries:
                    self._proofs.clear()
                self._proofs.add(key)
        monitor = monitor_of(self.state)
        if monitor.degraded():  # the node is away or not our chain: what it said before proves nothing now
            return Check("unavailable", (unavailable_detail(monitor.status),))
        anchored_at = self._roots.get(row.root)
        if anchored_at is None:
            if time.monotonic() < self._unavailable_until:
                return Check("unavailable", ("verification unavailable right now: the chain cannot be asked",))
            try:
                anchorer, stamp, _ = self.state.service.ledger.anchor.functions.anchorOf(row.root).call()
            except Exception as exc:  # the node is away: say so, and ask again a little later
                log.warning("cannot ask the chain about root 0x%s: %s", row.root.hex(), exc)
                monitor.fault(exc)
                self._unavailable_until = time.monotonic() + UNAVAILABLE_RETRY_S
                return Check("unavailable", ("verification unavailable right now: the chain cannot be asked",))
            if int(anchorer, 16) == 0:
                return Check("failed", (f"root 0x{row.root.hex()} is not anchored on-chain",))
            anchored_at = int(stamp)
            with self._lock:
                self._roots[row.root] = anchored_at
        return Check("verified", (), anchored_at)


class Renderings:
    """Rendered answers by (document hash, resource, scheme and host, verdict), least recently used out first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: tuple[Any, ...], body: bytes) -> None:
        if len(body) > self.max_bytes // 8:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = body
            self._bytes += len(body)
            while self._bytes > self.max_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)


class View(dict[str, Any]):
    """A dict whose keys read as attributes too: the stored content, as the templates and ``pp.jsonld`` use the
    objects it was built from."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _views(content: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in content.items():
        if isinstance(value, dict):
            out[key] = View(value)
        elif isinstance(value, list):
            out[key] = [View(v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str
    version: int
    status: str


HTML_MEDIA = "text/html; charset=utf-8"


class PassportReads:
    """An app's passport reads: the store, the verifier, the renderings and the parsed documents."""

    def __init__(self, state: AppState, templates: Jinja2Templates) -> None:
        self.state = state
        self.templates = templates
        self.store = VersionStore(state.service.engine)
        self.verifier = Verifier(state)
        self.renderings = Renderings(max(1, state.api_settings.response_cache_mb) * 1_000_000)
        self._envelopes: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._registered: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def registered(self, subject: str) -> bool:
        """Whether `subject` has a passport. A registered item stays registered, so a yes is remembered (a bounded
        set, least recently asked out first) and a scan of a known item costs no query; a no is asked again."""
        with self._lock:
            if subject in self._registered:
                self._registered.move_to_end(subject)
                return True
        if not self.store.exists(subject):
            return False
        with self._lock:
            self._registered[subject] = None
            while len(self._registered) > 200_000:
                self._registered.popitem(last=False)
        return True

    def _envelope(self, digest: bytes, document: str) -> dict[str, Any]:
        with self._lock:
            found = self._envelopes.get(digest)
            if found is not None:
                self._envelopes.move_to_end(digest)
                return found
        try:
            envelope = json.loads(document)
        except ValueError:
            envelope = {}
        if not isinstance(envelope, dict):
            envelope = {}
        with self._lock:
            self._envelopes[digest] = envelope
            while len(self._envelopes) > 4_096:
                self._envelopes.popitem(last=False)
        return envelope

    def passport(
        self,
        resource: str,
        subject: str,
        gtin: str,
        serial: str,
        base: str,
        number: int | None = None,
        tier: Tier = Tier.PUBLIC,
    ) -> Answer | None:
        """The page (``passport``) or JSON-LD (``passport.jsonld``) of a stored version as readers of `tier` may see
        it (``api/access.py``); None when there is none."""
        row = self.store.read(subject, number)
        if row is None:
            return None
        digest = hashlib.sha256(row.document.encode()).digest()
        envelope = self._envelope(digest, row.document)
        check = self.verifier.check(row, digest, envelope, subject)
        key = (digest, resource, base, check.status, check.anchored_at, number is None, tier.value)
        body = self.renderings.get(key)
        if body is None:
            body = self._render(resource, envelope, row, digest, check, gtin, serial, base, number is None, tier)
            self.renderings.put(key, body)
        media = JSONLD if resource == "passport.jsonld" else HTML_MEDIA
        return Answer(body, media, row.number, check.status)

    def _links(self, gtin: str, serial: str, base: str, uri: str) -> dict[str, str]:
        from urllib.parse import quote

        path = item_path(gtin, serial)
        return {
            "passport": f"{base}{path}/passport",
            "jsonld": f"{base}{path}/passport.jsonld",
            "credential": f"{base}{path}/credential",
            "versions": f"{base}{path}/passport/versions",
            "evidence": f"{base}{path}/evidence",
            "verification": f"{base}{path}/verification",
            "returns": f"{base}{path}/return-requests",
            "qr": f"{base}{path}/qr.svg",
            "product": f"{base}/01/{gtin}/product",
            "epcis": f"{base}/epcis/events?MATCH_anyEPC={quote(uri, safe='')}",
        }

    def _render(
        self,
        resource: str,
        envelope: Mapping[str, Any],
        row: VersionRow,
        digest: bytes,
        check: Check,
        gtin: str,
        serial: str,
        base: str,
        current: bool,
        tier: Tier = Tier.PUBLIC,
    ) -> bytes:
        stored = envelope.get("content") or {}
        content = _views(restrict(stored, tier))
        access = {"tier": tier.value, "withheld": withheld(stored, tier)}
        uri = str(content.get("uri", ""))
        links = self._links(gtin, serial, base, uri)
        verdict = pp.Verdict(check.status, 0, check.checked_at, list(check.problems))
        version = {
            "number": row.number,
            "created_at": envelope.get("createdAt", ""),
            "reason": envelope.get("reason", ""),
            "reason_text": REASONS.get(str(envelope.get("reason", "")), str(envelope.get("reason", ""))),
            "sha256": digest.hex(),
            "previous": envelope.get("previous"),
            "current": current,
            "root": "0x" + row.root.hex() if row.root is not None and check.status == "verified" else None,
            "tx_hash": "0x" + row.tx_hash.hex() if row.tx_hash is not None and check.status == "verified" else None,
            "block_number": row.block_number if check.status == "verified" else None,
        }
        if resource == "passport.jsonld":
            body = pp.jsonld(
                uri=uri,
                product=content["product"],
                item=content["item"],
                materials=content["materials"],
                recycled=content["recycled"],
                generations=content["generations"],
                entries=content["timeline"],
                verdict=verdict,
                links=links,
                became=content.get("became") or [],
                received=content.get("received"),
            )
            body["circ:access"] = {"circ:tier": access["tier"], "circ:withheld": access["withheld"]}
            body["circ:version"] = {
                "circ:number": row.number,
                "circ:createdAt": version["created_at"],
                "circ:reason": version["reason"],
                "circ:sha256": version["sha256"],
                "circ:previous": version["previous"],
                "circ:versions": {"@id": links["versions"]},
            }
            if version["root"] is not None:
                body["circ:verification"]["circ:anchor"] = {
                    "circ:root": version["root"],
                    "circ:txHash": version["tx_hash"],
                    "circ:blockNumber": version["block_number"],
                }
            return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        product = content["product"]
        context = {
            **content,
            "title": f"{product['name']}: product passport",
            "verdict": verdict,
            "links": links,
            "version": version,
            "access": access,
            "collection_points": self.state.api_settings.collection_points,
        }
        return self.templates.get_template("passport.html").render(context).encode()

    def history(self, subject: str, gtin: str, serial: str, base: str) -> dict[str, Any] | None:
        """The version list of `subject`'s passport (None when it has none)."""
        rows = self.store.history(subject)
        if not rows:
            return None
        path = f"{base}{item_path(gtin, serial)}"
        entries = []
        for row in rows:
            anchoring: dict[str, Any] = {"status": "anchored" if row.status == ANCHORED else "pending"}
            if row.status == ANCHORED and row.root is not None:
                anchoring.update(
                    root="0x" + row.root.hex(),
                    txHash="0x" + row.tx_hash.hex() if row.tx_hash is not None else None,
                    blockNumber=row.block_number,
                )
            created = row.created_at
            if isinstance(created, str):  # SQLite hands the column back as its text, in UTC
                created = datetime.fromisoformat(created)
            if isinstance(created, datetime):
                created = created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
                created = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            entries.append(
                {
                    "number": row.number,
                    "createdAt": str(created),
                    "reason": row.reason,
                    "sha256": row.sha256.hex(),
                    "anchoring": anchoring,
                    "passport": f"{path}/passport?version={row.number}",
                    "jsonld": f"{path}/passport.jsonld?version={row.number}",
                }
            )
        return {"item": subject, "current": rows[-1].number, "versions": entries}


__all__ = ["Answer", "Check", "PassportReads", "Renderings", "Verifier", "VersionRow", "VersionStore", "View"]
