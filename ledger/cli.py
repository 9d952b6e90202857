"""The `circular` command line. Every command prints one clear line and exits non-zero on an error."""

from __future__ import annotations

import functools
import json
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
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
ROOT = Path(__file__).resolve().parents[1]


def clean_errors(func: F) -> F:
    """Turn the project's errors (and bad input) into one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LedgerError, ValueError, OSError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@clean_errors
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its chain, QR codes and summary.")] = Path(
        "demo-out"
    ),
) -> None:
    """Deploy the contracts on a fresh embedded chain and walk material lots → items → recycled lot → new item."""
    from .demo import run_demo

    summary = run_demo(out, console)
    console.print(f"[green]demo complete[/green]: summary in {out / 'summary.json'} ({len(summary['items'])} items)")


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
