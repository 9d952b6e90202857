"""The API's tables, on the one declarative base (:class:`ledger.db.Base`) shared with the ledger's outbox.

These hold what the chain does not: who the API's actors are (keys stored hashed), product master data, and the
off-chain records of the lots and items each write created, indexed for one-query resolution. Events themselves
live once, in the ledger's outbox (``ledger_events``); ``api_epcis_*`` index them for EPCIS queries.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

import ledger.outbox  # noqa: F401  (ledger_events must be in the metadata: api_epcis_events refers to it)
from ledger.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class ActorRole(enum.StrEnum):
    BRAND = "brand"
    RECYCLER = "recycler"
    RETAILER = "retailer"
    REPAIRER = "repairer"
    ADMIN = "admin"
    AUTHORITY = "authority"  # reads every passport field (market surveillance); no on-chain role, writes nothing


class Actor(Base):
    """Someone who writes through the API: a key (stored as its SHA-256) bound to an on-chain account and role."""

    __tablename__ = "api_actors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(16), index=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    key_name: Mapped[str] = mapped_column(String(80))  # Settings.actor_key(key_name): env key or keystore file
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # No two actors that may act share an account: the name of its key was once all that kept them apart.
    __table_args__ = (
        Index(
            "uq_api_actors_address_active",
            "address",
            unique=True,
            sqlite_where=text("revoked = 0"),
            postgresql_where=text("NOT revoked"),
        ),
    )


class Operator(Base):
    """A brand as the economic operator a passport names (Catena-X ``economicOperator``): its identifier (a GS1 GLN
    or a Catena-X BPNL), its registered address and a contact."""

    __tablename__ = "api_operators"

    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(16))
    street: Mapped[str] = mapped_column(String(200))
    house_number: Mapped[str | None] = mapped_column(String(20))
    post_code: Mapped[str] = mapped_column(String(20))
    city: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Product(Base):
    """A registered GTIN and its master data. A GTIN is registered by its brand's first lot, item or product write."""

    __tablename__ = "api_products"

    gtin: Mapped[str] = mapped_column(String(14), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), index=True)
    brand_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    image_url: Mapped[str | None] = mapped_column(String(500))
    care: Mapped[str] = mapped_column(Text, default="")
    repair: Mapped[str] = mapped_column(Text, default="")
    end_of_life: Mapped[str] = mapped_column(Text, default="")
    return_info: Mapped[str] = mapped_column(Text, default="")
    # What a UNTP Digital Product Passport requires of a product: its UN CPC category (code and name), the facility
    # it is made at (a GS1 GLN and its name) and its country of production (ISO 3166-1 alpha-2).
    category_code: Mapped[str | None] = mapped_column(String(5))
    category_name: Mapped[str | None] = mapped_column(String(200))
    facility_gln: Mapped[str | None] = mapped_column(String(13))
    facility_name: Mapped[str | None] = mapped_column(String(200))
    production_country: Mapped[str | None] = mapped_column(String(2))
    # What a Catena-X Generic Digital Product Passport requires of a product beyond that: its expected lifetime (the
    # passport stays available as long) and its dimensions: net volume, gross (packed) weight and volume.
    lifespan_years: Mapped[int | None] = mapped_column(Integer)
    volume_cm3: Mapped[float | None] = mapped_column(Float)
    gross_weight_grams: Mapped[int | None] = mapped_column(BigInteger)
    gross_volume_cm3: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


# A product's master data, as archived, recovered and corrected (api/recovery.py, api/services/corrections.py); the
# optional fields are those a product may lack (recovered as NULL rather than "").
OPTIONAL_PRODUCT_FIELDS = (
    "category_code",
    "category_name",
    "facility_gln",
    "facility_name",
    "production_country",
    "lifespan_years",
    "volume_cm3",
    "gross_weight_grams",
    "gross_volume_cm3",
)
PRODUCT_FIELDS = (
    "brand_name",
    "name",
    "description",
    "language",
    "image_url",
    "care",
    "repair",
    "end_of_life",
    "return_info",
    *OPTIONAL_PRODUCT_FIELDS,
)


class Lot(Base):
    """A material lot: virgin (a brand's, under a GTIN or a material code) or recovered (a recycler's)."""

    __tablename__ = "api_lots"

    lot_id: Mapped[str] = mapped_column(String(66), primary_key=True)  # the contracts' lot id, 0x-hex
    uri: Mapped[str] = mapped_column(String(512), unique=True)  # the lot's EPC class URI in events
    gtin: Mapped[str | None] = mapped_column(String(14))
    lot_number: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), index=True)
    material_code: Mapped[str] = mapped_column(String(32))
    mass_grams: Mapped[int] = mapped_column(BigInteger)
    # Grams drawn into items so far (the contract's `allocated`), kept by the completions of item and run writes.
    allocated_grams: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    recycled_share_bps: Mapped[int] = mapped_column(Integer)
    recovered: Mapped[bool] = mapped_column(Boolean, default=False)
    source_items: Mapped[list[str] | None] = mapped_column(JSON)  # recovered lots: the item ids recycled into it
    origin: Mapped[str | None] = mapped_column(String(200))
    certificates: Mapped[list[str]] = mapped_column(JSON, default=list)
    event_id: Mapped[str] = mapped_column(String(120))
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("gtin", "lot_number", name="uq_api_lots_gtin_lot"),)


