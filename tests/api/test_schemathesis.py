"""schemathesis over the whole OpenAPI schema: no generated request, authenticated or not, gets a server error.

schemathesis 4's pytest plugin does not run under pytest 9, so its Hypothesis strategies are driven directly, one
property per API operation."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES_PER_OPERATION = 100


@pytest.mark.slow
def test_no_operation_answers_a_server_error(world: Any) -> None:
    if world.db != "sqlite":
        pytest.skip("one database is enough for fuzzing")
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    def no_server_error(case: Any) -> None:
        for headers in (world.auth("brand"), {}):
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

    for operation in operations:
        check = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))(given(case=operation.as_strategy())(no_server_error))
        check()
    print(f"\nschemathesis: {len(operations)} operations x {EXAMPLES_PER_OPERATION} examples, "
          f"{len(failures)} server errors")
    assert failures == []
