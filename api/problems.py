"""RFC 9457 problem details (``application/problem+json``) for every error the API answers.

Bad input is always a 4xx; contract reverts keep the Solidity error's name and arguments; EPCIS endpoints use the
``epcisException:*`` types of the EPCIS 2.0 REST bindings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.chain import rpc_fault
from ledger.client import ItemState
from ledger.errors import (
    ChainUnavailable,
    ConfigurationError,
    ContractRevert,
    DeploymentNotFound,
    InvalidIdentifier,
    InvalidSignature,
    KeyNotFound,
    LedgerError,
    TransactionFailed,
    WrongChain,
)
from ledger.lifecycle import next_actions, steps

log = logging.getLogger("circular.api")

PROBLEM_NS = "https://ns.circular-ledger.org/problems/"
PROBLEM_JSON = "application/problem+json"

# Solidity custom errors → HTTP status. Anything not listed is a 422 (the request is well-formed but the chain
# refuses what it asks).
REVERT_STATUS: dict[str, int] = {
    "AccessControlUnauthorizedAccount": 403,
    "UnauthorizedTransition": 403,
    "NotBrandPartner": 403,
    "NotLotOwner": 403,
    "LotAllocationUnauthorized": 403,
    "GtinNotOwned": 403,
    "CompanyPrefixNotAssigned": 403,
    "ItemNotFound": 404,
    "LotNotFound": 404,
    "RunNotFound": 404,
    "IllegalTransition": 409,
    "ItemAlreadyRegistered": 409,
    "RunAlreadyRegistered": 409,
    "LotAlreadyRegistered": 409,
    "RootAlreadyAnchored": 409,
    "CompanyPrefixTaken": 409,
}
_STATE_ARGS = frozenset({"current", "requested", "from", "to"})

HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}

EPCIS_TYPES = {
    400: "epcisException:ValidationException",
    401: "epcisException:SecurityException",
    403: "epcisException:SecurityException",
    404: "epcisException:NoSuchResourceException",
    406: "epcisException:NotAcceptableException",
    409: "epcisException:ResourceAlreadyExistsException",
    413: "epcisException:CaptureLimitExceededException",
    415: "epcisException:UnsupportedMediaTypeException",
    500: "epcisException:ImplementationException",
}


class Problem(Exception):
    """An error answered as problem details. Extra members (``errors``, ``args`` ...) go into the body."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        *,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status = status
        self.title = title or HTTP_TITLES.get(status, "Error")
        self.detail = detail
        self.type = type
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(detail or self.title)


def _slug(title: str) -> str:
    return "-".join(title.lower().replace("/", " ").split())


