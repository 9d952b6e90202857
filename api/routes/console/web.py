"""What every console page shares: templates, security headers, the signed-in actor, CSRF checks, submissions that
a second click cannot repeat, and errors put in plain words next to the field they concern.

A console route is a thin page around a function of :mod:`api.services` (or the read queries of the write API): the
rules of who may do what are decided there, for the console and the write API alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.client import ItemState
from ledger.errors import ContractRevert, LedgerError, TransactionFailed
from ledger.lifecycle import step as lifecycle_step
from materials import catalogue

from ...deps import SessionDep, StateDep
from ...models import Actor, ConsoleSession, ConsoleSubmission, utcnow
from ...problems import Problem, revert_problem
from ...state import AppState

log = logging.getLogger("circular.console")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[2] / "templates"))
COOKIE = "circular_console"
SIGN_IN_COOKIE = "circular_console_signin"  # the sign-in form's own CSRF token (double submit), before a session
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SUBMISSION_FIELD = "submission"
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
LAST_SEEN_EVERY = timedelta(seconds=60)  # a session's idle clock is written at most once a minute
WAIT_FOR_FIRST_S = 180.0  # how long a second click waits for the first one's answer

# No inline script or style, nothing from another origin but product images (https); the wasm QR decoder needs
# 'wasm-unsafe-eval'; the camera needs mediastream: and blob: for its video.
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob: https:; "
    "connect-src 'self'; media-src 'self' blob: mediastream:; worker-src 'self' blob:; object-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}

STATE_WORDS = {
    ItemState.NONE: "not registered",
    ItemState.MANUFACTURED: "made",
    ItemState.SOLD: "sold",
    ItemState.IN_USE: "in use",
    ItemState.RETURNED: "returned",
    ItemState.COLLECTED: "collected",
    ItemState.REFURBISHED: "refurbished",
    ItemState.RESOLD: "resold",
    ItemState.RECYCLED: "recycled",
    ItemState.DISPOSED: "disposed of",
}


class ConsoleError(Exception):
    """The console's own exceptions, each answered by a handler of :func:`install`."""


class SignInRequired(ConsoleError):
    """No session, or one that ended: a page goes to the sign-in form, a script call gets a 401."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.reason = reason


class CsrfRefused(ConsoleError, PermissionError):
    """A form or call without this session's CSRF token, or from another origin."""


class PageNotFound(ConsoleError, LookupError):
    """No such page for this actor (another role's page, another actor's lot or run, an unknown one)."""


def now() -> datetime:
    return utcnow()


def aware(value: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive (in UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key() -> str:
    """A form's submission key (and any other random token of the console)."""
    return secrets.token_urlsafe(24)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Strict, Secure when the console is reached over https, and only sent to ``/console``."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=is_https(request),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, secure=is_https(request), httponly=True, samesite="strict")


# -- the signed-in actor --------------------------------------------------------------------------------------------
@dataclass
class Console:
    """The signed-in actor of a request, and what its pages need."""

    actor: Actor
    csrf: str
    session_token_hash: str

    @property
    def role(self) -> str:
        return self.actor.role


def _end(session: Session, row: ConsoleSession) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == row.token_hash))
    session.commit()


def get_console(request: Request, session: SessionDep, state: StateDep) -> Console:
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired()
    row = session.get(ConsoleSession, token_hash(token))
    if row is None:
        raise SignInRequired("ended")
    moment = now()
    idle = timedelta(minutes=state.api_settings.console_idle_minutes)
    if aware(row.expires_at) <= moment or aware(row.last_seen_at) + idle <= moment:
        _end(session, row)
        raise SignInRequired("expired")
    actor = session.get(Actor, row.actor_id)
    if actor is None or actor.revoked:
        _end(session, row)
        raise SignInRequired("revoked")
    if aware(row.last_seen_at) + LAST_SEEN_EVERY <= moment:
        row.last_seen_at = moment
        session.commit()
    return Console(actor=actor, csrf=row.csrf_token, session_token_hash=row.token_hash)


