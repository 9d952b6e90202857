"""Corrections the EPCIS 2.0 way: an error declaration, and the corrective events it names.

EPCIS 2.0 (section 7.4.1.4) corrects a mistaken event by recording it again with an ``errorDeclaration``
(``declarationTime``, a ``reason`` — CBV's ``did_not_occur`` or ``incorrect_data`` — and the ``correctiveEventIDs``
of the events that put things right), keeping its ``eventID``. The CBV 2.0 Event Hash ID leaves ``errorDeclaration``
out of its pre-hash on purpose, so that a declaration hashes to the event it declares: its ``eventID`` is the
original's Event Hash ID.

That is the right name for the event, and the wrong one for the ledger's record of it: a record named by the
original's hash would be the original (the outbox keeps one record per hash), and a signature over that hash would
not bind what is declared. So the ledger names a declaration's record by :func:`declaration_id`, the SHA-256 of a
fixed tag, the Event Hash ID and the JCS form (RFC 8785) of the ``errorDeclaration``, written like an Event Hash ID.
That is what is signed and anchored, and what a verifier recomputes (:func:`record_id`); the event itself keeps the
original's ``eventID``. Any other event's record is named by its Event Hash ID, as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import rfc8785

from .hashing import HASH_ID_PREFIX, HASH_ID_SUFFIX, event_hash_id

DECLARATION_TAG = b"circular-ledger/error-declaration/1"
REASONS = ("did_not_occur", "incorrect_data")  # CBV 2.0 error reasons


def is_declaration(event: Mapping[str, Any]) -> bool:
    return isinstance(event.get("errorDeclaration"), Mapping)


def declaration_id(event: Mapping[str, Any]) -> str:
    """The record id of an error declaration: SHA-256 of the tag, the event's Event Hash ID and its JCS-encoded
    ``errorDeclaration``, each followed by a newline."""
    declaration = event.get("errorDeclaration")
    if not isinstance(declaration, Mapping):
        raise ValueError("not an error declaration: the event has no errorDeclaration object")
    digest = hashlib.sha256(
        DECLARATION_TAG + b"\n" + event_hash_id(event).encode() + b"\n" + rfc8785.dumps(dict(declaration)) + b"\n"
    ).hexdigest()
    return HASH_ID_PREFIX + digest + HASH_ID_SUFFIX


def record_id(event: Mapping[str, Any]) -> str:
    """The id the ledger records, signs and anchors an event under: its Event Hash ID, or for an error declaration
    its :func:`declaration_id`."""
    return declaration_id(event) if is_declaration(event) else event_hash_id(event)


def error_declaration(
    original: Mapping[str, Any],
    reason: str,
    corrective_event_ids: Sequence[str] = (),
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The error declaration of `original` (an event as recorded, with its ``eventID``): the same event, its
    ``errorDeclaration`` added."""
    if reason not in REASONS:
        raise ValueError(f"an error reason is one of {', '.join(REASONS)}, not {reason!r}")
    if is_declaration(original):
        raise ValueError("an error declaration is not itself declared in error")
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    declared = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    event = {key: value for key, value in original.items() if key != "errorDeclaration"}
    event["eventID"] = event_hash_id(event)
    declaration: dict[str, Any] = {"declarationTime": declared, "reason": reason}
    if corrective_event_ids:
        declaration["correctiveEventIDs"] = list(corrective_event_ids)
    event["errorDeclaration"] = declaration
    return event


def declared(events: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Event Hash ID of each event declared in error → its (latest) declaration, among `events`."""
    found: dict[str, Mapping[str, Any]] = {}
    for event in events:
        if is_declaration(event):
            found[event_hash_id(event)] = event
    return found


__all__ = [
    "DECLARATION_TAG",
    "REASONS",
    "declaration_id",
    "declared",
    "error_declaration",
    "is_declaration",
    "record_id",
]
