"""Request and response bodies: a Create/Public pair per resource. Inputs forbid unknown fields. JSON is camelCase."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ledger.ids import check_serial, normalize_gtin
from ledger.lifecycle import Lifecycle
from materials import FULL_SHARE_BPS

from .config import CollectionPoint
from .models import ActorRole


def _gtin(value: str) -> str:
    return normalize_gtin(value)


def _gln(value: str) -> str:
    """A GS1 Global Location Number: 13 digits, the last the GS1 mod-10 check digit of the others."""
    if not (value.isascii() and value.isdigit() and len(value) == 13):
        raise ValueError(f"a GLN is 13 digits: {value!r}")
    body = [int(c) for c in value[:12]]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    if check != int(value[12]):
        raise ValueError(f"GLN {value} has a wrong check digit (expected {check})")
    return value


def _country(value: str) -> str:
    from .credentials import countries

    if value not in countries():
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
    return value


def _serial(value: str) -> str:
    return check_serial(value)


def _lot_number(value: str) -> str:
    return check_serial(value, "lot number")


def _in_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# A timestamp the database stored in UTC. SQLite hands timezone-aware columns back naive; without this the API said
# "2026-12-04T20:54:38" where its schema promises an RFC 3339 date-time, which needs the offset (schemathesis).
UtcDatetime = Annotated[datetime, AfterValidator(_in_utc)]


def _http_uri(value: str) -> str:
    if not value.startswith(("https://", "http://", "urn:")):
        raise ValueError("must be an http(s) or urn URI")
    return value


Gtin = Annotated[str, Field(min_length=8, max_length=14, examples=["09506000134352"]), AfterValidator(_gtin)]
Serial = Annotated[str, Field(min_length=1, max_length=20, examples=["A00001"]), AfterValidator(_serial)]
LotNumber = Annotated[str, Field(min_length=1, max_length=20, examples=["CO-2026-001"]), AfterValidator(_lot_number)]
LotId = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", examples=["0x" + "ab" * 32])]
MaterialCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,32}$", examples=["CO", "rPES"])]
Uri = Annotated[str, Field(min_length=5, max_length=500), AfterValidator(_http_uri)]
# The database keeps grams in 64-bit signed integers (BigInteger), below the contracts' uint96: a larger mass (already
# absurd: 9.2 trillion tonnes) would be accepted on-chain and then fail to be stored, so the API refuses it first.
MAX_GRAMS = 2**63 - 1
Grams = Annotated[int, Field(gt=0, le=MAX_GRAMS)]
MAX_ID = 2**31 - 1  # row ids are 32-bit (Integer): a larger one is no row, and the database would refuse the query


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Output(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


# -- actors ---------------------------------------------------------------------------------------------------------
class ActorCreate(Input):
    name: str = Field(min_length=1, max_length=120)
    role: ActorRole
    prefixes: list[Annotated[str, Field(pattern=r"^\d{4,12}$")]] = Field(default_factory=list, max_length=20)


class ActorPublic(Output):
    id: int
    name: str
    role: str
    address: str
    revoked: bool
    created_at: UtcDatetime


class ActorCreated(Output):
    actor: ActorPublic
    api_key: str = Field(description="Shown once: only its hash is stored.")


# -- events ---------------------------------------------------------------------------------------------------------
class AnchoringStatus(enum.StrEnum):
    PENDING = "pending"
    BATCHED = "batched"
    ANCHORED = "anchored"


class EventReceipt(Output):
    event_id: str
    anchoring: AnchoringStatus
    created: bool = Field(description="False when the very same event had been recorded before.")


class AnchorPublic(Output):
    root: str
    tx_hash: str | None
    block_number: int | None
    status: str


class EventStatusPublic(Output):
    event_id: str
    anchoring: AnchoringStatus
    signer: str
    batch: AnchorPublic | None
    proof: list[str] | None


# -- products -------------------------------------------------------------------------------------------------------
class ProductCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    brand_name: str | None = Field(None, max_length=200, description="Defaults to the brand actor's name.")
    description: str = Field("", max_length=5000)
    language: str = Field("en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    image_url: Uri | None = None
    care: str = Field("", max_length=5000)
    repair: str = Field("", max_length=5000)
    end_of_life: str = Field("", max_length=5000)
    return_info: str = Field("", max_length=5000)
    category_code: str | None = Field(
        None, pattern=r"^\d{1,5}$", description="UN CPC Ver. 2.1 code of the product's category (1 to 5 digits)."
    )
    category_name: str | None = Field(None, min_length=1, max_length=200, description="That category's CPC title.")
    facility_gln: Annotated[str, AfterValidator(_gln)] | None = Field(
        None, description="GS1 GLN (13 digits) of the facility the product is made at."
    )
    facility_name: str | None = Field(None, min_length=1, max_length=200)
    production_country: Annotated[str, AfterValidator(_country)] | None = Field(
        None, description="ISO 3166-1 alpha-2 code of the country of production."
    )
    lifespan_years: int | None = Field(
        None, ge=1, le=100, description="Expected technical lifetime in years (the passport stays available as long)."
    )
    volume_cm3: float | None = Field(None, gt=0, le=1e9, description="The product's own volume, in cm3.")
    gross_weight_grams: int | None = Field(None, gt=0, le=10**9, description="Weight as sold, packed, in grams.")
    gross_volume_cm3: float | None = Field(None, gt=0, le=1e9, description="Volume as sold, packed, in cm3.")

    @model_validator(mode="after")
    def _pairs(self) -> ProductCreate:
        if (self.category_code is None) != (self.category_name is None):
            raise ValueError("categoryCode and categoryName go together")
        if (self.facility_gln is None) != (self.facility_name is None):
            raise ValueError("facilityGln and facilityName go together")
        return self


class ProductPublic(Output):
    gtin: str
    digital_link: str
    brand_name: str
    name: str
    description: str
    language: str
    image_url: str | None
    care: str
    repair: str
    end_of_life: str
    return_info: str
    category_code: str | None = None
    category_name: str | None = None
    facility_gln: str | None = None
    facility_name: str | None = None
    production_country: str | None = None
    lifespan_years: int | None = None
    volume_cm3: float | None = None
    gross_weight_grams: int | None = None
    gross_volume_cm3: float | None = None


def _operator_id(value: str) -> str:
    """A GS1 GLN (13 digits, checked) or a Catena-X Business Partner Number of a legal entity (BPNL + 12)."""
    if value.startswith("BPNL"):
        if len(value) != 16 or not all(c.isdigit() or "A" <= c <= "Z" for c in value[4:]):
            raise ValueError(f"a BPNL is BPNL and 12 digits or capital letters: {value!r}")
        return value
    return _gln(value)


class OperatorCreate(Input):
    """A brand's data as the economic operator its passports name."""

    identifier: Annotated[str, AfterValidator(_operator_id)] = Field(
        description="The brand's GS1 GLN (legal entity) or Catena-X BPNL."
    )
    street: str = Field(min_length=1, max_length=200)
    house_number: str | None = Field(None, min_length=1, max_length=20)
    post_code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{0,10}$", description="At most 11 characters.")
    city: str = Field(min_length=1, max_length=120)
    country: Annotated[str, AfterValidator(_country)] = Field(description="ISO 3166-1 alpha-2 code.")
    email: str = Field(max_length=254, pattern=r"^[a-zA-Z0-9.!#$%&*+/=?^_`{|}~-]+@[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+$")
    phone: str | None = Field(None, max_length=40, pattern=r"^[+]?[0-9 ]+$")
    website: Uri | None = None


