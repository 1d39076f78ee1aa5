"""schemathesis drives the live API from its own OpenAPI document: no 5xx, answers match the document.

The schemathesis pytest plugin does not load under this pytest, so the test walks the operations and
runs each one's hypothesis strategy itself (valid and invalid inputs), with bounded examples.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from streamer.settings import Settings
from tests.integration.query.conftest import Data, LiveServer

EXAMPLES = 30


def _exercise(operation: Any, mode: GenerationMode, seen: dict[str, set[int]], **fixed: Any) -> None:
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(timeout=60)
        seen.setdefault(operation.label, set()).add(response.status_code)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
        # Cross-parameter rules (start before end, a known site) cannot be written in the document, so
        # a schema-valid request may rightly get a 400/404: acceptance of valid data is not checked.
        case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])

    run()


def test_api_conforms_to_its_openapi_document(filled: tuple[Settings, Data]) -> None:
    """Valid and invalid generated requests get documented statuses and bodies, none a 5xx."""
    with LiveServer(filled[0].model_copy(update={"api_row_budget": 5_000})) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
        seen: dict[str, set[int]] = {}
        results: list[Any] = list(schema.get_all_operations())
        operations = [result.ok() for result in results]
        for operation in operations:
            has_inputs = any(True for _ in operation.iter_parameters()) or len(operation.body) > 0
            modes = (
                (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                if has_inputs
                else (GenerationMode.POSITIVE,)
            )
            for mode in modes:
                _exercise(operation, mode, seen)
            if "{site}" in operation.path:
                # Random sites are all unknown (404): a second pass reaches the data with a real one.
                query = {"points": "temp,gappy"} if operation.path.endswith(("samples", "latest")) else None
                _exercise(
                    operation, GenerationMode.POSITIVE, seen, path_parameters={"site": "s1"}, query=query
                )
    assert len(operations) == 12
    assert set(seen) == {op.label for op in operations}
    assert 200 in seen["GET /api/v1/sites"] and 400 in seen["POST /api/v1/sql"]
    # the data paths were reached, not only refusals
    for path in ("samples", "latest", "gaps", "points", "completeness"):
        assert {200, 404} <= seen[f"GET /api/v1/sites/{{site}}/{path}"]
