"""The write API's business rules, one function per write: who may do it, what is checked before the transaction,
the transaction and its events, and the public answer.

Routes (``api/routes``) and the console (``api/routes/console``) both call these, so that one piece of code decides
what each actor may do. Each function checks the actor's role itself (:func:`api.writes.authorize`), raises
:class:`api.problems.Problem` for refused input and lets a contract revert (:class:`ledger.errors.ContractRevert`)
through, which the app turns into problem details.
"""

from . import corrections, items, lots, partners, products, recycling, returns

__all__ = ["corrections", "items", "lots", "partners", "products", "recycling", "returns"]
