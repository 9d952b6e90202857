"""Signing in and out of the console: with an actor's API key, or with a one-time link the admin's CLI prints.

- The API key is posted once, in the sign-in form's body, checked like a Bearer key (``api.actors.authenticate``)
  and never written anywhere: not in a page (the field is empty again after a refusal), not in a URL, not in a log.
- A one-time link carries its code in the URL's fragment (``/console/sign-in#code=...``), which browsers never send
  to a server, so the code is in no server's access log either; the sign-in page's script posts it. A code works
  once, for ``console_link_minutes``; only its SHA-256 is stored.
- A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure when the console is reached over
  https) sent only to ``/console``; the database keeps its SHA-256, its actor, its CSRF token and its expiry (an
  absolute one and an idle one). Signing out deletes it.
- The sign-in form has its own CSRF token (a cookie and a field that must match), so that another site cannot sign a
  browser in as someone else.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from ...actors import authenticate
from ...config import ApiSettings
from ...deps import SessionDep, StateDep
from ...models import Actor, ConsoleLink, ConsoleSession, ConsoleSubmission
from ...state import AppState
from .web import (
    COOKIE,
    SIGN_IN_COOKIE,
    CsrfRefused,
    FormConsole,
    clear_cookie,
    local_path,
    now,
    redirect,
    render,
    same_origin,
    set_cookie,
    token_hash,
)

router = APIRouter()

FAILED_SIGN_INS_PER_MINUTE = 10  # per client address: keys cannot be guessed, but nobody needs more tries than this
SUBMISSIONS_KEPT = timedelta(days=1)
WHY = {
    "expired": "Your session has expired. Sign in again.",
    "revoked": "This actor's access was revoked.",
    "signed-out": "You are signed out.",
}


def issue_sign_in_link(
    session: Session, actor: Actor, settings: ApiSettings, resolver_base_url: str, minutes: float | None = None
) -> str:
    """A one-time sign-in link for `actor` (what ``circular`` prints for the admin to hand over)."""
    if actor.revoked:
        raise ValueError(f"actor {actor.name!r} is revoked")
    code = secrets.token_urlsafe(32)
    moment = now()
    session.add(
        ConsoleLink(
            token_hash=token_hash(code),
            actor_id=actor.id,
            created_at=moment,
            expires_at=moment + timedelta(minutes=minutes or settings.console_link_minutes),
        )
    )
    session.commit()
    base = (settings.console_url or resolver_base_url).rstrip("/")
    return f"{base}/console/sign-in#code={code}"


class FailedSignIns:
    """Failed sign-ins per client address in the last minute: past the limit, sign-ins wait (successful ones are not
    counted, so a team behind one address signs in freely)."""

    def __init__(self, limit: int, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, moment: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= moment - self.window_s:
            failures.popleft()
        return failures

    def wait(self, client: str) -> float | None:
        """Seconds to wait before trying again, or None."""
        moment = time.monotonic()
        with self._lock:
            failures = self._recent(client, moment)
            return failures[0] + self.window_s - moment if len(failures) >= self.limit else None

    def failed(self, client: str) -> None:
        moment = time.monotonic()
        with self._lock:
            self._recent(client, moment).append(moment)
            if len(self._failures) > 100_000:  # forget the oldest clients rather than grow without end
                for stale in list(self._failures)[:50_000]:
                    del self._failures[stale]


def _limiter(state: AppState) -> FailedSignIns:
    limiter = state.extra.get("console_sign_ins")
    if limiter is None:
        limiter = state.extra.setdefault("console_sign_ins", FailedSignIns(FAILED_SIGN_INS_PER_MINUTE))
    return limiter  # type: ignore[no-any-return]


def _form(request: Request, *, error: str | None = None, field: str | None = None, status_code: int = 200,
          next_path: str = "/console", why: str | None = None) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "console/sign_in.html",
        {
            "title": "Sign in",
            "sign_in_csrf": token,
            "error": error,
            "error_field": field,
            "next_path": next_path,
            "notice": WHY.get(why or ""),
        },
        status_code=status_code,
    )
    set_cookie(response, request, SIGN_IN_COOKIE, token, 3600)
    return response


@router.get("/sign-in", summary="The console's sign-in form")
def sign_in_form(request: Request, why: str | None = None, next: str | None = None) -> Response:
    return _form(request, next_path=local_path(next), why=why)


@router.post("/sign-in", summary="Sign in with an API key or a one-time code")
def sign_in(
    request: Request,
    session: SessionDep,
    state: StateDep,
    csrf: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/console",
) -> Response:
    next_path = local_path(next)
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not same_origin(request) or not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise CsrfRefused("sign-in form token")
    client = request.client.host if request.client else "unknown"
    limiter = _limiter(state)
    wait = limiter.wait(client)
    if wait is not None:
        return _form(request, error=f"Too many attempts. Wait {int(wait) + 1} seconds and try again.",
                     status_code=429, next_path=next_path)
    api_key, code = api_key.strip(), code.strip()
    if code:
        actor = _use_link(session, code)
        if actor is None:
            limiter.failed(client)
            return _form(
                request,
                error="This sign-in link does not work any more: a link works once, and only for a few minutes. "
                "Ask your administrator for a new one, or sign in with your API key.",
                field="code",
                status_code=401,
                next_path=next_path,
            )
    elif api_key:
        found = authenticate(session, api_key)
        if found is None:
            limiter.failed(client)
            return _form(request, error="This API key is not valid, or it was revoked. Check it and try again.",
                         field="api_key", status_code=401, next_path=next_path)
        actor = found
    else:
        return _form(request, error="Enter your API key.", field="api_key", status_code=422, next_path=next_path)
    return _start_session(request, session, state, actor, next_path)


def _use_link(session: Session, code: str) -> Actor | None:
    """The actor of an unused, unexpired link, which is used up by this call (exactly once, even if raced)."""
    hashed = token_hash(code)
    moment = now()
    result = session.execute(
        update(ConsoleLink)
        .where(ConsoleLink.token_hash == hashed, ConsoleLink.used_at.is_(None), ConsoleLink.expires_at > moment)
        .values(used_at=moment)
    )
    session.commit()
    if getattr(result, "rowcount", 0) != 1:
        return None
    link = session.get(ConsoleLink, hashed)
    actor = session.get(Actor, link.actor_id) if link is not None else None
    return actor if actor is not None and not actor.revoked else None


def _start_session(request: Request, session: Session, state: AppState, actor: Actor, next_path: str) -> Response:
    settings = state.api_settings
    moment = now()
    # What has ended is dropped here, rather than by a timer: sign-ins are rare and this is one indexed delete.
    idle = timedelta(minutes=settings.console_idle_minutes)
    session.execute(
        delete(ConsoleSession).where(
            or_(ConsoleSession.expires_at <= moment, ConsoleSession.last_seen_at <= moment - idle)
        )
    )
    session.execute(delete(ConsoleLink).where(ConsoleLink.expires_at <= moment - timedelta(days=1)))
    # A form's submission is remembered for a day: long enough for any second click or resent form.
    session.execute(delete(ConsoleSubmission).where(ConsoleSubmission.created_at <= moment - SUBMISSIONS_KEPT))
    old = request.cookies.get(COOKIE)
    if old:  # a new session never reuses a token the browser held before (no fixation)
        session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash(old)))
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(hours=settings.console_session_hours)
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            actor_id=actor.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=moment,
            last_seen_at=moment,
            expires_at=moment + lifetime,
        )
    )
    session.commit()
    response = redirect(next_path)
    set_cookie(response, request, COOKIE, token, int(lifetime.total_seconds()))
    clear_cookie(response, request, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out", summary="Sign out")
def sign_out(request: Request, console: FormConsole, session: SessionDep) -> Response:
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == console.session_token_hash))
    session.commit()
    response = redirect("/console/sign-in?why=signed-out")
    clear_cookie(response, request, COOKIE)
    return response


def actor_named(session: Session, name: str) -> Actor | None:
    return session.scalar(select(Actor).where(Actor.name == name))


__all__ = ["actor_named", "issue_sign_in_link", "router"]
