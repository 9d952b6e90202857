"""EPCIS 2.0 REST bindings (``/epcis``): capture (asynchronous, jobs), the events resource and single events.

Captured events are validated against the EPCIS 2.0 JSON schema, get their CBV 2.0 Event Hash ID as ``eventID``,
are signed by the capturing actor and go through the outbox to be anchored like every other event. Queries read the
outbox through its index (``api/epcis_store.py``).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from ledger.accounts import LocalAccount
from ledger.epcis.hashing import event_hash_id

from .. import authority, versions
from .. import epcis_store as store
from ..deps import ApiSettingsDep, CurrentActor, SessionDep, StateDep, SupplyChainActor
from ..models import Actor, ActorRole, CaptureJob, utcnow
from ..problems import Problem
from ..schemas import CaptureJobPublic
from ..state import AppState
from ..uris import event_id_from
from .resolver import request_base

log = logging.getLogger("circular.api.epcis")
router = APIRouter(tags=["EPCIS 2.0"])

VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}
JSON_TYPES = ("application/json", "application/ld+json")
BEHAVIOURS = ("rollback", "proceed")


def _query_problem(detail: str) -> Problem:
    return Problem(400, "Invalid query", detail, type="epcisException:QueryParameterException")


@router.get("", summary="EPCIS top-level resources")
def top_level() -> JSONResponse:
    return JSONResponse(["capture", "events"], headers=VERSION_HEADERS)


@router.options("/capture", status_code=204, summary="Capture interface settings")
def capture_options(api_settings: ApiSettingsDep) -> Response:
    return Response(
        status_code=204,
        headers={
            **VERSION_HEADERS,
            "Allow": "GET, POST, OPTIONS",
            "GS1-EPCIS-Capture-Limit": str(api_settings.capture_max_events),
            "GS1-EPCIS-Capture-File-Size-Limit": str(api_settings.capture_max_bytes),
            "GS1-Capture-Error-Behaviour": ", ".join(BEHAVIOURS),
        },
    )


def _events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document.get("epcisBody") or {}
    if document.get("type") == "EPCISQueryDocument":
        return list(((body.get("queryResults") or {}).get("resultsBody") or {}).get("eventList") or [])
    return list(body.get("eventList") or [])


@router.post(
    "/capture",
    status_code=202,
    summary="Capture an EPCIS document (asynchronous)",
    responses={202: {"description": "Accepted; `Location` names the capture job."}},
)
async def capture(
    request: Request,
    background: BackgroundTasks,
    actor: SupplyChainActor,
    state: StateDep,
    api_settings: ApiSettingsDep,
) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise Problem(415, "Unsupported media type", "send the EPCIS document as application/json or ld+json")
    behaviour = request.headers.get("gs1-capture-error-behaviour", "rollback").strip().lower()
    if behaviour not in BEHAVIOURS:
        raise Problem(400, "Invalid header", "GS1-Capture-Error-Behaviour is rollback or proceed")
    raw = await request.body()
    if len(raw) > api_settings.capture_max_bytes:
        raise Problem(413, "Payload too large", f"at most {api_settings.capture_max_bytes} bytes per capture")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "Invalid JSON", "the body is not JSON") from None
    if not isinstance(document, dict) or document.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
        raise Problem(400, "Not an EPCIS document", "expected an EPCISDocument or EPCISQueryDocument")
    errors = store.validate_document(document)
    if errors:
        raise Problem(
            400, "Invalid EPCIS document", "the document does not pass the EPCIS 2.0 JSON schema", errors=errors
        )
    events = _events_of(document)
    if not events:
        raise Problem(400, "No events", "the document holds no events")
    if len(events) > api_settings.capture_max_events:
        raise Problem(413, "Too many events", f"at most {api_settings.capture_max_events} events per capture")
    with state.service.sessions() as session:
        # Per event, per item and lot it names, per bizStep: the write API's rules (api/authority.py). A refusal is
        # a security matter, not a data error: the whole document is refused, whatever the error behaviour.
        refused = authority.judge(session, events, actor, state.settings.resolver_base_url)
    if refused:
        raise Problem(
            403,
            "Forbidden",
            f"{len(refused)} of {len(events)} events may not be recorded by {actor.name}: {refused[0]['error']}",
            type="epcisException:SecurityException",
            errors=refused[:20],
        )
    account = state.keys.account(actor)
    job_id = uuid.uuid4().hex
    with state.service.sessions() as session:
        session.add(
            CaptureJob(
                id=job_id,
                actor_id=actor.id,
                running=True,
                success=True,
                error_behaviour=behaviour,
                event_count=len(events),
                event_ids=[],
                errors=[],
                replaced=[],
                document=document,
                created_at=utcnow(),
            )
        )
        session.commit()
    # The parsed document goes to the job as it is; the stored copy is read again only to resume a job that a
    # stopped process left running (resume_captures).
    background.add_task(run_capture, state, job_id, account, document)
    return Response(status_code=202, headers={**VERSION_HEADERS, "Location": f"/epcis/capture/{job_id}"})


def prepare(
    document: dict[str, Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Each event with the document's @context and its Event Hash ID as eventID; the errors by event index; and the
    claimed eventIDs that were not the event's hash (replaced by it: the hash is what the ledger anchors)."""
    context = document.get("@context")
    ready: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    replaced: list[dict[str, Any]] = []
    for index, original in enumerate(_events_of(document)):
        # A shallow copy is enough: only top-level keys change, and the document is dropped once captured.
        event = dict(original)
        if "@context" not in event and context is not None:
            event["@context"] = context
        claimed = event.pop("eventID", None)
        try:
            computed = event_hash_id(event)
        except Exception as exc:  # the hashing refuses what it cannot canonicalise
            errors.append({"index": index, "eventID": claimed, "error": f"cannot compute the event hash: {exc}"})
            continue
        if claimed is not None and claimed != computed:
            replaced.append({"index": index, "claimed": claimed, "eventID": computed})
        event["eventID"] = computed
        ready.append(event)
    return ready, errors, replaced


