"""What the app believes of a request's own headers: the Host it may name, and the proxies whose forwarded headers
count.

Links are never built from a request (``routes/resolver.request_base`` is the configured resolver base URL), so a
``Host`` or ``X-Forwarded-Proto`` header changes no answer. On top of that, a request naming a host the deployment
does not serve gets 400 (Starlette's ``TrustedHostMiddleware``): the resolver's and the console's hosts, loopback,
and ``ApiSettings.trusted_hosts``. ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are read (uvicorn's
``ProxyHeadersMiddleware``) only from the addresses in ``ApiSettings.trusted_proxies``, none by default: a client
reaching the server through a pass-through relay (a TCP relay, ``ssh -L``) comes from loopback and is no proxy.
After it, ``request.client`` is the real client, the key of every per-client limit.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.middleware.trustedhost import TrustedHostMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ledger.settings import Settings

from .config import ApiSettings

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def allowed_hosts(settings: Settings, api_settings: ApiSettings) -> list[str]:
    """The Host names a request may carry (``*``: any)."""
    hosts = [*LOOPBACK_HOSTS, *api_settings.trusted_hosts]
    for url in (settings.resolver_base_url, api_settings.console_url):
        name = urlsplit(url).hostname if url else None
        if name:
            hosts.append(name)
    return list(dict.fromkeys(host.lower() for host in hosts))


def install(app: FastAPI, settings: Settings, api_settings: ApiSettings) -> None:
    """Add the two middlewares, outermost (call after every other ``add_middleware``)."""
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings, api_settings), www_redirect=False)
    # Outside the host check: the client and scheme are settled before anything else reads them.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(api_settings.trusted_proxies))


def client_address(request: Request) -> str:
    """The client's address as the proxy handling left it: a trusted proxy's forwarded one, else the peer's."""
    return request.client.host if request.client else "unknown"


__all__ = ["LOOPBACK_HOSTS", "allowed_hosts", "client_address", "install"]