def problem_body(
    request: Request | None,
    status: int,
    title: str,
    detail: str | None = None,
    type_: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    epcis = request is not None and request.url.path.startswith("/epcis")
    if type_ is None:
        type_ = EPCIS_TYPES.get(status, EPCIS_TYPES[400]) if epcis else PROBLEM_NS + _slug(title)
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = str(request.url.path)
    if extra:
        body.update(jsonable_encoder(extra, custom_encoder={bytes: lambda b: "0x" + b.hex()}))
    return body


def problem_response(
    request: Request | None,
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    type_: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(request, status, title or HTTP_TITLES.get(status, "Error"), detail, type_, extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def revert_args(revert: ContractRevert) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for key, value in revert.args_by_name.items():
        if isinstance(value, bytes):
            rendered[key] = "0x" + value.hex()
        elif key in _STATE_ARGS and isinstance(value, int) and 0 <= value < len(ItemState):
            rendered[key] = ItemState(value).name.lower()
        elif key == "allowed" and isinstance(value, list | tuple):
            rendered[key] = [_state_name(state) for state in value]
        elif isinstance(value, int) and abs(value) > 2**53:
            rendered[key] = str(value)
        else:
            rendered[key] = value
    return rendered


def _state_name(value: Any) -> Any:
    return ItemState(value).name.lower() if isinstance(value, int) and 0 <= value < len(ItemState) else value


def allowed_next(revert: ContractRevert) -> list[str] | None:
    """The actions a refused step names as possible instead, for an ``IllegalTransition`` or an
    ``UnauthorizedTransition``, in the lifecycle table's order: those reaching the contract's own ``allowed`` states
    when the error carries them, and the steps that change no state (a repair) the table allows from the item's state;
    without the contract's list, the table's (its mirror) alone. None for other errors."""
    if revert.name not in ("IllegalTransition", "UnauthorizedTransition"):
        return None
    current, allowed = revert.args_by_name.get("current"), revert.args_by_name.get("allowed")
    if not (isinstance(current, int) and 0 <= current < len(ItemState)):
        return None
    source = ItemState(current)
    if not isinstance(allowed, list | tuple):
        return [action.value for action in next_actions(source)]
    targets = {state for state in allowed if isinstance(state, int)}
    return [
        row.action.value
        for row in steps()
        if (row.target is None and source in row.edges) or (row.target is not None and int(row.target) in targets)
    ]


def revert_problem(revert: ContractRevert) -> Problem:
    status = REVERT_STATUS.get(revert.name, 422)
    args = revert_args(revert)
    extra: dict[str, Any] = {}
    detail = f"the contract refused: {revert}"
    allowed = allowed_next(revert)
    if allowed is not None:
        # The refused step names what the item's state allows instead (the contract's own answer, or its mirror).
        extra["allowedNext"] = allowed
        detail += f"; the item is {args.get('current')}: it can next be {', '.join(allowed) or 'nothing (it is final)'}"
    return Problem(
        status,
        revert.name,
        detail,
        type=PROBLEM_NS + "contract-revert",
        error=revert.name,
        args=args,
        **extra,
    )


def _validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        entry = {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": error.get("type")}
        out.append(entry)
    return out


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into problem details."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.title, exc.detail, type_=exc.type, headers=exc.headers, extra=exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status = 400 if request.url.path.startswith("/epcis") else 422
        return problem_response(
            request,
            status,
            "Invalid request",
            "the request does not match what this endpoint accepts",
            extra={"errors": _validation_errors(exc.errors())},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != HTTP_TITLES.get(exc.status_code) else None
        return problem_response(request, exc.status_code, None, detail, headers=exc.headers)

    @app.exception_handler(ContractRevert)
    async def _revert(request: Request, exc: ContractRevert) -> JSONResponse:
        problem = revert_problem(exc)
        return problem_response(
            request, problem.status, problem.title, problem.detail, type_=problem.type, extra=problem.extra
        )

    @app.exception_handler(InvalidIdentifier)
    async def _identifier(request: Request, exc: InvalidIdentifier) -> JSONResponse:
        return problem_response(request, 400, "Invalid identifier", str(exc))

    @app.exception_handler(InvalidSignature)
    async def _signature(request: Request, exc: InvalidSignature) -> JSONResponse:
        return problem_response(request, 422, "Invalid signature", str(exc))

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        if isinstance(exc, WrongChain):
            return problem_response(request, 503, "Wrong chain", f"nothing was written: {exc}")
        if isinstance(exc, ChainUnavailable):
            return _chain_away(request, exc)
        if isinstance(exc, KeyNotFound | ConfigurationError | DeploymentNotFound):
            log.error("ledger misconfigured: %s", exc)
            detail = f"the ledger is not configured for this: {_without_paths(str(exc))}"
            return problem_response(request, 503, "Ledger unavailable", detail)
        if isinstance(exc, TransactionFailed) and "revert" in str(exc).lower():
            # a revert the ledger could not name: the chain refused the request
            return problem_response(request, 422, "Transaction reverted", str(exc))
        if isinstance(exc, TransactionFailed):
            log.error("transaction failed: %s", exc)
            return problem_response(request, 502, "Transaction failed", str(exc))
        log.exception("ledger error", exc_info=exc)
        return problem_response(request, 500, "Ledger error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if rpc_fault(exc) is not None:  # the node went away mid-request: say so, never a 500
            return _chain_away(request, exc)
        log.exception("unexpected error", exc_info=exc)
        return problem_response(request, 500)


def _without_paths(message: str) -> str:
    """A configuration error as the client may read it: the setting to fix, the server's directories left out
    (``/srv/circular/keys/brand-a.json`` → ``keys/brand-a.json``)."""
    return re.sub(r"(?:/[^\s/'\"]+)*/([^\s/'\"]+/[^\s/'\"]+)", r"\1", message)


def _chain_away(request: Request, exc: BaseException) -> JSONResponse:
    """503 for a request the node's outage cut short; the app's chain monitor (``api/health.py``) hears of it."""
    state = getattr(request.app.state, "circular", None)
    monitor = state.extra.get("chain_monitor") if state is not None else None
    if monitor is not None:
        monitor.fault(exc)
    log.warning("the chain node does not answer: %s", type(exc).__name__)
    return problem_response(
        request,
        503,
        "Chain unavailable",
        "the chain node does not answer right now: try again shortly",
        headers={"Retry-After": "5"},
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` lists what failed validation.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}


GS1_KEY_PARAMETERS = {"gtin", "serial", "path"}  # parsed as GS1 identifiers: a malformed one is a 400


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses an operation can answer, from what it is, as the handlers above and the dependencies
    decide them; schemathesis checks every answer against them (``tests/api/test_schemathesis.py``)."""
    statuses = set()
    if "422" in operation.get("responses", {}):  # FastAPI declares it for every operation with parameters or a body
        # EPCIS REST answers a request it cannot parse with a 400 ValidationException; our own API with a 422.
        statuses.add(400 if path.startswith("/epcis") else 422)
        if path.startswith("/epcis"):
            del operation["responses"]["422"]
    path_parameters = {p["name"] for p in operation.get("parameters", ()) if p.get("in") == "path"}
    if path_parameters:
        statuses.add(404)
    if path_parameters & GS1_KEY_PARAMETERS:
        statuses.add(400)
    if operation.get("security"):  # deps.py: no or an unknown key is a 401, a key of the wrong role a 403
        statuses |= {401, 403}
    if method in ("post", "put"):
        statuses.add(413)  # limits.BodyLimitMiddleware, before any route
        if path.startswith("/api/v1"):
            # a write names lots and items that may not exist, may conflict with the chain (a revert), and needs the
            # ledger (down: 503; a transaction that failed: 502)
            statuses |= {404, 409, 502, 503}
        if path == "/epcis/capture":
            statuses |= {400, 415}  # the body is read raw: JSON(-LD) or nothing
    return statuses


def document(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above answer: FastAPI documents every 422 as its own
    ``HTTPValidationError`` (``{"detail": [...]}``), which no response of ours ever is."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in sorted(_error_statuses(path, method, operation)):
                    responses[str(status)] = {"description": f"{HTTP_TITLES[status]} (problem details)",
                                              "content": problem}
        schemas = schema["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_NS",
    "REVERT_STATUS",
    "Problem",
    "allowed_next",
    "document",
    "install",
    "problem_response",
    "revert_problem",
]
