"""The `circular` command line: the ledger's commands and the API's joined into one typer app, plus the demo.

Each layer contributes the commands that belong to it (``ledger/cli.py``: the chain, the worker, evidence, backups;
``api/cli.py``: the server, actors, and the commands that read the API's tables); they are registered here, in the
order ``circular --help`` lists them. Every command prints one clear line and exits non-zero on an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api import cli as api_cli
from ledger import cli as ledger_cli
from ledger.cli import DbOption, RpcOption, clean_errors, console


def _migrate(url: str) -> None:
    from api.db import upgrade  # on first use: `circular hash` or `--help` need no database

    upgrade(url)


app = typer.Typer(
    help="circular-ledger: product passports and material loops on an EVM chain.",
    no_args_is_help=True,
    # Every command migrates a database before the ledger opens it: the migrations are the one source of tables.
    context_settings={"obj": ledger_cli.CommandContext(migrate=_migrate)},
)


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


app.command()(ledger_cli.node)
app.command()(ledger_cli.deploy)
app.command()(ledger_cli.worker)
app.command()(ledger_cli.export)
app.command()(api_cli.verify)
app.command()(api_cli.passport)
app.command()(api_cli.rebuild)
app.command()(api_cli.sync)
app.command()(ledger_cli.backup)
app.command()(ledger_cli.restore)
app.command()(api_cli.serve)
app.add_typer(api_cli.actors_app, name="actors")
app.add_typer(api_cli.credentials_app, name="credentials")
app.command()(api_cli.audit)
app.command("hash")(ledger_cli.hash_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


__all__ = ["app", "demo", "main"]