def run_capture(
    state: AppState, job_id: str, account: LocalAccount, document: dict[str, Any] | None = None
) -> None:
    """Capture job `job_id`: hash, sign and store its events, then record the outcome. `document` is the job's
    document when the caller still holds it; otherwise it is read from the job."""
    with state.service.sessions() as session:
        job = session.get(CaptureJob, job_id)
        if job is None or not job.running:
            return
        try:
            events, errors, replaced = prepare(document if document is not None else job.document or {})
            job.replaced = replaced
            keep = events if (job.error_behaviour == "proceed" or not errors) else []
            # prepare() has just hashed each event to set its eventID: the ledger signs that hash, not a third one.
            # The events, the passport versions they make and the job's outcome commit together: a job reported
            # done has changed every passport it names.
            ids = [e["eventID"] for e in keep]
            stored = state.service.record(account, keep, ids, session=session) if keep else []
            versions.after_events(session, state, keep)
            job.event_ids = [s.event_id for s in stored]
            job.errors = errors
            job.success = not errors
        except Exception as exc:
            log.exception("capture job %s failed", job_id)
            session.rollback()
            job = session.get(CaptureJob, job_id)
            if job is None:
                return
            job.errors = [{"error": f"capture failed: {type(exc).__name__}"}]
            job.success = False
        _finish(job)
        session.commit()


def _finish(job: CaptureJob) -> None:
    """The job is done, whatever its outcome: its document is dropped."""
    job.running, job.document, job.finished_at = False, None, utcnow()


def resume_captures(state: AppState) -> int:
    """Finish the capture jobs a stopped process accepted (202) but never ran: the document was stored before the
    202, so an accepted capture is never lost. Returns how many jobs were resumed.

    A job whose actor was revoked in the meantime fails rather than being signed with a revoked actor's key. Two
    workers resuming the same job store each event once (the outbox is idempotent by Event Hash ID)."""
    with state.service.sessions() as session:
        pending = [(job.id, job.actor_id) for job in session.scalars(
            select(CaptureJob).where(CaptureJob.running.is_(True)).order_by(CaptureJob.created_at))]
        actors = {a.id: a for a in session.scalars(select(Actor).where(Actor.id.in_({a for _, a in pending})))}
        session.expunge_all()
    for job_id, actor_id in pending:
        actor = actors.get(actor_id)
        if actor is None or actor.revoked:
            _fail(state, job_id, "the capturing actor was revoked before the capture ran")
            continue
        run_capture(state, job_id, state.keys.account(actor))
    return len(pending)