class OperatorPublic(Output):
    identifier: str
    name: str
    street: str
    house_number: str | None
    post_code: str
    city: str
    country: str
    email: str
    phone: str | None
    website: str | None
    updated_at: UtcDatetime


class CredentialRevocationCreate(Input):
    gtin: Gtin
    serial: Serial
    reason: str | None = Field(None, min_length=1, max_length=500)


class CredentialRevocationPublic(Output):
    item: str
    status_list_index: int
    status_list_credential: str
    revoked_at: datetime
    already_revoked: bool


class ProductsPublic(Output):
    data: list[ProductPublic]
    count: int = Field(description="How many products match, over every page.")


# -- lots -----------------------------------------------------------------------------------------------------------
class LotCreate(Input):
    gtin: Gtin | None = Field(None, description="A GTIN of the brand's: the lot is then `/01/<gtin>/10/<lotNumber>`.")
    lot_number: LotNumber
    material_code: MaterialCode
    mass_grams: Grams
    recycled_share_bps: int = Field(0, ge=0, le=FULL_SHARE_BPS)
    origin: str | None = Field(None, max_length=200)
    certificates: list[Uri] = Field(default_factory=list, max_length=20)


class LotPublic(Output):
    lot_id: str
    uri: str
    gtin: str | None
    lot_number: str
    material_code: str
    material: str = Field(description="The material's name in the catalogue (recovered material named as such).")
    mass_grams: int
    allocated_grams: int = Field(description="Grams drawn into items so far.")
    available_grams: int = Field(description="Grams left to draw.")
    recycled_share_bps: int
    recovered: bool
    source_items: list[str] | None
    origin: str | None
    certificates: list[str]
    owner: str
    created_at: UtcDatetime


