"""The API document, and schemathesis against it: no request may cause a 5xx."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def api_schema(api_process_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_process_url}/openapi.json")


def test_document_describes_the_request_bodies(api_process_url: str) -> None:
    doc = httpx.get(f"{api_process_url}/openapi.json").json()
    app = doc["components"]["schemas"]["App"]
    assert app["required"] == ["id"]
    assert app["properties"]["instances"] == {"type": "integer", "minimum": 0}
    assert doc["paths"]["/v2/apps"]["post"]["requestBody"]["content"]["application/json"]


def test_no_request_causes_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, a bounded number of generated requests each (valid and not)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        call()