class LotApproval(Base):
    """A lot's owner lets another actor draw grams from it (recovered material supplied to a brand)."""

    __tablename__ = "api_lot_approvals"

    lot_id: Mapped[str] = mapped_column(ForeignKey("api_lots.lot_id"), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), primary_key=True)
    grams: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Item(Base):
    """A made item. Items of a run keep their Merkle proof, to be materialized on-chain at their first transition."""

    __tablename__ = "api_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gtin: Mapped[str] = mapped_column(String(14))
    serial: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[str] = mapped_column(String(66), unique=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), index=True)
    composition: Mapped[list[list[Any]]] = mapped_column(JSON)  # [[lot id, grams], ...]
    mass_grams: Mapped[int] = mapped_column(BigInteger)
    certificates: Mapped[list[str]] = mapped_column(JSON, default=list)  # of its lots, for one-query resolution
    state: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(66), index=True)
    items_root: Mapped[str | None] = mapped_column(String(66))
    proof: Mapped[list[str] | None] = mapped_column(JSON)
    materialized: Mapped[bool] = mapped_column(Boolean, default=True)
    # Indexed: the provenance trace asks for the items recycled into a generation's lots (api/passport.py).
    recovered_into: Mapped[str | None] = mapped_column(String(66), index=True)
    # Who recorded the item's latest step (a retailer's sale, a recycler's collection): whose list it is in, with
    # its brand's.
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("api_actors.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("gtin", "serial", name="uq_api_items_gtin_serial"),)


class UnknownScan(Base):
    """A resolver request for a serial or lot that is not registered under a registered GTIN: kept for the audit."""

    __tablename__ = "api_unknown_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gtin: Mapped[str] = mapped_column(String(14))
    ai: Mapped[str] = mapped_column(String(4))  # 21 (serial) or 10 (lot)
    value: Mapped[str] = mapped_column(String(20))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_api_unknown_scans_key", "gtin", "ai", "value"),)


class Scan(Base):
    """A resolver request for a registered item: when, from which coarse region, by which (pseudonymous) client.

    Kept for the audit's clone rules (impossible travel, scans after recycling, scan bursts). No personal data:
    `region` is a country code, `client` a truncated hash of the client's address (api/scans.py).
    """

    __tablename__ = "api_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gtin: Mapped[str] = mapped_column(String(14))
    serial: Mapped[str] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2, when known
    client: Mapped[str] = mapped_column(String(16))
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_api_scans_item", "gtin", "serial", "scanned_at"),)


class ReturnRequest(Base):
    """A drop-off code for returning an item. No personal data."""

    __tablename__ = "api_return_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    item_pk: Mapped[int] = mapped_column(ForeignKey("api_items.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, received
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # After it the code is refused at intake and no longer counts against the item's open requests.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the item is taken in (returned to a store, collected by a recycler), with or without the code.
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("api_actors.id"))


class CaptureJob(Base):
    """An EPCIS capture job (``POST /epcis/capture``)."""

    __tablename__ = "api_capture_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), index=True)
    running: Mapped[bool] = mapped_column(Boolean, default=True)
    success: Mapped[bool] = mapped_column(Boolean, default=True)
    error_behaviour: Mapped[str] = mapped_column(String(16), default="rollback")
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    replaced: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # claimed eventIDs not the hash
    # Dropped once captured. Deferred: a job's status is polled while it runs, and loading (decoding) a
    # thousand-event document for each poll took the CPU the capture itself needed.
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EpcisEvent(Base):
    """Query index of one outbox event (``ledger_events``): the fields EPCIS queries filter on."""

    __tablename__ = "api_epcis_events"

    event_pk: Mapped[int] = mapped_column(ForeignKey("ledger_events.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), unique=True)
    event_type: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str | None] = mapped_column(String(10))
    biz_step: Mapped[str | None] = mapped_column(String(200), index=True)
    disposition: Mapped[str | None] = mapped_column(String(200), index=True)
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=False), index=True)  # UTC
    record_time: Mapped[datetime] = mapped_column(DateTime(timezone=False))  # UTC