class LotsPublic(Output):
    data: list[LotPublic]
    count: int = Field(description="How many lots match, over every page.")


class LotRegistered(Output):
    lot: LotPublic
    event: EventReceipt
    tx_hash: str


class ApprovalCreate(Input):
    operator_id: int = Field(gt=0, le=MAX_ID, description="The actor allowed to draw from the lot.")
    grams: int = Field(ge=0, le=MAX_GRAMS)


class ApprovalPublic(Output):
    lot_id: str
    operator_id: int
    operator_address: str
    grams: int
    tx_hash: str


# -- partners -------------------------------------------------------------------------------------------------------
class PartnerCreate(Input):
    actor_id: int = Field(
        gt=0, le=MAX_ID, description="The retailer, recycler or repairer the brand authorises to move its items."
    )


class PartnerPublic(Output):
    actor_id: int
    name: str
    role: str = Field(description="The role the partner acts in for the brand: its own (retailer, recycler, repairer).")
    address: str
    authorized: bool
    tx_hash: str | None = Field(default=None, description="The transaction that set it (none in a list).")


class PartnerList(Output):
    partners: list[PartnerPublic]


# -- items ----------------------------------------------------------------------------------------------------------
class Part(Input):
    """Grams of one lot, named by its id or by its lot number (among the lots the caller may draw from)."""

    lot_id: LotId | None = None
    lot_number: LotNumber | None = None
    grams: Grams

    @model_validator(mode="after")
    def _one_name(self) -> Part:
        if (self.lot_id is None) == (self.lot_number is None):
            raise ValueError("name the lot by lotId or by lotNumber (one of them)")
        return self


class ItemCreate(Input):
    gtin: Gtin
    serial: Serial
    composition: list[Part] = Field(min_length=1, max_length=50)
    read_point: Uri | None = None


class RunCreate(Input):
    gtin: Gtin
    serials: list[Serial] = Field(min_length=1)
    composition: list[Part] = Field(min_length=1, max_length=50, description="Grams per item, from each lot.")
    read_point: Uri | None = None


class PartPublic(Output):
    lot_id: str
    lot_number: str | None = None
    grams: int


class ItemPublic(Output):
    gtin: str
    serial: str
    digital_link: str
    item_id: str
    brand: str
    state: str
    mass_grams: int
    composition: list[PartPublic]
    run_id: str | None
    materialized: bool
    recovered_into: str | None


class ItemStateName(enum.StrEnum):
    """An item's state, as lists filter on it and items show it (``ledger.client.ItemState``, lower case)."""

    MANUFACTURED = "manufactured"
    SOLD = "sold"
    IN_USE = "in_use"
    RETURNED = "returned"
    COLLECTED = "collected"
    REFURBISHED = "refurbished"
    RESOLD = "resold"
    RECYCLED = "recycled"
    DISPOSED = "disposed"


class ItemsPublic(Output):
    data: list[ItemPublic]
    count: int = Field(description="How many items match, over every page.")


class ItemsMade(Output):
    items: list[ItemPublic]
    event: EventReceipt
    tx_hash: str


class RunMade(Output):
    run_id: str
    items_root: str
    gtin: str
    count: int
    first: str = Field(description="The first item's Digital Link.")
    event: EventReceipt
    tx_hash: str


# The lifecycle table's actions on items (``ledger.lifecycle``, each with its EPCIS vocabulary): one list, not two.
LifecycleAction = Lifecycle


def _drop_off_code(value: str) -> str:
    return value.strip().upper()


DropOffCode = Annotated[
    str,
    Field(
        min_length=4,
        max_length=32,
        pattern=r"^\s*[A-Za-z0-9]+(-[A-Za-z0-9]+)*\s*$",
        examples=["K7QM-3XWA"],
        description="The code a consumer got with a return request (letters and digits; case and dashes optional).",
    ),
    AfterValidator(_drop_off_code),
]


