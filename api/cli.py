"""The API's commands of the `circular` command line: the server, actors, and the commands that read or write the
API's tables beside the ledger's (verify against the database's claims, rebuild, audit).

Nothing here builds a command line: ``circular/cli.py`` joins these commands with the ledger's into one typer app.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger.cli import (
    DataDirOption,
    DbOption,
    RpcOption,
    clean_errors,
    console,
    err_console,
    load_settings,
    open_service,
)
from ledger.errors import LedgerError
from ledger.files import private_dir

from .config import ApiSettings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .models import Actor


@clean_errors
def verify(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="An evidence bundle file, or an item's Digital Link URI.")],
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check every event of a bundle: its hash, signature, Merkle proof and root on-chain. For an item's Digital Link,
    also check that the database's composition of the item (lots, grams, their material and recycled share) is the
    chain's. Exit 1 if anything fails."""
    from ledger.evidence import export_bundle, verify_bundle
    from ledger.ids import at_resolver

    from .integrity import claim_for_link

    service = open_service(ctx, rpc, db, data_dir)
    differences: list[str] = []
    try:
        path = Path(target)
        if path.exists():
            try:
                bundle = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} is not JSON: {exc}") from None
        else:
            bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, target)
            if not bundle["events"]:  # a link from another host of the resolver: events name the configured one
                target = at_resolver(service.settings.resolver_base_url, target)
                bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, target)
            with service.sessions() as session:
                claim = claim_for_link(session, target)
            if claim is not None:
                differences = service.chain_facts.problems(claim)
        verdict = verify_bundle(bundle, service.backend.web3)
    finally:
        service.close()
    for event in verdict.events:
        mark = "[green]ok[/green]  " if event.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {event.event_id}  " + ("; ".join(event.problems) or "hash, signature, proof, root"))
    for version in verdict.versions:
        mark = "[green]ok[/green]  " if version.ok else "[red]FAIL[/red]"
        what = f"{version.kind} version {version.number}  "
        console.print(f"{mark} {what}" + ("; ".join(version.problems) or "canonical, hash, chain, proof, root"))
    content = verdict.content
    if content is not None and content.share_bps is not None and not content.problems:
        stated = (
            f", as the passport states ({verdict.stated_share:.2%})" if verdict.stated_share is not None else ""
        )
        console.print(
            f"[green]ok[/green]   recycled content {content.share_bps / 100:.2f}% follows from the events: "
            f"{content.recovered_lots} recovered lots over {content.generations} generations, grams in and out per "
            f"material{stated}"
        )
    for problem in verdict.problems + differences:
        console.print(f"[red]FAIL[/red] {problem}")
    if not verdict.ok or differences:
        failed = [p for e in verdict.events for p in e.problems] + verdict.problems + differences
        failed += [p for v in verdict.versions for p in v.problems]
        err_console.print(f"[red]error:[/red] verification failed: {failed[0] if failed else 'no events'}")
        raise typer.Exit(1)
    console.print(
        f"[green]verified[/green]: {len(verdict.events)} events and {len(verdict.versions)} passport versions of "
        f"{verdict.item}"
    )


def _recover(rpc: str | None, db: str | None, data_dir: Path | None, *, keep: bool) -> None:
    from ledger.health import require_our_chain
    from ledger.service import LedgerService

    from .db import upgrade
    from .recovery import recover_database

    settings = load_settings(rpc, db, data_dir)
    private_dir(settings.data_dir)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    try:
        status = require_our_chain(service)
        if not status.ok:
            raise LedgerError(status.detail)
        done = recover_database(service, keep=keep)
    finally:
        service.close()
    events, api = done.events, done.api
    for problem in events.problems + api.problems:
        err_console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
    what = "caught up" if keep else "rebuilt"
    console.print(
        f"{what} from {done.logs} logs of chain {service.chain_id}: {events.events} events recovered from "
        f"{events.batches} batches (and {events.versions} passport versions), {api.lots} lots, {api.items} items, "
        f"{api.products} products, {api.actors} actors, {api.credential_indexes} status-list indexes of credentials "
        f"({api.credential_revocations} revoked)" + (f", {api.updated} rows brought up to date" if keep else "")
    )
    if events.lost_events:
        err_console.print(
            f"[red]error:[/red] {events.lost_events} anchored records (events, passport versions) could not be "
            "recovered"
        )
        raise typer.Exit(1)


