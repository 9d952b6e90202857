"""schemathesis over the whole OpenAPI schema: no generated request, authenticated or not, gets a server error or an
answer the schema does not declare (status code, content type, headers, body).

schemathesis 4's pytest plugin does not run under pytest 9, so its Hypothesis strategies are driven directly, one
property per API operation, and each response goes through schemathesis's own conformance checks."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = int(os.environ.get("CIRCULAR_SCHEMATHESIS_EXAMPLES", "100"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_every_answer_is_a_declared_non_server_error(world: Any) -> None:
    if world.db != "sqlite":
        pytest.skip("one database is enough for fuzzing")
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: Counter[str] = Counter()
    examples: dict[str, str] = {}
    calls = server_errors = 0

    def conforms(case: Any) -> None:
        nonlocal calls, server_errors
        for headers in (world.auth("brand"), {}):
            response = case.call(headers=headers)
            calls += 1
            server_errors += response.status_code >= 500
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    key = f"{case.method} {case.operation.path} {response.status_code}: {failure.title}"
                    failures[key] += 1
                    examples.setdefault(key, str(failure.message)[:300])

    for operation in operations:
        check = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))(given(case=operation.as_strategy())(conforms))
        check()
    print(f"\nschemathesis: {len(operations)} operations x {EXAMPLES_PER_OPERATION} examples, {calls} calls, "
          f"{server_errors} server errors, {sum(failures.values())} failed checks")
    report = "\n".join(f"{n:5d}  {key}\n       {examples[key]}" for key, n in failures.most_common())
    assert not failures, report