class EpcisEpc(Base):
    """Which identifiers an event names, and in which field (epc, child, parent, input, output, class...)."""

    __tablename__ = "api_epcis_epcs"

    event_pk: Mapped[int] = mapped_column(ForeignKey("api_epcis_events.event_pk", ondelete="CASCADE"), primary_key=True)
    field: Mapped[str] = mapped_column(String(16), primary_key=True)
    epc: Mapped[str] = mapped_column(String(512), primary_key=True)

    __table_args__ = (Index("ix_api_epcis_epcs_epc", "epc", "field"),)


class WriteIntent(Base):
    """A write whose transaction is signed but whose database side is not yet done (see ``api/README.md``).

    Recorded, with the signed events and the signed transaction's bytes, before the transaction is sent; completed
    (events, API rows, status) in one database transaction once its receipt is in. One still ``pending`` after a
    crash is reconciled by its transaction hash: finished, sent again (same bytes), or failed.
    """

    __tablename__ = "api_write_intents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # which completion applies: "lifecycle", "item"
    subject: Mapped[str] = mapped_column(String(66), index=True)  # the item id: one write at a time per item
    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"))
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[bytes] = mapped_column(LargeBinary)
    tx: Mapped[dict[str, Any]] = mapped_column(JSON)  # the unsigned fields, to name a revert
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # signed EPCIS events, with signer and signature
    effect: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the completion writes to the API's rows
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, done, failed
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_api_write_intents_sender_nonce", "sender", "nonce"),)


class ConsoleSession(Base):
    """A signed-in console session (``/console``). The cookie holds a random token; only its SHA-256 is stored, so a
    leaked database yields no usable session. Ends at ``expires_at``, after ``idle`` without a request, or at sign-out
    (the row is deleted)."""

    __tablename__ = "api_console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # sent back in every form of the session, compared
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleLink(Base):
    """A one-time sign-in link for the console, printed by the admin's CLI: its token's SHA-256, used once."""

    __tablename__ = "api_console_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSubmission(Base):
    """One submission of a console form, by the form's own random key: a second click (or a resent form) finds it
    and gets the first one's answer instead of making a second write."""

    __tablename__ = "api_console_submissions"

    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what to answer again
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MasterDataChange(Base):
    """A correction of a lot's or a product's master data: what it said before, what it says since, who changed it
    and why. A lot's correction is also an EPCIS error declaration of its commissioning event and a corrective one
    (``declaration_id``): its history is in the events as well."""

    __tablename__ = "api_masterdata_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # lot, product
    key: Mapped[str] = mapped_column(String(66))  # the lot id or the GTIN
    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    current: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    declaration_id: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (Index("ix_api_masterdata_history_key", "kind", "key", "id"),)


class PassportBatch(Base):
    """An anchored batch whose passports have been rebuilt (``api/versions.py``): the rest are caught up."""

    __tablename__ = "api_passport_batches"

    batch_id: Mapped[int] = mapped_column(ForeignKey("ledger_batches.id", ondelete="CASCADE"), primary_key=True)
    done_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CredentialKey(Base):
    """A brand's credential signing key (public part; the private key is kept like the actor's other keys). The
    newest key not retired signs; every key stays in the brand's DID document for the credentials it signed."""

    __tablename__ = "api_credential_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"))
    kid: Mapped[str] = mapped_column(String(64))  # the JWK's RFC 7638 thumbprint
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("kid", name="uq_api_credential_keys_kid"),
        Index("ix_api_credential_keys_actor", "actor_id", "id"),
    )


class CredentialStatus(Base):
    """An item's place in its brand's revocation status list: the row id is the credentials' ``statusListIndex``;
    every passport credential of the item carries it."""

    __tablename__ = "api_credential_status"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(512))
    brand_id: Mapped[int] = mapped_column(ForeignKey("api_actors.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("api_actors.id"))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("subject", name="uq_api_credential_status_subject"),
        Index("ix_api_credential_status_brand", "brand_id", "id"),
    )


API_TABLES = (
    Actor,
    MasterDataChange,
    Product,
    Lot,
    LotApproval,
    Item,
    UnknownScan,
    Scan,
    ReturnRequest,
    CaptureJob,
    EpcisEvent,
    EpcisEpc,
    WriteIntent,
    ConsoleSession,
    ConsoleLink,
    ConsoleSubmission,
    PassportBatch,
    CredentialKey,
    CredentialStatus,
)

__all__ = [
    "API_TABLES",
    "OPTIONAL_PRODUCT_FIELDS",
    "PRODUCT_FIELDS",
    "Actor",
    "ActorRole",
    "CaptureJob",
    "ConsoleLink",
    "ConsoleSession",
    "ConsoleSubmission",
    "CredentialKey",
    "CredentialStatus",
    "EpcisEpc",
    "EpcisEvent",
    "Item",
    "Lot",
    "LotApproval",
    "MasterDataChange",
    "PassportBatch",
    "Product",
    "ReturnRequest",
    "Scan",
    "UnknownScan",
    "WriteIntent",
    "utcnow",
]