class LifecycleCreate(Input):
    """One step of one item, named by its GTIN and serial, or at intake by the drop-off code of its return request
    (which the step then closes)."""

    gtin: Gtin | None = None
    serial: Serial | None = None
    drop_off_code: DropOffCode | None = None
    action: LifecycleAction
    read_point: Uri | None = None

    @model_validator(mode="after")
    def _one_item(self) -> LifecycleCreate:
        by_key = self.gtin is not None and self.serial is not None
        if by_key == (self.drop_off_code is not None) or (self.gtin is None) != (self.serial is None):
            raise ValueError("name the item by gtin and serial, or by dropOffCode (one of the two)")
        return self


class ReturnRequestStatusPublic(Output):
    """A return request as intake sees it: which item it is for, and whether the item was received."""

    drop_off_code: str
    status: str = Field(description="open, or received once the item was returned or collected")
    item: str = Field(description="The item's Digital Link.")
    gtin: str
    serial: str
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = Field(None, description="After it the code is refused at intake (410).")
    received_at: UtcDatetime | None = None
    received_by: str | None = None


class LifecycleRecorded(Output):
    item: ItemPublic
    event: EventReceipt
    tx_hash: str | None = Field(description="None for a repair, which changes no on-chain state.")
    return_request: ReturnRequestStatusPublic | None = Field(
        default=None, description="The return request this step closed, when the item was named by its code."
    )


class ItemKey(Input):
    """One item of a bulk write: by its GTIN and serial, or at intake by its return request's drop-off code."""

    gtin: Gtin | None = None
    serial: Serial | None = None
    drop_off_code: DropOffCode | None = None

    @model_validator(mode="after")
    def _one_item(self) -> ItemKey:
        by_key = self.gtin is not None and self.serial is not None
        if by_key == (self.drop_off_code is not None) or (self.gtin is None) != (self.serial is None):
            raise ValueError("name the item by gtin and serial, or by dropOffCode (one of the two)")
        return self


MAX_BULK = 1_000


class LifecycleBatchCreate(Input):
    """One lifecycle step for many items (a till's day of sales, a recycler's intake): sent as one pipeline."""

    action: LifecycleAction
    items: list[ItemKey] = Field(min_length=1, max_length=MAX_BULK)
    read_point: Uri | None = None


class StepStatus(enum.StrEnum):
    RECORDED = "recorded"  # the step is on-chain, its event stored
    UNCHANGED = "unchanged"  # the item was in the step's state already (a retry of a recorded step): nothing written
    REFUSED = "refused"  # refused before any transaction (unknown item, a step its state or your role does not allow)
    FAILED = "failed"  # the transaction reverted or was refused by the node: nothing happened on-chain
    PENDING = "pending"  # sent, its receipt not seen yet: it completes on its own; retrying the request is safe


class StepProblem(Output):
    """Why a step was refused or failed, as the single write's problem details would say it."""

    status: int
    title: str
    detail: str | None = None
    error: str | None = None
    args: dict[str, Any] | None = None
    allowed_next: list[str] | None = None


class StepResult(Output):
    index: int = Field(description="The item's position in the request.")
    gtin: str | None
    serial: str | None
    drop_off_code: str | None = None
    status: StepStatus
    state: str | None = Field(description="The item's state after the request, when known.")
    event_id: str | None = None
    tx_hash: str | None = None
    problem: StepProblem | None = None


class LifecycleBatchRecorded(Output):
    action: str
    results: list[StepResult]
    recorded: int
    unchanged: int
    refused: int
    failed: int
    pending: int


class ItemRef(Input):
    gtin: Gtin
    serial: Serial


class RecyclingCreate(Input):
    items: list[ItemRef] = Field(min_length=1, max_length=1000)
    material_code: MaterialCode
    lot_number: LotNumber
    mass_grams: Grams
    read_point: Uri | None = None


class Recycled(Output):
    lot: LotPublic
    items: list[str]
    event: EventReceipt
    tx_hash: str


# -- corrections ----------------------------------------------------------------------------------------------------
class ErrorReason(enum.StrEnum):
    """CBV 2.0's error reasons for an EPCIS error declaration."""

    DID_NOT_OCCUR = "did_not_occur"
    INCORRECT_DATA = "incorrect_data"


EventId = Annotated[
    str,
    Field(
        pattern=r"^ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0$", examples=["ni:///sha-256;" + "ab" * 32 + "?ver=CBV2.0"]
    ),
]


