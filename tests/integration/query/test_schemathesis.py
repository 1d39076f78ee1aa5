"""schemathesis drives the live API from its own OpenAPI document: no 5xx, answers match the document,
and schema-valid requests are accepted (the positive-data check is on).

The schemathesis pytest plugin does not load under this pytest, so the test walks the operations and
runs each one's hypothesis strategy itself (valid and invalid inputs), with bounded examples.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from streamer.settings import Settings
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, Data, LiveServer

EXAMPLES = 30
# What OpenAPI cannot say, fixed to valid values where the positive-data check judges acceptance:
# that start precedes end (a 400 otherwise), and which SQL text is one valid read statement.
VALID_RANGE = {"start": str(T0), "end": str(T0 + SPAN_MIN * MINUTE)}
VALID_SQL = {"sql": "SELECT site, count() AS n FROM timeseries_raw GROUP BY site ORDER BY site"}
# No hypothesis health check is suppressed: with the document's patterns and bounds generation passes
# them all (too_slow, filter_too_much, data_too_large, ...). If one starts firing, name it here with
# the reason, rather than suppressing the whole list.
SUPPRESSED: list[HealthCheck] = []


def _exercise(
    operation: Any, mode: GenerationMode, seen: dict[str, set[int]], *, judge_acceptance: bool, **fixed: Any
) -> None:
    excluded = [] if judge_acceptance else [schemathesis.checks.positive_data_acceptance]

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,  # a real HTTP call per example: wall-clock time is not what this test judges
        derandomize=True,
        database=None,
        suppress_health_check=SUPPRESSED,
    )
    def run(case: Any) -> None:
        response = case.call(timeout=60)
        seen.setdefault(operation.label, set()).add(response.status_code)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"
        case.validate_response(response, excluded_checks=excluded)

    run()


def _fixed(operation: Any) -> dict[str, Any]:
    """The values OpenAPI cannot constrain, fixed for the passes that judge acceptance."""
    names = {p.name for p in operation.iter_parameters()}
    fixed: dict[str, Any] = {}
    if {"start", "end"} <= names:
        fixed["query"] = dict(VALID_RANGE)
    if operation.path == "/api/v1/sql":
        fixed["body"] = VALID_SQL
    return fixed


def test_api_conforms_to_its_openapi_document(filled: tuple[Settings, Data]) -> None:
    """Valid generated requests are accepted (2xx, or 404 for an unknown site or point), invalid ones
    get documented 4xx; every answer matches the document, none is a 5xx."""
    with LiveServer(filled[0].model_copy(update={"api_row_budget": 5_000})) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
        seen: dict[str, set[int]] = {}
        results: list[Any] = list(schema.get_all_operations())
        operations = [result.ok() for result in results]
        for operation in operations:
            has_inputs = any(True for _ in operation.iter_parameters()) or len(operation.body) > 0
            fixed = _fixed(operation)
            _exercise(operation, GenerationMode.POSITIVE, seen, judge_acceptance=True, **fixed)
            if has_inputs:
                _exercise(operation, GenerationMode.NEGATIVE, seen, judge_acceptance=True)
            if fixed:
                # start/end pairs and SQL text drawn freely too: still no 5xx and documented answers,
                # but a 400 for start >= end or for text that is not SQL is right, not a rejected
                # valid request, so acceptance is not judged here.
                _exercise(operation, GenerationMode.POSITIVE, seen, judge_acceptance=False)
            if "{site}" in operation.path:
                # Random sites are all unknown (404): a second pass reaches the data with a real one.
                query = dict(fixed.get("query", {}))
                if operation.path.endswith(("samples", "latest")):
                    query["points"] = "temp,gappy"
                _exercise(
                    operation,
                    GenerationMode.POSITIVE,
                    seen,
                    judge_acceptance=True,
                    path_parameters={"site": "s1"},
                    query=query or None,
                )
    assert len(operations) == 12
    assert set(seen) == {op.label for op in operations}
    assert 200 in seen["GET /api/v1/sites"] and {200, 400} <= seen["POST /api/v1/sql"]
    # the data paths were reached, not only refusals
    for path in ("samples", "latest", "gaps", "points", "completeness"):
        assert {200, 404} <= seen[f"GET /api/v1/sites/{{site}}/{path}"]
