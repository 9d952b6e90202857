"""circular-ledger's application: the one place that sees every layer, and so the one that joins them.

``materials/`` (the domain) → ``ledger/`` (the only door to the chain) → ``api/`` (the web) each contribute what
belongs to them; this package composes them into the ``circular`` command (:mod:`circular.cli`) and runs the whole
loop through the API as its users would (:mod:`circular.demo`). Importing it builds nothing.
"""

__all__: list[str] = []
