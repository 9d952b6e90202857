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

import ipaddress
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
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


VIA_PROXY = "circular.via_proxy"


class ForwardedHeaders:
    """uvicorn's proxy-headers handling, noting in the scope whether the peer was a trusted proxy: what only a proxy
    sets (a CDN's country header) counts only then."""

    def __init__(self, app: ASGIApp, trusted_hosts: list[str]) -> None:
        self.proxies = ProxyHeadersMiddleware(app, trusted_hosts)  # type: ignore[arg-type]  # uvicorn's ASGI types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            scope[VIA_PROXY] = peer is not None and peer[0] in self.proxies.trusted_hosts
        await self.proxies(scope, receive, send)  # type: ignore[arg-type]


def via_trusted_proxy(request: Request) -> bool:
    """Whether the request reached the app through a configured proxy."""
    return bool(request.scope.get(VIA_PROXY))


def install(app: FastAPI, settings: Settings, api_settings: ApiSettings) -> None:
    """Add the two middlewares, outermost (call after every other ``add_middleware``)."""
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings, api_settings), www_redirect=False)
    # Outside the host check: the client and scheme are settled before anything else reads them.
    app.add_middleware(ForwardedHeaders, trusted_hosts=list(api_settings.trusted_proxies))


def client_key(host: str) -> str:
    """The key of a client's address in every per-client bound: an IPv4 address as it is (an IPv4-mapped IPv6 one
    too), an IPv6 address by its /64 network, which one subscriber holds whole (a home connection gets at least a
    /64: keyed by the address, it had 2^64 fresh budgets)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return host


def client_address(request: Request) -> str:
    """The client, as every per-client bound keys it: its address after trusted-proxy handling (a trusted proxy's
    forwarded one, else the peer's), an IPv6 one by its /64 (:func:`client_key`)."""
    return client_key(request.client.host) if request.client else "unknown"


__all__ = [
    "LOOPBACK_HOSTS",
    "ForwardedHeaders",
    "allowed_hosts",
    "client_address",
    "client_key",
    "install",
    "via_trusted_proxy",
]
