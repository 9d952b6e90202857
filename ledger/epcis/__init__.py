"""EPCIS 2.0 for the ledger: event construction (``events``) and CBV 2.0 Event Hash IDs (``hashing``)."""

from .hashing import (
    EventHashContext,
    EventHashError,
    InvalidEventError,
    MalformedEventHashIdError,
    document_event_hash_ids,
    document_event_prehashes,
    document_events,
    event_hash_id,
    event_prehash,
    hash_digest,
)

__all__ = [
    "EventHashContext",
    "EventHashError",
    "InvalidEventError",
    "MalformedEventHashIdError",
    "document_event_hash_ids",
    "document_event_prehashes",
    "document_events",
    "event_hash_id",
    "event_prehash",
    "hash_digest",
]
