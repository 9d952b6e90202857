"""The ledger's commands of the `circular` command line (the chain, the anchoring worker, evidence, backups), and
what every layer's commands share: the clean one-line errors and the --rpc/--db/--data-dir options.

Nothing here builds a command line: ``circular/cli.py`` joins these commands with the API's into one typer app.
Every command prints one clear line and exits non-zero on an error."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from .errors import LedgerError
from .files import private_dir

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


@clean_errors
def node(
    port: Annotated[int, typer.Option(help="Port of the local Anvil node.")] = 8545,
    block_time: Annotated[float | None, typer.Option(help="Interval mining, seconds; default: automine.")] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="Anvil's state file: loaded at start, saved every 10 s and on stop. Default: "
                     "<data-dir>/anvil-state.json."),
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Start an empty chain and keep no state.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Start a local Anvil node (from npm) in the foreground, its chain kept across restarts (Anvil's --state under
    the data directory). Anvil runs in a process group of its own that stops with this command: on SIGTERM or
    Ctrl-C it is asked to save its state and stop, and it is stopped if this process dies."""
    anvil = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if not anvil.exists():
        raise LedgerError(f"Anvil not installed at {anvil}: run `make setup` (npm ci)")
    args = [str(anvil), "--host", "127.0.0.1", "--port", str(port)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    if not fresh:
        state_file = state or load_settings(data_dir=data_dir).data_dir / "anvil-state.json"
        private_dir(state_file.parent)
        kept = state_file.exists()
        args += ["--state", str(state_file), "--state-interval", str(STATE_INTERVAL_S)]
        console.print(
            f"Anvil's chain {'continues from' if kept else 'is new; it is kept in'} {state_file} (saved every "
            f"{STATE_INTERVAL_S} s and on stop; --fresh for an empty chain)",
            highlight=False,
        )
    raise typer.Exit(run_in_group(args))


STATE_INTERVAL_S = 10


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """The child's own process group, and SIGTERM when the parent dies (Linux), even by SIGKILL."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_in_group(args: list[str], grace_s: float = 10.0) -> int:
    """Run `args` in a process group of its own, in the foreground: SIGTERM, SIGINT or SIGHUP here stop the whole
    group (SIGINT first, which Anvil takes as the signal to save its state; SIGKILL after `grace_s`). Returns the
    child's exit code (0 when it was stopped on request)."""
    process = subprocess.Popen(args, preexec_fn=_die_with_parent)
    stopping: list[int] = []

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop(signum: int, _frame: object) -> None:
        if not stopping:
            timer = threading.Timer(grace_s, kill)
            timer.daemon = True
            timer.start()
        stopping.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(ProcessLookupError):  # nothing of the group outlives the command
            os.killpg(process.pid, signal.SIGKILL)
    return 0 if stopping else code


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


@dataclass(frozen=True)
class CommandContext:
    """What the application gives every command, as the command line's context object (``circular/cli.py``)."""

    # Brings the database at a URL to the schema. The ledger creates no tables: its tables and the API's come from
    # one history of migrations, which the application runs before the ledger opens a database.
    migrate: Callable[[str], None]


def migrate(ctx: typer.Context, settings: Any) -> None:
    """Run the application's migrations on `settings`' database (nothing when the command runs outside the
    application; the ledger then refuses a database without its tables)."""
    application = ctx.find_object(CommandContext)
    if application is not None:
        private_dir(settings.data_dir)
        application.migrate(settings.database_url)


def open_service(ctx: typer.Context, rpc: str | None, db: str | None, data_dir: Path | None) -> Any:
    from .service import LedgerService

    settings = load_settings(rpc, db, data_dir)
    migrate(ctx, settings)
    return LedgerService(settings)


@clean_errors
def deploy(ctx: typer.Context, rpc: RpcOption = None, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Deploy the contracts and record their addresses for this chain id."""
    service = open_service(ctx, rpc, db, data_dir)
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


@clean_errors
def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Anchor everything pending, then stop.")] = False,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the anchoring worker: pending events → Merkle batches → anchored roots → stored proofs.

    It stays up through node outages (bounded exponential backoff, one log line per retry) and stops cleanly on
    SIGTERM or Ctrl-C; with --once it fails fast instead. A node that answers but is not the chain this database was
    built on (``ledger.health``) is refused in one line at start-up, and after a reconnect nothing is anchored to it."""
    import logging

    from .anchoring import Backoff, RetryLog
    from .chain import rpc_fault

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = open_service(ctx, rpc, db, data_dir)
    try:
        from .health import ChainMonitor

        monitor = ChainMonitor(service)
        if monitor.refresh().foreign:  # a node that is not our chain is never written to: one line, exit 1
            monitor.require_writable()
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
                anchoring.run_forever(
                    stop,
                    max_backoff_s=service.settings.worker_max_backoff_s,
                    guard=monitor.require_ours,
                    on_fault=monitor.fault,
                )
        except KeyboardInterrupt:
            stop.set()
    finally:
        service.close()


@clean_errors
def export(
    ctx: typer.Context,
    digital_link: Annotated[str, typer.Argument(help="The item's GS1 Digital Link URI.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Bundle file; default: stdout.")] = None,
    rpc: RpcOption = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write the evidence bundle of an item: the events its passport rests on (through every generation of its
    recycled material), with their signatures, anchors and Merkle proofs, and its passport's versions. The link may
    name any host of the resolver (the one a browser showed): the item is the one it names."""
    from .evidence import bundle_text, export_bundle
    from .ids import at_resolver

    service = open_service(ctx, rpc, db, data_dir)
    try:
        bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, digital_link)
        if not bundle["events"]:  # a link from another host of the resolver: events name the configured one
            digital_link = at_resolver(service.settings.resolver_base_url, digital_link)
            bundle = export_bundle(service.outbox, service.chain_id, service.ledger.anchor.address, digital_link)
    finally:
        service.close()
    if not bundle["events"]:
        raise LookupError(f"no events for {digital_link}")
    text = bundle_text(bundle)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        console.print(f"wrote {len(bundle['events'])} events to {output}")


@clean_errors
def backup(
    target: Annotated[Path, typer.Argument(help="The snapshot file to write.")],
    recipient: Annotated[
        list[str] | None,
        typer.Option(help="Encrypt the snapshot to this age public key (age1...; repeatable)."),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write a consistent snapshot of the database (SQLite online backup, or pg_dump for PostgreSQL), readable by its
    owner only; with --recipient, encrypted with age (`age -d -i key.txt` decrypts it too)."""
    from .backup import backup_database

    backup_database(load_settings(None, db, data_dir).database_url, target, recipient or ())
    console.print(f"backup written to {target}" + (" (encrypted)" if recipient else ""))


@clean_errors
def restore(
    source: Annotated[Path, typer.Argument(help="A snapshot written by `circular backup`.")],
    identity: Annotated[
        Path | None, typer.Option(help="The age identity file (AGE-SECRET-KEY-1...) of an encrypted snapshot.")
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Bring back a snapshot written by `circular backup` (the database must not be in use)."""
    from .backup import restore_database

    restore_database(load_settings(None, db, data_dir).database_url, source, identity)
    console.print(f"restored {source}")


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


__all__ = [
    "CommandContext",
    "DataDirOption",
    "DbOption",
    "RpcOption",
    "backup",
    "clean_errors",
    "console",
    "deploy",
    "err_console",
    "export",
    "hash_command",
    "load_settings",
    "migrate",
    "node",
    "open_service",
    "restore",
    "run_in_group",
    "worker",
]
