"""Anonymous scans neither forge alarms about someone else's item nor fill the disk.

The attack: ``?loc=`` and the CDN country headers were believed from anyone: 12 anonymous GETs raised
``impossible-travel`` and ``scan-burst`` for a competitor's item (a new User-Agent was a new "client"); 2,000 random
serials raised 2,000 ``unknown-serial`` findings; scans were kept for ever.

Now a scan's country comes only from the configured CDN header (``geo_header``) sent by a configured proxy, never
from ``?loc=``; a client is its address after trusted-proxy handling, so a new User-Agent is the same client, and a
client writes at most ``scans_per_client_per_minute`` rows; past ``unknown_serials_listed`` unknown serials of one
GTIN the audit reports one sweep; scans older than ``scan_retention_days`` are deleted. SQLite and PostgreSQL (the
audit and the retention read and delete in the database).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from api.audit import Thresholds, audit_scans, audit_unknown_serials
from api.models import Scan, UnknownScan, utcnow
from api.scans import scans_for
from tests.api.conftest import GTIN_A, World
from tests.security.conftest import app_of

FAR = ["AU", "DE", "US", "JP", "BR", "ZA"]


def _competitors_item(w: World) -> dict[str, Any]:
    item = w.item([(w.lot(role="brand_b", gtin=None)["lotId"], 100)], role="brand_b", gtin="04012345123456")
    return item


def _scan_rows(w: World, serial: str) -> list[Scan]:
    with w.service.sessions() as session:
        rows = list(session.scalars(select(Scan).where(Scan.serial == serial).order_by(Scan.id)))
        session.expunge_all()
    return rows


def _alarms(w: World, serial: str) -> list[str]:
    with w.service.sessions() as session:
        found, _ = audit_scans(session, _World(), {}, Thresholds())
    return sorted(a.rule for a in found if a.subject.endswith("/" + serial))


class _World:
    """What audit_scans asks of the audit's world: nothing, for items with no end of life."""


def test_twelve_anonymous_gets_raise_no_alarm(any_db_world: World) -> None:
    """The attack replayed on a server with a CDN configured: the attacker reaches the origin directly, and sends
    the CDN's header, ?loc= and a new User-Agent each time."""
    w = any_db_world
    item = _competitors_item(w)
    path = f"/01/{item['gtin']}/21/{item['serial']}"
    with app_of(w, geo_header="cf-ipcountry", trusted_proxies=["10.0.0.1"]) as client:
        for n in range(12):
            country = FAR[n % len(FAR)]
            response = client.get(f"{path}?loc={country}", follow_redirects=False, headers={
                "CF-IPCountry": country, "User-Agent": f"phone-{n}", "X-Forwarded-For": f"198.51.100.{n}"})
            assert response.status_code == 307
        scans_for(client.app.state.circular).flush()  # type: ignore[attr-defined]
    rows = _scan_rows(w, item["serial"])
    assert len(rows) == 12
    assert {r.region for r in rows} == {None}  # no country from anything the client chose
    assert len({r.client for r in rows}) == 1  # one client, whatever its User-Agent and X-Forwarded-For said
    assert _alarms(w, item["serial"]) == []


def test_a_configured_cdn_is_believed_and_loc_never(any_db_world: World) -> None:
    """Through the configured proxy, the CDN's header gives the country; ?loc= gives none, even then."""
    w = any_db_world
    item = _competitors_item(w)
    path = f"/01/{item['gtin']}/21/{item['serial']}"
    with app_of(w, geo_header="cf-ipcountry", trusted_proxies=["testclient"]) as client:
        client.get(path, headers={"CF-IPCountry": "NL", "X-Forwarded-For": "203.0.113.7"}, follow_redirects=False)
        client.get(path + "?loc=AU", headers={"X-Forwarded-For": "203.0.113.7"}, follow_redirects=False)
        client.get(path, headers={"CloudFront-Viewer-Country": "JP"}, follow_redirects=False)  # not the configured one
        scans_for(client.app.state.circular).flush()  # type: ignore[attr-defined]
    assert [r.region for r in _scan_rows(w, item["serial"])] == ["NL", None, None]
    with app_of(w, trusted_proxies=["testclient"]) as client:  # no geo_header: no country at all
        client.get(path, headers={"CF-IPCountry": "NL"}, follow_redirects=False)
        scans_for(client.app.state.circular).flush()  # type: ignore[attr-defined]
    assert _scan_rows(w, item["serial"])[-1].region is None


