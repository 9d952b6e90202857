"""CBV 2.0 EPCIS Event Hash IDs: every published vector, plus the properties the ledger relies on.

The vectors (``api/standards/epcis-event-hash/examples``) are the standard: each ``X.jsonld`` must hash to ``X.hashes``
and produce the pre-hash strings of ``X.prehashes``. Beyond them we check what a ledger needs from an event
fingerprint: any change of content changes the ID, while representation (key order, list order, whitespace, time
zone, URN vs. Digital Link, CURIE vs. URI, where the @context sits) does not; malformed IDs are rejected.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.epcis.hashing import (
    EventHashContext,
    InvalidEventError,
    MalformedEventHashIdError,
    document_event_hash_ids,
    document_event_prehashes,
    document_events,
    event_hash_id,
    event_prehash,
    hash_digest,
)
from tests.conftest import standards_dir


def _examples_dir() -> Path:
    return standards_dir() / "epcis-event-hash" / "examples"


EXAMPLES = _examples_dir()
VECTORS = sorted(EXAMPLES.glob("*.jsonld"))
WITH_PREHASHES = [path for path in VECTORS if path.with_suffix(".prehashes").exists()]

# Lines of the published .prehashes files that contradict their own .hashes (sha256(line) is not the listed ID):
# line 2 of epcisDocWithDefaultSchemaInContext is cut off mid-value; line 2 of epcisDocWithCustomSchemaInContext is
# a different serialisation of event 1, not event 2. The .hashes files are authoritative for these.
KNOWN_DEFECTIVE_PREHASHES = {
    ("epcisDocWithDefaultSchemaInContext", 1),
    ("epcisDocWithCustomSchemaInContext", 1),
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _lines(path: Path) -> list[str]:
    """Non-empty lines; files may or may not end with a newline."""
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


def _ni(prehash: str) -> str:
    return "ni:///sha-256;" + hashlib.sha256(prehash.encode("utf-8")).hexdigest() + "?ver=CBV2.0"


def test_vectors_are_present() -> None:
    assert EXAMPLES.is_dir(), f"EPCIS hash vectors not found at {EXAMPLES} (set CIRCULAR_STANDARDS_DIR)"
    assert len(VECTORS) >= 19
    for path in VECTORS:
        assert path.with_suffix(".hashes").exists(), path


# --- the published vectors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector_hashes(path: Path) -> None:
    assert document_event_hash_ids(_load(path)) == _lines(path.with_suffix(".hashes"))


@pytest.mark.parametrize("path", WITH_PREHASHES, ids=lambda p: p.stem)
def test_vector_prehashes(path: Path) -> None:
    ours = document_event_prehashes(_load(path))
    expected_ids = _lines(path.with_suffix(".hashes"))
    expected = _lines(path.with_suffix(".prehashes"))
    assert len(expected) == len(ours) == len(expected_ids)
    for index, (mine, theirs, expected_id) in enumerate(zip(ours, expected, expected_ids, strict=True)):
        assert _ni(mine) == expected_id
        if _ni(theirs) == expected_id:
            assert mine == theirs, f"event {index}"
        else:
            assert (path.stem, index) in KNOWN_DEFECTIVE_PREHASHES, f"{path.name} line {index + 1} contradicts .hashes"


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_single_event_api_agrees_with_document_api(path: Path) -> None:
    document = _load(path)
    context = EventHashContext.from_document(document)
    expected = _lines(path.with_suffix(".hashes"))
    events = document_events(document)
    assert [event_hash_id(event, context) for event in events] == expected
    assert [_ni(event_prehash(event, context)) for event in events] == expected
    if not context.ignore_fields:  # a raw @context carries no ignoreFields declaration
        assert [event_hash_id(event, document["@context"]) for event in events] == expected


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_digest_is_the_sha256_of_the_prehash(path: Path) -> None:
    document = _load(path)
    for hash_id, prehash in zip(document_event_hash_ids(document), document_event_prehashes(document), strict=True):
        digest = hash_digest(hash_id)
        assert len(digest) == 32
        assert digest == hashlib.sha256(prehash.encode("utf-8")).digest()
        assert hash_id == "ni:///sha-256;" + digest.hex() + "?ver=CBV2.0"


# --- any change of content changes the ID ---------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


def _leaves(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path, node


def _keys(node: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Paths of every object member, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _keys(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keys(value, (*path, index))


def _parent(root: Any, path: Path_) -> Any:
    for step in path[:-1]:
        root = root[step]
    return root


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    head, query, tail = str(value).partition("?")  # a Digital Link's query string is not part of its identity
    return f"{head}X{query}{tail}"


def _ignored(document: dict[str, Any], path: Path_) -> bool:
    """Fields the algorithm leaves out: eventID, recordTime, errorDeclaration, comments, declared ignoreFields."""
    declared: set[str] = set()
    for holder in (document, document["epcisBody"], document["epcisBody"].get("queryResults", {})):
        for key, value in holder.items():
            if key.endswith("ignoreFields"):
                declared.update(value)
    return path[0] in {"eventID", "recordTime", "errorDeclaration", "rdfs:comment"} or path[0] in declared


def _event_cases() -> Iterator[tuple[str, int]]:
    for path in VECTORS:
        for index in range(len(_lines(path.with_suffix(".hashes")))):
            yield path.stem, index


def _document_and_event(stem: str, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    document = _load(EXAMPLES / f"{stem}.jsonld")
    return document, document_events(document)[index]  # type: ignore[return-value]


@pytest.mark.parametrize(("stem", "index"), list(_event_cases()))
def test_changing_any_value_changes_the_id(stem: str, index: int) -> None:
    document, event = _document_and_event(stem, index)
    original = document_event_hash_ids(document)[index]
    checked = 0
    for path, value in _leaves(event):
        _parent(event, path)[path[-1]] = _changed(value)
        changed = document_event_hash_ids(document)[index]
        _parent(event, path)[path[-1]] = value
        if _ignored(document, path):
            assert changed == original, f"{path} is ignored by the algorithm"
        else:
            assert changed != original, f"changing {path} did not change the ID"
            checked += 1
    assert checked > 3
    assert document_event_hash_ids(document)[index] == original


@pytest.mark.parametrize(("stem", "index"), list(_event_cases()))
def test_removing_or_adding_a_field_changes_the_id(stem: str, index: int) -> None:
    document, event = _document_and_event(stem, index)
    original = document_event_hash_ids(document)[index]
    for path in list(_keys(event)):
        if path == ("type",):
            continue
        trial = copy.deepcopy(document)
        trial_event = document_events(trial)[index]
        del _parent(trial_event, path)[path[-1]]
        if _ignored(document, path):
            assert document_event_hash_ids(trial)[index] == original
        else:
            assert document_event_hash_ids(trial)[index] != original, f"removing {path} did not change the ID"
    for key, value in [("https://ns.test.example/voc/added", "v"), ("comment2", "x"), ("ilmd2", {"a": 1})]:
        trial = copy.deepcopy(document)
        document_events(trial)[index][key] = value  # type: ignore[index]
        assert document_event_hash_ids(trial)[index] != original, key


def test_removing_the_type_is_an_error() -> None:
    document = _load(EXAMPLES / "epcisDocWithSingleEvent.jsonld")
    del document["epcisBody"]["eventList"][0]["type"]
    with pytest.raises(InvalidEventError):
        document_event_hash_ids(document)


def test_near_miss_values_do_not_collide() -> None:
    """Canonicalisation never merges distinct values: long quantities, hex strings, leading zeros."""
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": "2024-01-01T00:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134352", "quantity": 12345678901234567890}],
    }
    other = copy.deepcopy(event)
    other["quantityList"][0]["quantity"] = 12345678901234567891
    assert event_hash_id(event) != event_hash_id(other)

    def report(**fields: Any) -> dict[str, Any]:
        return {**event, "sensorElementList": [{"sensorReport": [{"type": "Count", **fields}]}]}

    assert event_hash_id(report(hexBinaryValue="0012")) != event_hash_id(report(hexBinaryValue="12"))
    assert event_hash_id(report(stringValue="007")) != event_hash_id(report(stringValue="7"))
    assert event_hash_id(report(booleanValue=True)) != event_hash_id(report(booleanValue=False))
    assert "booleanValue=true" in event_prehash(report(booleanValue=True))


# --- representation does not change the ID --------------------------------------------------------------------------


def _transform_events(document: dict[str, Any], change: Callable[[Any, tuple[str, ...]], Any]) -> dict[str, Any]:
    trial = copy.deepcopy(document)
    events = document_events(trial)
    for index, event in enumerate(events):
        events[index] = change(event, ())
    return trial


def _reversed_everywhere(node: Any, keys: tuple[str, ...]) -> Any:
    """Every object with its members in reverse order and every array reversed (EPCIS lists are unordered sets)."""
    if isinstance(node, dict):
        return {key: _reversed_everywhere(node[key], (*keys, key)) for key in reversed(list(node))}
    if isinstance(node, list):
        return [_reversed_everywhere(item, keys) for item in reversed(node)]
    return node


def _padded(node: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        return {key: _padded(value, (*keys, key)) if key != "@context" else value for key, value in node.items()}
    if isinstance(node, list):
        return [_padded(item, keys) for item in node]
    return f" \n\t{node}  \r\n" if isinstance(node, str) else node


_TIME_KEYS = {"eventTime", "time", "startTime", "endTime"}


def _shifted_zone(node: Any, keys: tuple[str, ...]) -> Any:
    """Every timestamp written in another zone (+05:30, microsecond precision): the same instants."""
    if isinstance(node, dict):
        return {key: _shifted_zone(value, (*keys, key)) for key, value in node.items()}
    if isinstance(node, list):
        return [_shifted_zone(item, keys) for item in node]
    if keys and keys[-1] in _TIME_KEYS and isinstance(node, str):
        moment = datetime.fromisoformat(node.replace("Z", "+00:00"))
        return moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(timespec="microseconds")
    return node


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
@pytest.mark.parametrize(
    "change", [_reversed_everywhere, _padded, _shifted_zone], ids=["key-and-list-order", "whitespace", "time-zone"]
)
def test_representation_does_not_change_the_id(path: Path, change: Callable[[Any, tuple[str, ...]], Any]) -> None:
    document = _load(path)
    expected = _lines(path.with_suffix(".hashes"))
    assert document_event_hash_ids(_transform_events(document, change)) == expected


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_json_formatting_does_not_change_the_id(path: Path) -> None:
    document = _load(path)
    expected = _lines(path.with_suffix(".hashes"))
    for text in (json.dumps(document), json.dumps(document, indent=7, sort_keys=True, ensure_ascii=True)):
        assert document_event_hash_ids(json.loads(text)) == expected
        assert document_event_hash_ids(json.loads(text, parse_float=Decimal)) == expected


BASE_EVENT: dict[str, Any] = {
    "type": "ObjectEvent",
    "eventTime": "2024-05-01T12:00:00.000+02:00",
    "eventTimeZoneOffset": "+02:00",
    "epcList": ["urn:epc:id:sgtin:4012345.011111.9876"],
    "action": "OBSERVE",
    "bizStep": "shipping",
    "disposition": "in_transit",
    "readPoint": {"id": "urn:epc:id:sgln:4012345.00005.0"},
    "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epc:id:gdti:4012345.11111.123"}],
    "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.012345.LOT1", "quantity": 12.5, "uom": "KGM"}],
    "example:note": "hello",
}
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"example": "https://ns.example.com/e/"}]


@pytest.mark.parametrize(
    "variant",
    [
        {"eventTime": "2024-05-01T10:00:00Z"},
        {"eventTime": "2024-05-01T05:00:00.0000-05:00"},
        {"eventTime": "2024-05-01T10:00:00.0004+00:00"},
        {"epcList": ["https://id.gs1.org/01/04012345111118/21/9876"]},
        {"epcList": ["https://brand.example.com/some/path/01/4012345111118/21/9876?linkType=all"]},
        {"bizStep": "https://ref.gs1.org/cbv/BizStep-shipping", "disposition": "cbv:Disp-in_transit"},
        {"bizStep": "urn:epcglobal:cbv:bizstep:shipping", "disposition": "urn:epcglobal:cbv:disp:in_transit"},
        {"readPoint": {"id": "https://id.example.org/414/4012345000054"}},
        {"bizTransactionList": [{"bizTransaction": "https://id.gs1.org/253/4012345111118123", "type": "po"}]},
        {
            "quantityList": [
                {"uom": "KGM", "quantity": "12.50", "epcClass": "https://id.gs1.org/01/04012345123456/10/LOT1"}
            ]
        },
    ],
)
def test_equivalent_notations_give_the_same_id(variant: dict[str, Any]) -> None:
    assert event_hash_id({**BASE_EVENT, **variant}, CONTEXT) == event_hash_id(BASE_EVENT, CONTEXT)


def test_extension_names_depend_on_the_namespace_not_the_prefix() -> None:
    expected = event_hash_id(BASE_EVENT, CONTEXT)
    renamed = {k: v for k, v in BASE_EVENT.items() if k != "example:note"} | {"ex2:note": "hello"}
    assert event_hash_id(renamed, [CONTEXT[0], {"ex2": "https://ns.example.com/e/"}]) == expected
    full_iri = {k: v for k, v in BASE_EVENT.items() if k != "example:note"} | {"https://ns.example.com/e/note": "hello"}
    assert event_hash_id(full_iri, CONTEXT) == expected
    assert event_hash_id(BASE_EVENT, [CONTEXT[0], {"example": "https://ns.other.example/e/"}]) != expected


def test_event_level_context_equals_document_context() -> None:
    """The ledger hashes self-contained events (own @context) and documents alike."""
    expected = event_hash_id(BASE_EVENT, CONTEXT)
    assert event_hash_id({"@context": CONTEXT, **BASE_EVENT}) == expected
    document = {"@context": CONTEXT, "type": "EPCISDocument", "epcisBody": {"eventList": [BASE_EVENT]}}
    assert document_event_hash_ids(document) == [expected]
    assert document_event_hash_ids({**BASE_EVENT, "@context": CONTEXT}) == [expected]  # a bare event


def test_ignored_fields_do_not_change_the_id() -> None:
    expected = event_hash_id(BASE_EVENT, CONTEXT)
    decorated = {
        **BASE_EVENT,
        "eventID": "urn:uuid:374d95fc-9457-4a51-bd6a-0bba133845a8",
        "recordTime": "2024-05-02T00:00:00Z",
        "errorDeclaration": {"declarationTime": "2024-05-03T00:00:00Z", "reason": "incorrect_data"},
        "rdfs:comment": "a comment",
    }
    assert event_hash_id(decorated, CONTEXT) == expected


def test_time_canonicalisation() -> None:
    def prehash(moment: str) -> str:
        return event_prehash({"type": "ObjectEvent", "eventTime": moment})

    assert prehash("2023-01-18T11:04:03.1415Z") == "eventType=ObjectEventeventTime=2023-01-18T11:04:03.142Z"
    assert prehash("2023-01-18T11:04:03.14149Z") == "eventType=ObjectEventeventTime=2023-01-18T11:04:03.141Z"
    assert prehash("2023-01-18T11:04:03.0125Z") == "eventType=ObjectEventeventTime=2023-01-18T11:04:03.013Z"
    assert prehash("2023-12-31T23:59:59.9996Z") == "eventType=ObjectEventeventTime=2024-01-01T00:00:00.000Z"
    assert prehash("2023-01-01T01:30:00+05:30") == "eventType=ObjectEventeventTime=2022-12-31T20:00:00.000Z"
    assert prehash("2023-01-01T00:00:00") == "eventType=ObjectEventeventTime=2023-01-01T00:00:00.000Z"


# --- malformed IDs and events -------------------------------------------------------------------------------------

GOOD_HEX = "6ae96341e0acc6d7a261364751f60e68278a81cdf51da0abb6b4e617014e39d7"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ni:///sha-256;?ver=CBV2.0",
        f"ni:///sha-256;{GOOD_HEX[:-1]}?ver=CBV2.0",
        f"ni:///sha-256;{GOOD_HEX}0?ver=CBV2.0",
        f"ni:///sha-256;{GOOD_HEX[:-1]}g?ver=CBV2.0",
        f"ni:///sha-256;{GOOD_HEX}",
        f"ni:///sha-256;{GOOD_HEX}?ver=CBV2",
        f"ni:///sha-256;{GOOD_HEX}?ver=2.0",
        f"ni:///sha-384;{GOOD_HEX}{GOOD_HEX[:32]}?ver=CBV2.0",
        f"ni://sha-256;{GOOD_HEX}?ver=CBV2.0",
        f"ni:///sha256;{GOOD_HEX}?ver=CBV2.0",
        f" ni:///sha-256;{GOOD_HEX}?ver=CBV2.0",
        f"ni:///sha-256;{GOOD_HEX}?ver=CBV2.0\n",
        "ni:///sha-256;aumTQeCsxteiYTZHUfYOaCeKgc31HaCrtrTmFwFOOdc?ver=CBV2.0",  # base64url, not hex
        GOOD_HEX,
        "0x" + GOOD_HEX,
    ],
)
def test_malformed_ids_raise(bad: str) -> None:
    with pytest.raises(MalformedEventHashIdError) as raised:
        hash_digest(bad)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("bad", [None, 42, b"ni:///sha-256;" + GOOD_HEX.encode() + b"?ver=CBV2.0"])
def test_non_string_ids_raise(bad: Any) -> None:
    with pytest.raises(MalformedEventHashIdError):
        hash_digest(bad)


def test_well_formed_ids_parse() -> None:
    assert hash_digest(f"ni:///sha-256;{GOOD_HEX}?ver=CBV2.0") == bytes.fromhex(GOOD_HEX)
    assert hash_digest(f"ni:///sha-256;{GOOD_HEX.upper()}?ver=CBV2.0") == bytes.fromhex(GOOD_HEX)
    assert hash_digest(f"ni:///sha-256;{GOOD_HEX}?ver=CBV2.1.3") == bytes.fromhex(GOOD_HEX)


@pytest.mark.parametrize("bad", [None, [], "ObjectEvent", {"eventTime": "2024-01-01T00:00:00Z"}, {"type": " "}])
def test_invalid_events_raise(bad: Any) -> None:
    with pytest.raises(InvalidEventError):
        event_hash_id(bad)


@pytest.mark.parametrize("bad", [None, [], {"type": "EPCISDocument"}, {"epcisBody": {"eventList": {}}}])
def test_invalid_documents_raise(bad: Any) -> None:
    with pytest.raises(InvalidEventError):
        document_event_hash_ids(bad)