ConsoleDep = Annotated[Console, Depends(get_console)]


def same_origin(request: Request) -> bool:
    """A write comes from a page of this console: no other origin, and not a cross-site fetch."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        ours = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != ours:
            return False
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def check_csrf(request: Request, expected: str, sent: str | None) -> None:
    if not same_origin(request):
        raise CsrfRefused("the request came from another site")
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("the form's security token is missing or wrong")


async def get_form_console(request: Request, console: ConsoleDep) -> Console:
    """A form post of the signed-in actor, with this session's CSRF token."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    check_csrf(request, console.csrf, sent if isinstance(sent, str) else None)
    return console


async def get_script_console(request: Request, console: ConsoleDep) -> Console:
    """A call from the console's own scripts, with this session's CSRF token in its header."""
    check_csrf(request, console.csrf, request.headers.get(CSRF_HEADER))
    return console


FormConsole = Annotated[Console, Depends(get_form_console)]
ScriptConsole = Annotated[Console, Depends(get_script_console)]


def require_role(console: Console, *roles: str) -> None:
    """Pages are per role; a page of another role is a 404 (its rules are the services', which refuse it too)."""
    if console.role not in roles:
        raise PageNotFound(console.role)


# -- pages ----------------------------------------------------------------------------------------------------------
NAV: dict[str, list[tuple[str, str]]] = {
    "brand": [
        ("/console", "Home"),
        ("/console/products", "Products"),
        ("/console/lots", "Lots"),
        ("/console/items", "Items"),
        ("/console/import", "Import CSV"),
        ("/console/flow", "Material flow"),
        ("/console/partners", "Partners"),
    ],
    "recycler": [
        ("/console", "Home"),
        ("/console/intake", "Scan intake"),
        ("/console/recycle", "Recycle"),
        ("/console/lots", "Lots"),
    ],
    "retailer": [("/console", "Home"), ("/console/sales", "Record sales")],
    "repairer": [("/console", "Home")],
    "admin": [("/console", "Home")],
}


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    console: Console | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    ctx: dict[str, Any] = {
        "console": console,
        "actor": console.actor if console else None,
        "csrf": console.csrf if console else "",
        "nav": NAV.get(console.role, []) if console else [],
        "path": request.url.path,
        "new_key": new_key,
        "state_words": STATE_WORDS,
        **context,
    }
    response = TEMPLATES.TemplateResponse(request, template, ctx, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def json_answer(body: Any, status_code: int = 200) -> JSONResponse:
    response = JSONResponse(body, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def local_path(value: str | None, default: str = "/console") -> str:
    """`value` if it is a path of the console (a place to go after signing in), else `default`: never another site."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or "\\" in value:
        return default
    return value


# -- plain words ----------------------------------------------------------------------------------------------------
@dataclass
class Refusal:
    """Why a write was refused, in plain words, and the form field it concerns (None: the form as a whole)."""

    message: str
    field: str | None = None
    status: int = 422
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "field": self.field, "status": self.status, **self.details}


def _grams(value: Any) -> str:
    try:
        return f"{int(value):,} g"
    except (TypeError, ValueError):
        return f"{value} g"


def _state_word(value: Any) -> str:
    if isinstance(value, str):
        try:
            return STATE_WORDS[ItemState[value.upper()]]
        except KeyError:
            return value.replace("_", " ")
    try:
        return STATE_WORDS[ItemState(int(value))]
    except (ValueError, TypeError):
        return str(value)


def _next_words(allowed: Any) -> str:
    """The steps a refused one names as possible instead, in words ("It can next be sold, returned or disposed
    of."), or that there are none."""
    words = []
    for action in allowed if isinstance(allowed, list) else []:
        try:
            words.append(lifecycle_step(str(action)).label.lower())
        except (KeyError, ValueError):
            words.append(str(action).replace("_", " "))
    if not words:
        return " Nothing more can be recorded for it." if isinstance(allowed, list) else ""
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    return f" It can next be {listed}."


def _revert_words(name: str, args: Mapping[str, Any], allowed: Any = None) -> Refusal:
    if name == "RecoveredMassExceeded":
        return Refusal(
            f"A recovered lot cannot weigh more than the items recycled into it: these items weigh "
            f"{_grams(args.get('recycledGrams'))} in all, and {_grams(args.get('requestedGrams'))} were entered. "
            "Weigh the recovered material and enter at most what the items weighed.",
            "mass_grams",
        )
    if name == "LotMassExceeded":
        return Refusal(
            f"Not enough material left in a lot: {_grams(args.get('requestedGrams'))} needed, "
            f"{_grams(args.get('availableGrams'))} left.",
            "composition",
        )
    if name == "LotAllocationUnauthorized":
        return Refusal(
            f"That lot is another actor's; its owner approved {_grams(args.get('allowedGrams'))} to you, "
            f"and {_grams(args.get('requestedGrams'))} are needed.",
            "composition",
            403,
        )
    if name in ("IllegalTransition", "UnauthorizedTransition"):
        current, requested = _state_word(args.get("current")), _state_word(args.get("requested"))
        words = "may not" if name == "UnauthorizedTransition" else "cannot"
        return Refusal(
            f"This item is {current}: it {words} become {requested} from there.{_next_words(allowed)}", None, 409
        )
    if name == "NotBrandPartner":
        return Refusal(
            "This item's brand has not authorised you to move its items: ask the brand to add you as a partner.",
            None,
            403,
        )
    if name in ("ItemAlreadyRegistered", "RunAlreadyRegistered"):
        return Refusal("An item with this serial is registered already.", "serial", 409)
    if name == "LotAlreadyRegistered":
        return Refusal("A lot with this number is registered already.", "lot_number", 409)
    if name in ("GtinNotOwned", "CompanyPrefixNotAssigned", "InvalidGtin"):
        return Refusal("This GTIN is not under one of your GS1 company prefixes.", "gtin", 403)
    if name == "InvalidMaterialCode":
        return Refusal("This material code is not in the catalogue.", "material_code")
    if name == "NothingToRecycle":
        return Refusal("Choose at least one collected item to recycle.", "items")
    if name == "ZeroMass":
        return Refusal("The mass must be more than 0 g.", "mass_grams")
    return Refusal(f"The ledger refused this ({name}).")


_TITLE_FIELDS = {
    "Not your GTIN": "gtin",
    "Unknown GTIN": "gtin",
    "LotAlreadyRegistered": "lot_number",
    "ItemAlreadyRegistered": "serial",
    "Duplicate serials": "serials",
    "Run too large": "count",
    "Unknown lot": "composition",
    "Not your lot": "composition",
    "Unknown item": "items",
    "Duplicate items": "items",
    "Unknown actor": "operator",
}


def refusal(exc: BaseException) -> Refusal:
    """A write's refusal in plain words: the API's problem, a contract revert named by the ledger, a node that did
    not answer."""
    if isinstance(exc, ContractRevert):
        problem = revert_problem(exc)
        return _revert_words(exc.name, problem.extra.get("args", {}), problem.extra.get("allowedNext"))
    if isinstance(exc, Problem):
        error = exc.extra.get("error")
        if isinstance(error, str) and isinstance(exc.extra.get("args"), dict):
            words = _revert_words(error, exc.extra["args"], exc.extra.get("allowedNext"))
            if not words.message.startswith("The ledger refused"):
                return words
        if exc.title == "Material mass exceeded":
            code = str(exc.extra.get("material", ""))
            known = catalogue().get(code)
            name = known.name.lower() if known is not None else code
            return Refusal(
                f"These items held {_grams(exc.extra.get('availableGrams'))} of what recycles into {name}: a "
                f"recovered lot of it cannot weigh more, and {_grams(exc.extra.get('requestedGrams'))} were entered.",
                "mass_grams",
            )
        if exc.title == "Not a recovered material":
            return Refusal(f"{exc.detail or 'This is not a recovered material'}. Choose the material recycling "
                           "yields (recycled cotton for cotton, for example).", "material_code")
        if exc.status == 503:
            return Refusal(
                "The ledger has not confirmed this yet. It completes on its own; send the form again in a minute "
                "to see it done.",
                None,
                503,
            )
        return Refusal(exc.detail or exc.title, _TITLE_FIELDS.get(exc.title), exc.status)
    if isinstance(exc, ValidationError):
        first: Mapping[str, Any] = exc.errors()[0] if exc.errors() else {}
        return Refusal(plain_validation(first), field_of(first))
    if isinstance(exc, TransactionFailed):
        return Refusal("The ledger refused this transaction.", None, 422)
    if isinstance(exc, LedgerError):
        return Refusal("The ledger is not reachable right now. Nothing was written; try again in a minute.", None, 503)
    raise exc


def field_of(error: Mapping[str, Any]) -> str | None:
    loc = [str(p) for p in error.get("loc", ())]
    return loc[0] if loc else None


def plain_validation(error: Mapping[str, Any]) -> str:
    """Pydantic's message, in the console's words."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "Required."
    if kind in ("string_too_short",) and ctx.get("min_length") == 1:
        return "Required."
    if kind == "string_too_long":
        return f"At most {ctx.get('max_length')} characters."
    if kind == "string_pattern_mismatch":
        return "Not in the expected form."
    if kind in ("int_parsing", "int_from_float"):
        return "A whole number, please."
    if kind == "greater_than":
        return f"Must be more than {ctx.get('gt')}."
    if kind == "less_than_equal":
        return f"At most {ctx.get('le')}."
    if kind == "greater_than_equal":
        return f"At least {ctx.get('ge')}."
    message = str(error.get("msg", "Not valid."))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_errors(exc: ValidationError, names: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every field's first problem, keyed by the form's field name."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = field_of(error) or "_form"
        name = (names or {}).get(name, name)
        errors.setdefault(name, plain_validation(error))
    return errors


# -- submissions: one write per form, whatever the clicks -----------------------------------------------------------
RUNNING, DONE, FAILED = "running", "done", "failed"


def submission_key(value: Any) -> str:
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise Problem(400, "Bad request", "the form has no submission key: reload the page")
    return value


def once(state: AppState, actor: Actor, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` once per (actor, key): a second submission of the same form, during or after the first, gets the
    first one's result (its error included) instead of running again. A submission that failed before is run again
    (nothing was written by it).

    `work` returns a JSON-able result; an exception it raises is answered as its :func:`refusal`, stored, and raised
    again as :class:`Refused`."""
    claimed = _claim(state, actor.id, key)
    if not claimed:
        return _wait(state, actor.id, key)
    try:
        result = work()
    except (Problem, ContractRevert, ValidationError, LedgerError) as exc:
        words = refusal(exc)
        _finish(state, actor.id, key, FAILED, {"refused": words.as_json()})
        raise Refused(words) from exc
    except BaseException:
        _finish(state, actor.id, key, FAILED, {"refused": Refusal("Something went wrong; nothing was written.", None,
                                                                  500).as_json()})
        raise
    _finish(state, actor.id, key, DONE, result)
    return result


class Refused(ConsoleError):
    """A write refused (for a first or a repeated submission): its plain words."""

    def __init__(self, words: Refusal) -> None:
        super().__init__(words.message)
        self.words = words


def _claim(state: AppState, actor_id: int, key: str) -> bool:
    with state.service.sessions() as session:
        session.add(ConsoleSubmission(actor_id=actor_id, key=key, status=RUNNING, created_at=now()))
        try:
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
        # Seen before: a failed one may run again (nothing was written); a running or done one is waited for.
        result = session.execute(
            update(ConsoleSubmission)
            .where(
                ConsoleSubmission.actor_id == actor_id,
                ConsoleSubmission.key == key,
                ConsoleSubmission.status == FAILED,
            )
            .values(status=RUNNING, result=None, finished_at=None, created_at=now())
        )
        session.commit()
        return bool(getattr(result, "rowcount", 0) == 1)


def _finish(state: AppState, actor_id: int, key: str, status: str, result: dict[str, Any]) -> None:
    with state.service.sessions() as session:
        session.execute(
            update(ConsoleSubmission)
            .where(ConsoleSubmission.actor_id == actor_id, ConsoleSubmission.key == key)
            .values(status=status, result=json.loads(json.dumps(result, default=str)), finished_at=now())
        )
        session.commit()


def _wait(state: AppState, actor_id: int, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_FOR_FIRST_S
    delay = 0.05
    while True:
        with state.service.sessions() as session:
            row = session.get(ConsoleSubmission, (actor_id, key))
            status, result = (row.status, row.result) if row is not None else (FAILED, None)
        if status != RUNNING:
            if result is not None and "refused" in result:
                raise Refused(Refusal(**{k: v for k, v in result["refused"].items()
                                         if k in ("message", "field", "status")}))
            return dict(result or {})
        if time.monotonic() > deadline:
            raise Refused(Refusal("The first submission of this form is still running; reload in a minute.", None, 409))
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


# -- handlers -------------------------------------------------------------------------------------------------------
def install(app: FastAPI) -> None:
    """Answer the console's exceptions: to the sign-in form (pages) or a 401 (scripts); a refused CSRF check 403."""

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.url.path.startswith("/console/api/"):
            expired = exc.reason == "expired"
            message = "Your session has expired: sign in again." if expired else "Sign in first."
            return json_answer({"message": message, "signIn": "/console/sign-in" + ("?why=expired" if expired else "")},
                               401)
        target = "/console/sign-in"
        query = []
        if exc.reason in ("expired", "revoked"):
            query.append(f"why={exc.reason}")
        if request.method == "GET" and request.url.path != "/console/sign-in":
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            query.append("next=" + quote(wanted, safe="/"))
        response = redirect(target + ("?" + "&".join(query) if query else ""))
        clear_cookie(response, request, COOKIE)
        return response

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        log.warning("console: refused a request without a valid CSRF token (%s %s)", request.method, request.url.path)
        message = (
            "This form could not be accepted: it was not sent from this console's own page, or the page is too old. "
            "Reload the page and try again."
        )
        if request.url.path.startswith("/console/api/"):
            return json_answer({"message": message}, 403)
        return render(request, "console/error.html", {"title": "Form refused", "message": message}, status_code=403)

    @app.exception_handler(PageNotFound)
    async def _not_found(request: Request, exc: PageNotFound) -> Response:
        message = "There is no such page, or it is not yours to see."
        if request.url.path.startswith("/console/api/"):
            return json_answer({"message": message}, 404)
        return render(request, "console/error.html", {"title": "Not found", "message": message}, status_code=404)


__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SECURITY_HEADERS",
    "SIGN_IN_COOKIE",
    "STATE_WORDS",
    "SUBMISSION_FIELD",
    "TEMPLATES",
    "Console",
    "ConsoleDep",
    "ConsoleError",
    "CsrfRefused",
    "FormConsole",
    "PageNotFound",
    "Refusal",
    "Refused",
    "ScriptConsole",
    "SignInRequired",
    "aware",
    "check_csrf",
    "clear_cookie",
    "install",
    "json_answer",
    "local_path",
    "new_key",
    "now",
    "once",
    "redirect",
    "refusal",
    "render",
    "require_role",
    "same_origin",
    "set_cookie",
    "submission_key",
    "token_hash",
    "validation_errors",
]
