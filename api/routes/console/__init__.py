"""The console at ``/console``: brands, recyclers and retailers work in a browser, on a phone.

Server-rendered pages (``api/templates/console``) with small scripts of our own and pinned npm libraries served from
``api/static/console``. Every write calls the same function of :mod:`api.services` as the write API, so one piece
of code decides what each actor may do. Signing in, sessions and CSRF: :mod:`.auth` and :mod:`.web`.
"""

from __future__ import annotations

from fastapi import APIRouter

from . import auth, flow, home, imports, items, lots, partners, products, recycle, scan
from .auth import actor_named, issue_sign_in_link
from .web import install

router = APIRouter(include_in_schema=False)
for _module in (auth, home, products, lots, items, imports, flow, partners, scan, recycle):
    router.include_router(_module.router, prefix="/console")

__all__ = ["actor_named", "install", "issue_sign_in_link", "router"]
