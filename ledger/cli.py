"""The `circular` command line. Every command prints one clear line and exits non-zero on an error."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from .errors import LedgerError

app = typer.Typer(help="circular-ledger: product passports and material loops on an EVM chain.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one line, whatever the terminal width
F = TypeVar("F", bound=Callable[..., Any])
ROOT = Path(__file__).resolve().parents[1]


def clean_errors(func: F) -> F:
    """Turn the project's errors (and bad input) into one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LedgerError, ValueError, LookupError, OSError, subprocess.CalledProcessError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


RpcOption = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of a node; default: the embedded chain.")]
DbOption = Annotated[str | None, typer.Option("--db", help="SQLAlchemy database URL; default: SQLite in the data dir.")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Where state lives (default .circular).")]


@app.command()
@clean_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its state, QR codes and summary.")] = Path(
        "demo-out"
    ),
    rpc: RpcOption = None,
    db: DbOption = None,
) -> None:
    """Run the whole circular loop: lots, a run of 1,000 items, QR passports, a scan, recycling, a second generation,
    anchoring and verification. Default: the embedded chain and SQLite under --out."""
    from .demo import run_demo

    summary = run_demo(out, console, rpc_url=rpc, db_url=db)
    console.print(f"[green]demo complete[/green] in {summary['seconds']} s: summary in {out / 'summary.json'}")


@app.command()
@clean_errors
def node(
    port: Annotated[int, typer.Option(help="Port of the local Anvil node.")] = 8545,
    block_time: Annotated[float | None, typer.Option(help="Interval mining, seconds; default: automine.")] = None,
) -> None:
    """Start a local Anvil node (from npm) in the foreground."""
    anvil = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not anvil.exists():
        raise LedgerError(f"Anvil not installed at {anvil}: run `make setup` (npm ci)")
    args = [str(anvil), "--host", "127.0.0.1", "--port", str(port)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    raise typer.Exit(subprocess.call(args))


def load_settings(rpc: str | None = None, db: str | None = None, data_dir: Path | None = None) -> Any:
    from .settings import Settings

    overrides: dict[str, Any] = {}
    if rpc:
        overrides["rpc_url"] = rpc
    if db:
        overrides["db_url"] = db
    if data_dir:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)


def open_service(rpc: str | None, db: str | None, data_dir: Path | None) -> Any:
    from .service import LedgerService

    return LedgerService(load_settings(rpc, db, data_dir))