class CorrectiveStep(Input):
    """A lifecycle step recorded to put things right (a return after a sale that should not have been)."""

    action: LifecycleAction
    read_point: Uri | None = None


class CorrectionCreate(Input):
    """A mistaken event declared in error (EPCIS 2.0 ``errorDeclaration``), and the steps that correct it."""

    event_id: EventId
    reason: ErrorReason
    corrective: list[CorrectiveStep] = Field(
        default_factory=list,
        max_length=5,
        description="Lifecycle steps on the event's item, recorded first; the declaration names their events.",
    )


class CorrectionRecorded(Output):
    corrected_event_id: str
    declaration: EventReceipt
    corrective: list[LifecycleRecorded]


class LotCorrection(Input):
    """A lot's master data corrected: its origin, its certificates (its mass and material are on-chain)."""

    origin: str | None = Field(None, max_length=200)
    certificates: list[Uri] | None = Field(None, max_length=20)
    reason: str = Field(min_length=1, max_length=500, description="Why: kept in the lot's history.")

    @model_validator(mode="after")
    def _something(self) -> LotCorrection:
        if self.origin is None and self.certificates is None:
            raise ValueError("correct the origin, the certificates, or both")
        return self


class MasterDataChangePublic(Output):
    changed_at: UtcDatetime
    by: str
    reason: str | None
    previous: dict[str, Any]
    current: dict[str, Any]
    declaration_id: str | None = Field(description="The error declaration that records the change among the events.")


class MasterDataHistory(Output):
    data: list[MasterDataChangePublic]
    count: int


class LotCorrected(Output):
    lot: LotPublic
    change: MasterDataChangePublic
    declaration: EventReceipt
    corrective: EventReceipt


# -- returns --------------------------------------------------------------------------------------------------------
class ReturnRequestCreate(Input):
    """Where to look for collection points: a coarse position, used for this answer only and never stored."""

    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class CollectionPointPublic(CollectionPoint):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    distance_km: float | None = None


class ReturnRequestPublic(Output):
    drop_off_code: str
    item: str
    collection_points: list[CollectionPointPublic]
    instructions: str
    created_at: UtcDatetime
    expires_at: UtcDatetime = Field(description="Bring the item back before: the code is refused after it.")


# -- EPCIS ----------------------------------------------------------------------------------------------------------
class CaptureJobPublic(BaseModel):
    captureID: str
    createdAt: UtcDatetime
    finishedAt: UtcDatetime | None = None
    running: bool
    success: bool
    captureErrorBehaviour: str
    errors: list[dict[str, Any]] = Field(default_factory=list)
    eventIDs: list[str] = Field(default_factory=list)
    replacedEventIDs: list[dict[str, Any]] = Field(
        default_factory=list, description="Events whose claimed eventID was not their CBV 2.0 hash, which replaced it."
    )


__all__ = [
    "MAX_BULK",
    "MAX_GRAMS",
    "MAX_ID",
    "ActorCreate",
    "ActorCreated",
    "ActorPublic",
    "AnchorPublic",
    "AnchoringStatus",
    "ApprovalCreate",
    "ApprovalPublic",
    "CaptureJobPublic",
    "CollectionPointPublic",
    "CorrectionCreate",
    "CorrectionRecorded",
    "CorrectiveStep",
    "CredentialRevocationCreate",
    "CredentialRevocationPublic",
    "DropOffCode",
    "ErrorReason",
    "EventId",
    "EventReceipt",
    "EventStatusPublic",
    "ItemCreate",
    "ItemKey",
    "ItemPublic",
    "ItemRef",
    "ItemStateName",
    "ItemsMade",
    "ItemsPublic",
    "LifecycleAction",
    "LifecycleBatchCreate",
    "LifecycleBatchRecorded",
    "LifecycleCreate",
    "LifecycleRecorded",
    "LotCorrected",
    "LotCorrection",
    "LotCreate",
    "LotPublic",
    "LotRegistered",
    "LotsPublic",
    "MasterDataChangePublic",
    "MasterDataHistory",
    "Part",
    "PartPublic",
    "PartnerCreate",
    "PartnerList",
    "PartnerPublic",
    "ProductCreate",
    "ProductPublic",
    "ProductsPublic",
    "Recycled",
    "RecyclingCreate",
    "ReturnRequestCreate",
    "ReturnRequestPublic",
    "ReturnRequestStatusPublic",
    "RunCreate",
    "RunMade",
    "StepProblem",
    "StepResult",
    "StepStatus",
]
