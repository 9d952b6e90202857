"""The layers of docs/architecture.md: the import-linter contracts hold, and importing a package builds nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_importing_the_packages_reads_no_settings_and_builds_no_app() -> None:
    """Settings that would fail to load, and no app object after importing every entry point."""
    script = (
        "import gc, fastapi\n"
        "import materials, ledger, api, api.main, api.cli, circular, circular.cli, circular.demo\n"
        "apps = [o for o in gc.get_objects() if isinstance(o, fastapi.FastAPI)]\n"
        "print(len(apps))\n"
    )
    env = {**os.environ, "CIRCULAR_BATCH_SIZE": "not a number", "CIRCULAR_API_NEAREST_POINTS": "not a number"}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_basis_points_are_converted_by_materials_only() -> None:
    """A share in basis points becomes a fraction or a percentage through ``materials`` (``bps_to_fraction``,
    ``share_bps``, ``FULL_SHARE_BPS``), never by a literal 10,000 elsewhere."""
    arithmetic = re.compile(r"[*/]\s*10_?000\b|\b10_?000\s*(?:[*/]|//)")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in ("circular", "ledger", "api")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if arithmetic.search(line)
    ]
    assert found == []