@clean_errors
def rebuild(rpc: RpcOption = None, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Rebuild an empty database from the chain and the batch archive: lots, items and states from contract logs,
    events from the archived batches (each checked against its anchored root and its signature), then the API's
    tables, all in one transaction. A database holding any row is refused, and nothing is written. Exit 1 if any
    anchored event or passport version could not be recovered."""
    _recover(rpc, db, data_dir, keep=False)


@clean_errors
def sync(rpc: RpcOption = None, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Catch a database up with the chain and the batch archive (after `circular restore` of an older snapshot):
    the chain's logs from the last block it saw, the batches anchored since, items' states and lots' allocations as
    the chain has them now; what it holds stays. One transaction. Exit 1 if any anchored event or passport version
    could not be recovered."""
    _recover(rpc, db, data_dir, keep=True)


@clean_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Run the anchoring worker in the same process.")] = True,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Start the API (resolver, passports, writes, EPCIS) with uvicorn, after running the migrations.

    On the embedded chain the server owns the chain file and also serves it as JSON-RPC on /rpc to local commands
    holding the secret it records in <data-dir>/server.json (mode 0600), so `circular actors add` in another
    terminal acts on the same chain.
    """
    import uvicorn

    from ledger.chain import rpc_fault
    from ledger.db import printable_url
    from ledger.errors import ConfigurationError, DeploymentNotFound
    from ledger.health import check_chain, keystore_problem, node_name
    from ledger.service import LedgerService, server_file, write_server_file

    from .db import upgrade
    from .main import create_app

    settings = load_settings(rpc, db, data_dir)
    private_dir(settings.data_dir)
    problem = keystore_problem(settings)
    if problem:
        raise ConfigurationError(problem)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    info = server_file(settings)
    try:
        try:
            _ = service.ledger
        except DeploymentNotFound as exc:
            if settings.rpc_url:
                raise DeploymentNotFound(f"{exc}; or set CIRCULAR_RPC_URL to the node it was deployed on") from None
            ledger = service.deploy(service.account("admin"))
            ledger.grant_role(service.account("admin"), "anchorer", service.account("anchorer").address)
            console.print(f"deployed the contracts on the embedded chain {service.chain_id}")
        except Exception as exc:
            if rpc_fault(exc) is None:
                raise
            raise LedgerError(f"{node_name(service)} does not answer: start it, or set CIRCULAR_RPC_URL") from None
        if worker and settings.run_worker_in_api:
            try:
                service.account("anchorer")
            except LedgerError as exc:
                raise ConfigurationError(
                    f"the anchoring worker has no key: {exc} (or serve with --no-worker and run `circular worker`)"
                ) from None
        status = check_chain(service)
        if not status.ok:  # reads still answer (verification unavailable); writes are refused with this reason
            err_console.print(f"[yellow]warning:[/yellow] {status.detail}", highlight=False)
        if not _loopback(host) and settings.resolver_base_url == DEFAULT_RESOLVER:
            err_console.print(
                f"[yellow]warning:[/yellow] serving on {host} with the example resolver address {DEFAULT_RESOLVER}: "
                "set CIRCULAR_RESOLVER_BASE_URL to your public address (it goes into every QR code and signed event)",
                highlight=False,
            )
        rpc_secret = None
        if not settings.rpc_url:
            local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            rpc_secret = write_server_file(settings, f"http://{local}:{port}/rpc", os.getpid())
        app = create_app(settings, service, run_worker=worker, rpc_secret=rpc_secret)
        database = printable_url(settings.database_url)
        console.print(f"serving on http://{host}:{port} (chain {service.chain_id}, database {database})")
        # uvicorn re-raises SIGTERM once it has shut down; exiting through Python lets the cleanup below run.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        # The app reads forwarded headers from its configured proxies only (api/edge.py); uvicorn's own default would
        # believe any client on loopback, a pass-through relay's included.
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)
    finally:
        if info.exists() and json.loads(info.read_text()).get("pid") == os.getpid():
            info.unlink()
        service.close()


@clean_errors
def passport(
    ctx: typer.Context,
    digital_link: Annotated[str, typer.Argument(help="The item's GS1 Digital Link (any host, compressed or not).")],
    fmt: Annotated[
        str, typer.Option("--format", help="html, jsonld, untp (the signed credential) or catenax.")
    ] = "jsonld",
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A version's number; default: the newest.")
    ] = None,
    tier: Annotated[
        str, typer.Option("--as", help="Whose view: public, legitimate-interest or authority (docs/passport-data.md).")
    ] = "public",
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print an item's passport in one format, from its stored version, as a tier sees it: byte for byte what the
    resolver serves at the same version to a reader of that tier (the page, passport.jsonld, credential, catenax)."""
    from urllib.parse import urlsplit

    from .access import parse_tier
    from .formats import FORMATS, render
    from .gs1.digital_link import MalformedLink, NotADigitalLink, UnsupportedKey, parse_path
    from .state import AppState

    if fmt not in FORMATS:
        raise ValueError(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    reader = parse_tier(tier)
    try:
        link = parse_path(urlsplit(digital_link).path or digital_link)
    except (MalformedLink, NotADigitalLink, UnsupportedKey) as exc:
        raise ValueError(f"not an item's GS1 Digital Link: {digital_link!r} ({exc})") from None
    if link.serial is None:
        raise ValueError(f"not an item's Digital Link (no serial, AI 21): {digital_link!r}")
    service = open_service(ctx, rpc, db, data_dir)
    try:
        state = AppState.create(service.settings, load_api_settings(), service)
        with service.sessions() as session:
            made = render(state, session, fmt, link.gtin14, link.serial, version, reader)
    finally:
        service.close()
    if made is None:
        what = f"version {version} of the passport" if version is not None else "a passport version"
        raise LookupError(f"there is no {what} of {digital_link}")
    sys.stdout.buffer.write(made.body)
    sys.stdout.flush()


def load_api_settings() -> ApiSettings:
    """The API's settings as ``circular serve`` reads them (the environment): the page shows their collection points."""
    return ApiSettings()


DEFAULT_RESOLVER = "https://id.circular.example"


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


actors_app = typer.Typer(help="Administer actors: brands, recyclers, retailers, repairers.", no_args_is_help=True)


@actors_app.command("add")
@clean_errors
def actors_add(
    role: Annotated[
        str, typer.Option(help="brand, recycler, retailer, repairer, admin, or authority (reads every passport field).")
    ],
    name: Annotated[str, typer.Option(help="The actor's unique name.")],
    prefix: Annotated[list[str] | None, typer.Option(help="A GS1 company prefix (brands; repeatable).")] = None,
    key_name: Annotated[
        str | None,
        typer.Option(help="Use the existing key of this name (CIRCULAR_KEY_<NAME> or keys/<name>.json); default: a "
                     "new key in a new keystore."),
    ] = None,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an actor: its account, its on-chain role (and a brand's prefixes) and an API key, printed last."""
    from ledger.service import LedgerService

    from .actors import add_actor
    from .db import upgrade

    settings = load_settings(rpc, db, data_dir)
    private_dir(settings.data_dir)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    try:
        with service.sessions() as session:
            actor, api_key = add_actor(service, session, role, name, prefixes=prefix or [], key_name=key_name)
        console.print(f"{actor.role} {actor.name}: account {actor.address}")
        sys.stdout.write(api_key + "\n")
    finally:
        service.close()


@contextmanager
def _database(db: str | None, data_dir: Path | None) -> Iterator[tuple[Any, Session]]:
    """The settings and a session on their database, migrated first (an admin command on a data dir of its own)."""
    from sqlalchemy.orm import Session

    from ledger.db import make_engine

    from .db import upgrade

    settings = load_settings(None, db, data_dir)
    private_dir(settings.data_dir)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            yield settings, session
    finally:
        engine.dispose()


def _named_actor(session: Session, name: str) -> Actor:
    from .routes.console import actor_named

    actor = actor_named(session, name)
    if actor is None:
        raise LookupError(f"no actor named {name!r}")
    return actor


@actors_app.command("rotate-key")
@clean_errors
def actors_rotate_key(
    name: Annotated[str, typer.Argument(help="The actor's name.")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Issue a new API key for an actor and revoke its old one (after a rebuild nobody holds a key: only their
    hashes were stored). The new key is printed last, once."""
    from .actors import rotate_key

    with _database(db, data_dir) as (_, session):
        actor = _named_actor(session, name)
        who = f"{actor.role} {actor.name} (id {actor.id})"
        api_key = rotate_key(session, actor)
    console.print(f"a new API key for {who}; the old one no longer works:")
    sys.stdout.write(api_key + "\n")


@actors_app.command("link")
@clean_errors
def actors_link(
    name: Annotated[str, typer.Option(help="The actor's name.")],
    minutes: Annotated[
        float | None, typer.Option(help="How long the link works (default: CIRCULAR_API_CONSOLE_LINK_MINUTES, 15).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="The console's address (default: CIRCULAR_API_CONSOLE_URL, else the resolver's base URL)."),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print a one-time link that signs an actor in to the console (/console): it works once, for a few minutes.

    Hand it to the actor in person or through a channel you trust: whoever opens it first is signed in."""
    from .config import ApiSettings
    from .routes.console import issue_sign_in_link

    api_settings = ApiSettings()
    if url:
        api_settings = api_settings.model_copy(update={"console_url": url})
    with _database(db, data_dir) as (settings, session):
        actor = _named_actor(session, name)
        who = f"{actor.role} {actor.name}"
        link = issue_sign_in_link(session, actor, api_settings, settings.resolver_base_url, minutes)
    console.print(f"a one-time sign-in link for {who}, valid once:")
    sys.stdout.write(link + "\n")


credentials_app = typer.Typer(
    help="Brands' UNTP passport credentials: revoke an item's, rotate a brand's signing key.", no_args_is_help=True
)


@credentials_app.command("revoke")
@clean_errors
def credentials_revoke(
    link: Annotated[str, typer.Argument(help="The item's Digital Link.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept with the revocation).")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke an item's passport credentials, on behalf of its brand: its bit in the brand's status list reads 1
    from then on (every version's credential carries that bit). The revocation is published to the archive, signed
    by the brand's account, before it is committed: `circular rebuild` and `circular sync` bring it back."""
    from urllib.parse import urlsplit

    from sqlalchemy import select

    from ledger.archive import Archive
    from ledger.ids import at_resolver

    from .credentials import archive_publisher, revoke, status_list_url
    from .gs1.digital_link import parse_path
    from .models import Actor, Item
    from .uris import item_uri

    with _database(db, data_dir) as (settings, session):
        subject = at_resolver(settings.resolver_base_url, link)
        named = parse_path(urlsplit(subject).path)
        item = session.scalar(select(Item).where(Item.gtin == named.gtin14, Item.serial == (named.serial or "")))
        if item is None or item_uri(settings.resolver_base_url, item.gtin, item.serial) != subject:
            raise LookupError(f"no registered item {subject}")
        brand = session.get(Actor, item.brand_id)
        assert brand is not None
        archive = Archive(settings.archive_path, settings.archive_base_uri) if settings.archive_enabled else None
        publish = archive_publisher(archive, lambda: settings.actor_key(brand.key_name), settings.resolver_base_url)
        done = revoke(session, brand, subject, brand.id, reason, publish)
        session.commit()
        url = status_list_url(settings.resolver_base_url, brand.id)
    what = "was already revoked" if done.already else "revoked"
    console.print(f"{subject}: passport credentials {what} (bit {done.index} of {url})", highlight=False)


@credentials_app.command("rotate-key")
@clean_errors
def credentials_rotate_key(
    brand: Annotated[str, typer.Option(help="The brand's actor name.")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Retire a brand's credential signing key and make a new one. The old key stays in the brand's DID document, so
    the credentials it signed still verify; new credentials are signed with the new key."""
    from .credentials import brand_did, rotate_key

    with _database(db, data_dir) as (settings, session):
        actor = _named_actor(session, brand)
        kid = rotate_key(settings, session, actor).kid
        session.commit()
        did = brand_did(settings.resolver_base_url, actor.id)
    console.print(f"{brand}: new credential key {did}#{kid}", highlight=False)


def audit(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of a table.")] = False,
    max_travel_kmh: Annotated[
        float, typer.Option(help="Scans of one serial in two countries faster than this are a clone.")
    ] = 900.0,
    burst_scans: Annotated[int, typer.Option(help="A burst: at least this many scans of one serial...")] = 10,
    burst_clients: Annotated[int, typer.Option(help="...from at least this many clients...")] = 5,
    burst_minutes: Annotated[float, typer.Option(help="...within this many minutes.")] = 10.0,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Report anomalies: likely clones (impossible travel, scans after recycling, returns never sold, bursts),
    unknown serials and EPCs, recovered mass above the collected mass, events signed outside the signer's role,
    anchored events missing from the database, batches confirmed in the database whose root the chain lost.
    Exit 0 when clean, 1 when anomalies are found (to gate a cron job), 2 on an error."""
    from datetime import timedelta

    from sqlalchemy.exc import SQLAlchemyError

    try:
        from ledger.audit import RoleHistory, anchored_roots, role_changes

        from .audit import RULES, Thresholds, run_audit

        limits = Thresholds(max_travel_kmh, burst_scans, burst_clients, timedelta(minutes=burst_minutes))
        service = open_service(ctx, rpc, db, data_dir)
        try:
            roles = RoleHistory(role_changes(service.ledger))
            anchored = anchored_roots(service.ledger)
            with service.sessions() as session:
                report = run_audit(session, roles, limits, anchored, service.archive)
        finally:
            service.close()
    except (LedgerError, ValueError, LookupError, OSError, SQLAlchemyError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        from rich.table import Table

        table = Table(title=f"circular audit: {len(report.anomalies)} anomalies", title_justify="left")
        for column in ("#", "rule", "subject", "actor", "detail"):
            table.add_column(column, overflow="fold")
        for anomaly in report.anomalies:
            table.add_row(
                str(RULES[anomaly.rule][0]), anomaly.rule, anomaly.subject, anomaly.actor or "", anomaly.detail
            )
        checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
        if report.anomalies:
            console.print(table)
        verdict = "[green]clean[/green]" if report.clean else "[red]anomalies found[/red]"
        console.print(f"{verdict}: checked {checked}")
    raise typer.Exit(0 if report.clean else 1)


__all__ = ["actors_add", "actors_app", "audit", "credentials_app", "rebuild", "serve", "verify"]