def test_a_flooding_client_writes_a_bounded_number_of_rows(any_db_world: World) -> None:
    w = any_db_world
    item = _competitors_item(w)
    path = f"/01/{item['gtin']}/21/{item['serial']}"
    with app_of(w, scans_per_client_per_minute=10) as client:
        for n in range(100):
            client.get(path, headers={"User-Agent": f"ua-{n}"}, follow_redirects=False)
        buffer = scans_for(client.app.state.circular)  # type: ignore[attr-defined]
        buffer.flush()
        stats = buffer.stats()
    # The bound is per fixed minute: a run across a minute's boundary gets two minutes' worth.
    written = len(_scan_rows(w, item["serial"]))
    assert written in (10, 20) and stats.dropped_client == 100 - written
    print(f"\nFIGURE scan-flood: 100 scans with 100 User-Agents from one address: {written} rows written")


def test_random_serials_make_one_finding(any_db_world: World) -> None:
    """300 random serials of Brand A's GTIN from 30 addresses (each under the per-client bound): every lookup is
    kept, and the audit reports one sweep, not 300 findings."""
    w = any_db_world
    w.item([(w.lot()["lotId"], 100)])  # GTIN_A is registered: its unknown serials walk up and are recorded
    with w.service.sessions() as session:
        session.execute(delete(UnknownScan).where(UnknownScan.gtin == GTIN_A))
        session.commit()
    with app_of(w, trusted_proxies=["testclient"]) as client:
        for n in range(300):
            response = client.get(f"/01/{GTIN_A}/21/SWEEP{n:05d}", follow_redirects=False,
                                  headers={"X-Forwarded-For": f"192.0.2.{n % 30 + 1}"})
            assert response.status_code == 307
        scans_for(client.app.state.circular).flush()  # type: ignore[attr-defined]
    with w.service.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(UnknownScan).where(UnknownScan.gtin == GTIN_A))
        findings = audit_unknown_serials(session, Thresholds(unknown_serials_listed=20))
    assert stored == 300
    mine = [f for f in findings if f.subject.startswith(GTIN_A)]
    assert [f.subject for f in mine] == [f"{GTIN_A}/*"]
    assert "300 serials never registered" in mine[0].detail
    with w.service.sessions() as session:  # a few are still listed one by one
        few = audit_unknown_serials(session, Thresholds(unknown_serials_listed=1000))
    assert len([f for f in few if f.subject.startswith(GTIN_A)]) == 300


def test_scans_are_kept_for_the_configured_time(any_db_world: World) -> None:
    w = any_db_world
    now = utcnow()
    with w.service.sessions() as session:
        session.add_all([
            Scan(gtin=GTIN_A, serial="RETAIN-OLD", region=None, client="c", scanned_at=now - timedelta(days=31)),
            Scan(gtin=GTIN_A, serial="RETAIN-NEW", region=None, client="c", scanned_at=now - timedelta(days=29)),
            UnknownScan(gtin=GTIN_A, ai="21", value="RETAIN-OLD", user_agent=None,
                        scanned_at=now - timedelta(days=31)),
        ])
        session.commit()
    with app_of(w, scan_retention_days=30) as client:
        buffer = scans_for(client.app.state.circular)  # type: ignore[attr-defined]
        assert buffer.prune() >= 2
    with w.service.sessions() as session:
        kept = set(session.scalars(select(Scan.serial).where(Scan.serial.like("RETAIN-%"))))
        unknown = list(session.scalars(select(UnknownScan.value).where(UnknownScan.value == "RETAIN-OLD")))
    assert kept == {"RETAIN-NEW"} and unknown == []
