"""Settings of the API that the ledger's :class:`ledger.settings.Settings` does not hold (``CIRCULAR_API_*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CollectionPoint(BaseModel):
    """A place that takes items back. Configured as a JSON list in ``CIRCULAR_API_COLLECTION_POINTS``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    address: str = ""
    city: str = ""
    country: str = Field("", max_length=2, description="ISO 3166-1 alpha-2")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    opening_hours: str = ""


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIRCULAR_API_", extra="ignore")

    resolver_name: str = "circular-ledger GS1-conformant resolver"
    operator_name: str = "circular-ledger"
    collection_points: list[CollectionPoint] = Field(default_factory=list)
    nearest_points: int = Field(3, ge=1, le=50, description="How many collection points a return request lists.")
    return_requests_per_minute: int = Field(
        5, ge=1, description="Per client address (after trusted-proxy handling: api/edge.py), across all items."
    )
    return_requests_open_per_item: int = Field(
        3, ge=1, le=100, description="Most unexpired open drop-off codes of one item; more: 429 until one expires."
    )
    drop_off_code_days: float = Field(
        30.0, gt=0, le=3650, description="How long a drop-off code is valid; an expired one is refused at intake (410)."
    )
    max_run_size: int = Field(10_000, ge=1, le=100_000, description="Most items registered in one run.")
    capture_max_events: int = Field(10_000, ge=1, description="Most events in one EPCIS capture request.")
    capture_max_bytes: int = Field(20_000_000, ge=1_000, description="Largest EPCIS capture body.")
    max_body_bytes: int = Field(
        2_000_000, ge=1_000, description="Largest request body outside EPCIS capture (413 before it is read)."
    )
    max_json_depth: int = Field(64, ge=8, le=1_000, description="Deepest nesting of a JSON body (deeper: 4xx).")
    max_per_page: int = Field(1_000, ge=1, description="Largest perPage of an EPCIS query.")
    verification_ttl_s: float = Field(300.0, ge=0, description="How long a passport's verification verdict is kept.")
    provenance_max_generations: int = Field(12, ge=1, le=100)
    response_cache_mb: int = Field(
        32, ge=0, description="Memory for built passports and QR codes (api/response_cache.py); 0: no cache."
    )
    console_session_hours: float = Field(12.0, gt=0, le=24 * 30, description="A console session's longest life.")
    console_idle_minutes: float = Field(60.0, gt=0, description="A console session ends after this long unused.")
    console_link_minutes: float = Field(15.0, gt=0, description="How long a one-time sign-in link stays valid.")
    console_url: str | None = Field(
        None, description="The console's public address, for sign-in links (default: the resolver's base URL)."
    )
    scan_flush_interval_s: float = Field(
        0.5, gt=0, le=60, description="How often buffered scans are written (a crash loses at most this much)."
    )
    scan_buffer_rows: int = Field(20_000, ge=1, description="Most scans waiting to be written (more are dropped).")
    scans_per_client_per_minute: int = Field(
        60, ge=1, description="Most scan rows one client (its address, after trusted-proxy handling) writes per minute."
    )
    scan_clients_tracked: int = Field(100_000, ge=1, description="Clients remembered for the per-client bound.")
    scan_retention_days: float = Field(
        90.0, gt=0, description="How long scans are kept for the audit's clone rules; older ones are deleted."
    )
    geo_header: str | None = Field(
        None,
        description="The header a CDN in front sets to the client's country (cf-ipcountry,"
        " cloudfront-viewer-country), believed from trusted_proxies only; unset: scans have no country.",
    )
    requests_per_client_per_minute: int = Field(
        1_200,
        ge=0,
        description="Requests one client (its address, after trusted-proxy handling) may send a minute, sustained;"
        " more: 429 (api/ratelimit.py). 0: no limit.",
    )
    requests_burst: int = Field(
        200, ge=1, description="Requests one client may send at once, above the sustained rate."
    )
    rate_limit_clients: int = Field(100_000, ge=1, description="Clients remembered for the per-client request limit.")
    trusted_hosts: list[str] = Field(
        default_factory=list,
        description="Host names served besides the resolver's, the console's and loopback ('*.example.org' matches"
        " subdomains, '*' any); a request naming another host gets 400.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of the proxies whose X-Forwarded-For and X-Forwarded-Proto are believed"
        " (uvicorn's forwarded_allow_ips); none by default.",
    )
    version_catch_up_s: float = Field(
        2.0, gt=0, description="How often passports are rebuilt for batches another process anchored."
    )
    chain_check_s: float = Field(
        5.0, gt=0, description="How often the node is asked whether it answers and is our chain (api/health.py)."
    )
    ready_max_anchor_lag_s: float = Field(
        300.0, gt=0, description="GET /readyz is 503 when the oldest event not yet anchored is older than this."
    )


__all__ = ["ApiSettings", "CollectionPoint"]
