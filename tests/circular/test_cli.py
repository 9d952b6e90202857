"""The `circular` CLI: `hash` prints the standard event hash ids; errors are one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from circular.cli import app
from tests.conftest import standards_dir

runner = CliRunner()
VECTORS = sorted((standards_dir() / "epcis-event-hash" / "examples").glob("*.jsonld"))


@pytest.mark.parametrize("document", VECTORS[:6], ids=[v.stem for v in VECTORS[:6]])
def test_hash_prints_one_id_per_event_in_document_order(document: Path) -> None:
    result = runner.invoke(app, ["hash", str(document)])
    assert result.exit_code == 0, result.output
    expected = [line.strip() for line in document.with_suffix(".hashes").read_text().splitlines() if line.strip()]
    assert result.stdout.splitlines() == expected


@pytest.mark.parametrize(
    ("content", "says"),
    [("{not json", "is not JSON"), ('{"type": "EPCISDocument"}', "")],
)
def test_bad_documents_fail_with_one_line(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "bad.jsonld"
    path.write_text(content)
    result = runner.invoke(app, ["hash", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert says in lines[0]


def test_missing_file_fails_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hash", str(tmp_path / "absent.jsonld")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error:")


def test_every_command_has_help() -> None:
    for command in ("demo", "deploy", "worker", "export", "verify", "rebuild", "backup", "restore", "node", "hash"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_a_command_on_a_new_data_directory_migrates_its_database(tmp_path: Path) -> None:
    """The ledger creates no tables: `circular deploy` on a new data directory runs the migrations first."""
    from sqlalchemy import create_engine, text

    data = tmp_path / "data"
    result = runner.invoke(app, ["deploy", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    engine = create_engine(f"sqlite:///{data / 'circular.sqlite'}")
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    from alembic.script import ScriptDirectory

    from api.db import alembic_config

    assert version == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
