"""The off-chain projection of on-chain state, built from contract logs only.

Writers apply the logs of their own receipts (:meth:`Projector.apply_receipt`); ``circular rebuild`` replays every
log of the deployment into an empty database (:meth:`Projector.rebuild`). One code path for both, so a rebuilt
database equals the original field by field. Only logs emitted by the deployment's own addresses are ingested: a
look-alike contract emitting identical events is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from web3._utils.events import get_event_data
from web3.types import EventData, LogReceipt

from materials import material_code_from_bytes32

from .client import ItemState, Ledger
from .db import Base

ZERO32 = "0x" + "00" * 32


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def decode_material_code(code: bytes) -> str:
    return material_code_from_bytes32(code)


class ChainLot(Base):
    __tablename__ = "chain_lots"

    lot_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    material_code: Mapped[str] = mapped_column(String(32))
    gtin: Mapped[str | None] = mapped_column(String(14), index=True)
    lot_number: Mapped[str] = mapped_column(String(20))
    mass_grams: Mapped[int] = mapped_column(BigInteger)
    allocated_grams: Mapped[int] = mapped_column(BigInteger, default=0)
    recycled_share_bps: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(66))
    lineage_hash: Mapped[str] = mapped_column(String(66))
    source_items: Mapped[list[str] | None] = mapped_column(JSON)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))


class ChainRun(Base):
    __tablename__ = "chain_runs"

    run_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    brand: Mapped[str] = mapped_column(String(42), index=True)
    gtin: Mapped[str] = mapped_column(String(14), index=True)
    items_root: Mapped[str] = mapped_column(String(66))
    item_count: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(66))
    composition: Mapped[list[list[Any]] | None] = mapped_column(JSON)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))


class ChainItem(Base):
    __tablename__ = "chain_items"

    item_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    serial: Mapped[str] = mapped_column(String(20))
    brand: Mapped[str] = mapped_column(String(42), index=True)
    run_id: Mapped[str | None] = mapped_column(String(66), index=True)
    mass_grams: Mapped[int] = mapped_column(BigInteger)
    composition: Mapped[list[list[Any]]] = mapped_column(JSON)  # [[lot id, grams], ...]
    content_hash: Mapped[str] = mapped_column(String(66))
    state: Mapped[int] = mapped_column(Integer)
    materialized: Mapped[bool] = mapped_column(Boolean, default=False)
    recovered_into: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("gtin", "serial", name="uq_chain_items_gtin_serial"),)


class ChainTransition(Base):
    __tablename__ = "chain_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(66), index=True)
    from_state: Mapped[int] = mapped_column(Integer)
    to_state: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)


class ChainRole(Base):
    __tablename__ = "chain_roles"

    account: Mapped[str] = mapped_column(String(42), primary_key=True)
    role: Mapped[str] = mapped_column(String(66), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)


class ChainPrefix(Base):
    __tablename__ = "chain_prefixes"

    prefix: Mapped[str] = mapped_column(String(12), primary_key=True)
    brand: Mapped[str] = mapped_column(String(42), index=True)
    active: Mapped[bool] = mapped_column(Boolean)


class ChainAnchor(Base):
    __tablename__ = "chain_anchors"

    root: Mapped[str] = mapped_column(String(66), primary_key=True)
    anchorer: Mapped[str] = mapped_column(String(42))
    event_count: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str] = mapped_column(Text)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))


class IngestedLog(Base):
    """Which logs were applied, so that applying a receipt twice changes nothing."""

    __tablename__ = "chain_ingested_logs"

    tx_hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)


PROJECTION_TABLES = (ChainLot, ChainRun, ChainItem, ChainTransition, ChainRole, ChainPrefix, ChainAnchor, IngestedLog)


class Projector:
    """Applies the deployment's logs to the projection tables."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._by_topic: dict[tuple[str, bytes], tuple[Any, Any]] = {}
        for contract in ledger.contracts.values():
            for abi in contract.abi:
                if abi["type"] == "event":
                    signature = f"{abi['name']}({','.join(i['type'] for i in abi['inputs'])})"
                    self._by_topic[(contract.address.lower(), keccak(text=signature))] = (contract, abi)

    def decode(self, logs: Iterable[LogReceipt]) -> list[EventData]:
        decoded = []
        codec = self.ledger.web3.codec
        for log in logs:
            if not log["topics"]:
                continue
            known = self._by_topic.get((str(log["address"]).lower(), bytes(log["topics"][0])))
            if known is None:  # not ours: another address, even with an identical event, is never ingested
                continue
            decoded.append(get_event_data(codec, known[1], log))
        return decoded

    def apply_receipt(self, session: Session, receipt: Any) -> None:
        self.apply(session, self.decode(receipt["logs"]))

    def rebuild(
        self, session: Session, to_block: int | None = None, chunk: int = 5_000, from_block: int | None = None
    ) -> int:
        """Replay every log of the deployment (from `from_block`, when given), block range by block range. A log
        applied already is skipped. Returns the number of logs applied."""
        web3 = self.ledger.web3
        last = web3.eth.block_number if to_block is None else to_block
        addresses = [c.address for c in self.ledger.contracts.values()]
        applied = 0
        start = self.ledger.deployment.block_number - 10 if self.ledger.deployment.block_number > 10 else 0
        if from_block is not None:
            start = max(start, from_block)
        for low in range(start, last + 1, chunk):
            logs = web3.eth.get_logs({"address": addresses, "fromBlock": low, "toBlock": min(low + chunk - 1, last)})
            events = self.decode(sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])))
            self.apply(session, events)
            applied += len(events)
        return applied

    def apply(self, session: Session, events: Sequence[EventData]) -> None:
        for event in events:
            key = (_hex(event["transactionHash"]), int(event["logIndex"]))
            if session.get(IngestedLog, key) is not None:
                continue
            handler = getattr(self, f"_on_{event['event']}", None)
            if handler is not None:
                handler(session, event)
            session.add(IngestedLog(tx_hash=key[0], log_index=key[1], block_number=int(event["blockNumber"])))
            session.flush()

    # -- handlers, one per event --------------------------------------------------------------------------------
    def _on_RoleGranted(self, session: Session, e: EventData) -> None:
        session.merge(ChainRole(account=e["args"]["account"], role=_hex(e["args"]["role"]), active=True))

    def _on_RoleRevoked(self, session: Session, e: EventData) -> None:
        session.merge(ChainRole(account=e["args"]["account"], role=_hex(e["args"]["role"]), active=False))

    def _on_CompanyPrefixAssigned(self, session: Session, e: EventData) -> None:
        session.merge(ChainPrefix(prefix=e["args"]["prefix"], brand=e["args"]["brand"], active=True))

    def _on_CompanyPrefixRevoked(self, session: Session, e: EventData) -> None:
        session.merge(ChainPrefix(prefix=e["args"]["prefix"], brand=e["args"]["brand"], active=False))

    def _on_LotRegistered(self, session: Session, e: EventData) -> None:
        a = e["args"]
        session.add(
            ChainLot(
                lot_id=_hex(a["lotId"]),
                owner=a["owner"],
                material_code=decode_material_code(a["materialCode"]),
                gtin=a["gtin"] or None,
                lot_number=a["lotNumber"],
                mass_grams=a["massGrams"],
                allocated_grams=0,
                recycled_share_bps=a["recycledShareBps"],
                content_hash=_hex(a["contentHash"]),
                lineage_hash=_hex(a["lineageHash"]),
                source_items=None,
                block_number=e["blockNumber"],
                tx_hash=_hex(e["transactionHash"]),
            )
        )

    def _on_LotAllocated(self, session: Session, e: EventData) -> None:
        lot = session.get_one(ChainLot, _hex(e["args"]["lotId"]))
        lot.allocated_grams += int(e["args"]["grams"])

    def _on_ItemRegistered(self, session: Session, e: EventData) -> None:
        a = e["args"]
        composition = [[_hex(lot), int(g)] for lot, g in zip(a["lotIds"], a["grams"], strict=True)]
        session.add(
            ChainItem(
                item_id=_hex(a["itemId"]),
                gtin=a["gtin"],
                serial=a["serial"],
                brand=a["brand"],
                run_id=None,
                mass_grams=sum(g for _, g in composition),
                composition=composition,
                content_hash=_hex(a["contentHash"]),
                state=int(ItemState.NONE),
                materialized=True,
                recovered_into=None,
                block_number=e["blockNumber"],
            )
        )

    def _on_RunRegistered(self, session: Session, e: EventData) -> None:
        a = e["args"]
        session.add(
            ChainRun(
                run_id=_hex(a["runId"]),
                brand=a["brand"],
                gtin=a["gtin"],
                items_root=_hex(a["itemsRoot"]),
                item_count=a["itemCount"],
                content_hash=_hex(a["contentHash"]),
                composition=None,
                block_number=e["blockNumber"],
                tx_hash=_hex(e["transactionHash"]),
            )
        )

    def _on_RunContents(self, session: Session, e: EventData) -> None:
        a = e["args"]
        run = session.get_one(ChainRun, _hex(a["runId"]))
        composition = [[_hex(lot), int(g)] for lot, g in zip(a["lotIds"], a["gramsPerItem"], strict=True)]
        run.composition = composition
        serials: list[str] = bytes(a["serials"]).decode("utf-8", errors="replace").split("\n") if a["serials"] else []
        mass = sum(int(g) for g in a["gramsPerItem"])
        session.add_all(
            ChainItem(
                item_id=_hex(keccak(abi_encode(["string", "string"], [run.gtin, serial]))),
                gtin=run.gtin,
                serial=serial,
                brand=run.brand,
                run_id=run.run_id,
                mass_grams=mass,
                composition=composition,
                content_hash=run.content_hash,
                state=int(ItemState.MANUFACTURED),
                materialized=False,
                recovered_into=None,
                block_number=e["blockNumber"],
            )
            for serial in serials
        )

    def _on_ItemMaterialized(self, session: Session, e: EventData) -> None:
        item = session.get(ChainItem, _hex(e["args"]["itemId"]))
        if item is not None:
            item.materialized = True

    def _on_ItemStateChanged(self, session: Session, e: EventData) -> None:
        a = e["args"]
        item = session.get(ChainItem, _hex(a["itemId"]))
        if item is not None:
            item.state = int(a["to"])
        session.add(
            ChainTransition(
                item_id=_hex(a["itemId"]),
                from_state=int(a["from"]),
                to_state=int(a["to"]),
                account=a["account"],
                block_number=e["blockNumber"],
                tx_hash=_hex(e["transactionHash"]),
                log_index=e["logIndex"],
            )
        )

    def _on_ItemsRecycled(self, session: Session, e: EventData) -> None:
        """One event per recovered lot. Items recycled into several lots (one per material) keep the first in
        ``recovered_into``; every lot lists them all in ``source_items``."""
        a = e["args"]
        lot_id = _hex(a["lotId"])
        sources = [_hex(i) for i in a["itemIds"]]
        lot = session.get_one(ChainLot, lot_id)
        lot.source_items = sources
        for item in session.scalars(select(ChainItem).where(ChainItem.item_id.in_(sources))):
            if item.recovered_into is None:
                item.recovered_into = lot_id

    def _on_RootAnchored(self, session: Session, e: EventData) -> None:
        a = e["args"]
        session.add(
            ChainAnchor(
                root=_hex(a["root"]),
                anchorer=a["anchorer"],
                event_count=a["eventCount"],
                uri="",
                block_number=e["blockNumber"],
                tx_hash=_hex(e["transactionHash"]),
            )
        )

    def _on_BatchLocated(self, session: Session, e: EventData) -> None:
        session.get_one(ChainAnchor, _hex(e["args"]["root"])).uri = e["args"]["uri"]


__all__ = [
    "PROJECTION_TABLES",
    "ChainAnchor",
    "ChainItem",
    "ChainLot",
    "ChainPrefix",
    "ChainRole",
    "ChainRun",
    "ChainTransition",
    "IngestedLog",
    "Projector",
    "decode_material_code",
]