def _fail(state: AppState, job_id: str, error: str) -> None:
    with state.service.sessions() as session:
        job = session.get(CaptureJob, job_id)
        if job is None:
            return
        job.errors, job.success = [{"error": error}], False
        _finish(job)
        session.commit()


def _job_public(job: CaptureJob) -> CaptureJobPublic:
    return CaptureJobPublic(
        captureID=job.id,
        createdAt=job.created_at,
        finishedAt=job.finished_at,
        running=job.running,
        success=job.success,
        captureErrorBehaviour=job.error_behaviour,
        errors=list(job.errors or []),
        eventIDs=list(job.event_ids or []),
        replacedEventIDs=list(job.replaced or []),
    )


@router.get("/capture", summary="Your capture jobs")
def capture_jobs(actor: CurrentActor, session: SessionDep) -> JSONResponse:
    query = select(CaptureJob).order_by(CaptureJob.created_at.desc()).limit(100)
    if actor.role != ActorRole.ADMIN:
        query = query.where(CaptureJob.actor_id == actor.id)
    jobs = [_job_public(j).model_dump(mode="json") for j in session.scalars(query)]
    return JSONResponse(jobs, headers=VERSION_HEADERS)


@router.get("/capture/{capture_id}", summary="A capture job")
def capture_job(capture_id: str, actor: CurrentActor, session: SessionDep) -> JSONResponse:
    job = session.get(CaptureJob, capture_id)
    if job is None or (actor.role != ActorRole.ADMIN and job.actor_id != actor.id):
        raise Problem(404, "Unknown capture job", f"no capture job {capture_id}")
    return JSONResponse(_job_public(job).model_dump(mode="json"), headers=VERSION_HEADERS)


@router.get(
    "/events",
    summary="Query events (SimpleEventQuery parameters)",
    description="Supports eventType, GE/LT_eventTime, GE/LT_recordTime, EQ_action, EQ_bizStep, "
    "EQ_disposition, EQ_eventID, MATCH_epc, MATCH_parentID, MATCH_inputEPC, MATCH_outputEPC, MATCH_anyEPC, "
    "MATCH_epcClass, MATCH_inputEPCClass, MATCH_outputEPCClass, MATCH_anyEPCClass (pipe-delimited values), "
    'perPage and nextPageToken. Pages follow `Link: <...>; rel="next"`. Needs an API key: each actor reads the '
    "events it signed, those about its own products' items and lots (a brand), the items it holds and the lots it "
    "owns or is approved on; the admin reads all.",
)
def events(
    request: Request, actor: CurrentActor, session: SessionDep, state: StateDep, api_settings: ApiSettingsDep
) -> JSONResponse:
    params = list(request.query_params.multi_items())
    per_page_raw = next((v for k, v in params if k == "perPage"), "30")
    try:
        per_page = int(per_page_raw)
    except ValueError:
        raise _query_problem("perPage must be a positive integer") from None
    if per_page < 1:
        raise _query_problem("perPage must be a positive integer")
    per_page = min(per_page, api_settings.max_per_page)
    try:
        visible = store.visible_to(session, actor, state.settings.resolver_base_url)
        page = store.query_events(session, params, per_page, visible)
    except store.QueryError as exc:
        raise _query_problem(str(exc)) from None
    headers = dict(VERSION_HEADERS)
    if page.next_token:
        kept = [(k, v) for k, v in params if k != "nextPageToken"]
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in kept)
        query += ("&" if query else "") + f"nextPageToken={page.next_token}"
        headers["Link"] = f'<{request_base(request)}/epcis/events?{query}>; rel="next"'
    return JSONResponse(store.query_document(page.events), headers=headers)


@router.get("/events/{event_id:path}", summary="One event, by its eventID")
def event(
    request: Request, actor: CurrentActor, session: SessionDep, state: StateDep, event_id: str = Path(min_length=1)
) -> JSONResponse:
    event_id = event_id_from(request, event_id)
    found = store.find_event(session, event_id, store.visible_to(session, actor, state.settings.resolver_base_url))
    if found is None:
        raise Problem(404, "Unknown event", f"no event {event_id}")
    return JSONResponse(store.query_document([found]), headers=VERSION_HEADERS)