@app.command()
@clean_errors
def deploy(rpc: RpcOption = None, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Deploy the contracts and record their addresses for this chain id."""
    service = open_service(rpc, db, data_dir)
    try:
        admin = service.account("admin")
        anchorer = service.account("anchorer")
        ledger = service.deploy(admin)
        ledger.grant_role(admin, "anchorer", anchorer.address)
        for name, address in ledger.deployment.addresses.items():
            console.print(f"{name:24} {address}")
        console.print(f"deployed on chain {ledger.deployment.chain_id}; anchorer {anchorer.address}")
    finally:
        service.close()


@app.command()
@clean_errors
def worker(
    once: Annotated[bool, typer.Option(help="Anchor everything pending, then stop.")] = False,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the anchoring worker: pending events → Merkle batches → anchored roots → stored proofs.

    It stays up through node outages (bounded exponential backoff, one log line per retry) and stops cleanly on
    SIGTERM or Ctrl-C; with --once it fails fast instead."""
    import logging
    import threading

    from .anchoring import Backoff, RetryLog
    from .chain import rpc_fault

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = open_service(rpc, db, data_dir)
    try:
        if once:
            results = service.worker(service.account("anchorer")).drain()
            console.print(f"anchored {sum(r.events for r in results)} events in {len(results)} batches")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        log = logging.getLogger("circular.worker")
        backoff = Backoff(0.5, service.settings.worker_max_backoff_s)
        retries = RetryLog(log)
        anchoring = None
        while anchoring is None and not stop.is_set():  # a node that is down at start is waited for, not a crash
            try:
                anchoring = service.worker(service.account("anchorer"))
            except Exception as exc:
                if rpc_fault(exc) is None:
                    raise
                delay = backoff.next()
                retries.failed(exc, delay, "worker start failed")
                stop.wait(delay)
        try:
            if anchoring is not None:
                anchoring.run_forever(stop, max_backoff_s=service.settings.worker_max_backoff_s)
        except KeyboardInterrupt:
            stop.set()
    finally:
        service.close()


@app.command()
@clean_errors
def export(
    digital_link: Annotated[str, typer.Argument(help="The item's GS1 Digital Link URI.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Bundle file; default: stdout.")] = None,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the evidence bundle of an item: its events, signatures, anchors and Merkle proofs."""
    from .evidence import export_bundle

    service = open_service(rpc, db, data_dir)
    try:
        bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, digital_link)
    finally:
        service.close()
    if not bundle["events"]:
        raise LookupError(f"no events for {digital_link}")
    text = json.dumps(bundle, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        console.print(f"wrote {len(bundle['events'])} events to {output}")


@app.command()
@clean_errors
def verify(
    target: Annotated[str, typer.Argument(help="An evidence bundle file, or an item's Digital Link URI.")],
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check every event of a bundle: its hash, signature, Merkle proof and root on-chain. For an item's Digital Link,
    also check that the database's composition of the item (lots, grams, their material and recycled share) is the
    chain's. Exit 1 if anything fails."""
    from .evidence import export_bundle, verify_bundle

    service = open_service(rpc, db, data_dir)
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
            from api.integrity import claim_for_link

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
    for problem in verdict.problems + differences:
        console.print(f"[red]FAIL[/red] {problem}")
    if not verdict.ok or differences:
        failed = [p for e in verdict.events for p in e.problems] + verdict.problems + differences
        err_console.print(f"[red]error:[/red] verification failed: {failed[0] if failed else 'no events'}")
        raise typer.Exit(1)
    console.print(f"[green]verified[/green]: {len(verdict.events)} events of {verdict.item}")


@app.command()
@clean_errors
def rebuild(rpc: RpcOption = None, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Rebuild an empty database from the chain and the batch archive: lots, items and states from contract logs,
    events from the archived batches (each checked against its anchored root and its signature), then the API's
    tables. Exit 1 if any anchored event could not be recovered."""
    from sqlalchemy import func, select

    from api.db import upgrade
    from api.recovery import restore_api_tables

    from .projection import ChainLot, Projector
    from .recovery import EventRecovery, recover_events
    from .service import LedgerService

    settings = load_settings(rpc, db, data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    try:
        with service.sessions() as session:
            if session.scalar(select(func.count()).select_from(ChainLot)):
                raise ValueError("the database already holds lots: rebuild needs an empty database (--db URL)")
            applied = Projector(service.ledger).rebuild(session)
            session.commit()
            events = EventRecovery()
            if service.archive is None:
                events.problems.append("archiving is off (CIRCULAR_ARCHIVE_ENABLED): no event can be recovered")
            else:
                events = recover_events(session, service.archive, service.domain)
                session.commit()

            def gtin_owner(gtin: str) -> str | None:
                try:
                    owner = service.ledger.gtin_owner(gtin)
                except Exception:  # an unassigned prefix reverts on some nodes
                    return None
                return None if int(owner, 16) == 0 else owner

            api = restore_api_tables(session, settings.resolver_base_url, service.archive, gtin_owner)
    finally:
        service.close()
    for problem in events.problems + api.problems:
        err_console.print(f"[yellow]warning:[/yellow] {problem}", highlight=False)
    console.print(
        f"rebuilt from {applied} logs of chain {service.chain_id}: {events.events} events recovered from "
        f"{events.batches} batches, {api.lots} lots, {api.items} items, {api.products} products, {api.actors} actors"
    )
    if events.lost_events:
        err_console.print(f"[red]error:[/red] {events.lost_events} anchored events could not be recovered")
        raise typer.Exit(1)


@app.command()
@clean_errors
def backup(
    target: Annotated[Path, typer.Argument(help="The snapshot file to write.")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write a consistent snapshot of the database (SQLite online backup, or pg_dump for PostgreSQL)."""
    from .backup import backup_database

    backup_database(load_settings(None, db, data_dir).database_url, target)
    console.print(f"backup written to {target}")


@app.command()
@clean_errors
def restore(
    source: Annotated[Path, typer.Argument(help="A snapshot written by `circular backup`.")],
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Bring back a snapshot written by `circular backup` (the database must not be in use)."""
    from .backup import restore_database

    restore_database(load_settings(None, db, data_dir).database_url, source)
    console.print(f"restored {source}")


@app.command()
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

    On the embedded chain the server owns the chain file and also serves it as JSON-RPC on /rpc (local clients
    only), recorded in <data-dir>/server.json, so `circular actors add` in another terminal acts on the same chain.
    """
    import uvicorn

    from api.db import upgrade
    from api.main import create_app

    from .errors import DeploymentNotFound
    from .service import LedgerService, server_file

    settings = load_settings(rpc, db, data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    info = server_file(settings)
    try:
        try:
            _ = service.ledger
        except DeploymentNotFound:
            if settings.rpc_url:
                raise
            ledger = service.deploy(service.account("admin"))
            ledger.grant_role(service.account("admin"), "anchorer", service.account("anchorer").address)
            console.print(f"deployed the contracts on the embedded chain {service.chain_id}")
        if not settings.rpc_url:
            local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            info.write_text(json.dumps({"rpc": f"http://{local}:{port}/rpc", "pid": os.getpid()}))
        app = create_app(settings, service, run_worker=worker)
        console.print(f"serving on http://{host}:{port} (chain {service.chain_id}, database {settings.database_url})")
        # uvicorn re-raises SIGTERM once it has shut down; exiting through Python lets the cleanup below run.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        if info.exists() and json.loads(info.read_text()).get("pid") == os.getpid():
            info.unlink()
        service.close()


actors_app = typer.Typer(help="Administer actors: brands, recyclers, retailers, repairers.", no_args_is_help=True)
app.add_typer(actors_app, name="actors")


@actors_app.command("add")
@clean_errors
def actors_add(
    role: Annotated[str, typer.Option(help="brand, recycler, retailer, repairer or admin.")],
    name: Annotated[str, typer.Option(help="The actor's unique name.")],
    prefix: Annotated[list[str] | None, typer.Option(help="A GS1 company prefix (brands; repeatable).")] = None,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create an actor: its account, its on-chain role (and a brand's prefixes) and an API key, printed last."""
    from api.actors import add_actor
    from api.db import upgrade

    from .service import LedgerService

    settings = load_settings(rpc, db, data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    service = LedgerService(settings)
    try:
        with service.sessions() as session:
            actor, api_key = add_actor(service, session, role, name, prefixes=prefix or [])
        console.print(f"{actor.role} {actor.name}: account {actor.address}")
        sys.stdout.write(api_key + "\n")
    finally:
        service.close()


@app.command()
def audit(
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
    anchored events missing from the database.
    Exit 0 when clean, 1 when anomalies are found (to gate a cron job), 2 on an error."""
    from datetime import timedelta

    from sqlalchemy.exc import SQLAlchemyError

    try:
        from api.audit import RULES, Thresholds, run_audit

        from .audit import RoleHistory, anchored_roots, role_changes

        limits = Thresholds(max_travel_kmh, burst_scans, burst_clients, timedelta(minutes=burst_minutes))
        service = open_service(rpc, db, data_dir)
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


@app.command("hash")
@clean_errors
def hash_command(document: Annotated[Path, typer.Argument(help="An EPCIS 2.0 JSON-LD document.")]) -> None:
    """Print the CBV 2.0 Event Hash ID of each event in an EPCIS document, one per line, in document order."""
    from .epcis.hashing import document_event_hash_ids

    try:
        data = json.loads(document.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{document} is not JSON: {exc}") from None
    for event_id in document_event_hash_ids(data):
        sys.stdout.write(event_id + "\n")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":
    app()
