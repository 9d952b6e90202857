"""The chain monitor's verdicts: a node found not ours stays refused until a check finds our chain."""

from __future__ import annotations

import pytest

from ledger import health
from ledger.errors import WrongChain
from ledger.health import OK, UNREACHABLE, WRONG_CHAIN, ChainMonitor, ChainStatus


def test_an_undecided_check_does_not_clear_a_foreign_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [
        ChainStatus(WRONG_CHAIN, "the node is not the chain this database was built on"),
        ChainStatus(UNREACHABLE, "the node does not answer"),  # a slow node timing out under load
        ChainStatus(UNREACHABLE, "the node does not answer"),
        ChainStatus(OK, ""),  # a check that finds our chain
    ]
    monkeypatch.setattr(health, "check_chain", lambda service, timeout_s: answers.pop(0))
    monitor = ChainMonitor(service=None, interval_s=0.0)

    with pytest.raises(WrongChain):
        monitor.require_ours()
    for _ in range(2):  # the anchoring worker asks before each pass: an undecided answer must not let it send
        with pytest.raises(WrongChain, match="not the chain this database was built on"):
            monitor.require_ours()
    assert monitor.require_ours().ok and not answers
