"""`python -m scripts.bench --readme`: the README's performance table is written from bench-results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.bench import README_END, README_START, TIMES, main, readme_table

RESULTS = {
    "gas_per_event_batch_1000": 49.06,
    "baseline_storage_gas_per_event": 45857.2,
    "gas_per_event_ratio_vs_storage": 934.7,
    "anchor_events_per_s": 19_425,
    "naive_anchor_events_per_s": 75.1,
    "anchor_speedup_vs_naive": 258.7,
    "trace_p99_ms": 6.7,
    "_meta": {"date": "2026-12-06T20:59:37+00:00", "cpus": 2, "python": "3.11.7", "machine": "Linux", "seconds": 160},
}


def test_every_figure_with_its_baseline_ratio_and_verdict() -> None:
    table = readme_table(RESULTS)
    assert table.startswith("Latest run: 2026-12-06, 2 cores, Python 3.11.7")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    expected = "| 49.06 | 45,857 (a storage record per event) | 935{x} | ≤ 50: met; ≥ 1,000{x}: **not met** |"
    assert expected.format(x=TIMES) in rows["gas per anchored event, batch 1,000"]
    assert "| 19,425 | 90.9" not in table and "≥ 20,000: **not met**" in rows[
        "anchoring into Anvil (1 s blocks), events/s"]
    assert "≤ 25: met" in rows["provenance trace, third generation, p99 ms"]
    assert "capture" not in table  # a figure the run did not produce is left out, never shown as zero


def test_the_readme_is_rewritten_between_its_markers_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import scripts.bench as bench

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{README_START}\nold table\n{README_END}\nafter\n")
    results = tmp_path / "bench-results.json"
    results.write_text(json.dumps(RESULTS))
    monkeypatch.setattr(bench, "README", readme)
    assert main(["--readme", str(results)]) == 0
    assert "rewritten" in capsys.readouterr().out
    text = readme.read_text()
    assert text.startswith("# title\n\nbefore\n") and text.endswith(f"{README_END}\nafter\n")
    assert "old table" not in text and "| 49.06 |" in text
