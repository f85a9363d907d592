"""The API document, and schemathesis against it: no request may cause a 5xx."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

SERVER = Path(__file__).with_name("serve_memory_state.py")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), f"server failed to start ({proc.poll()})"
        yield url
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def api_schema(server_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server_url}/openapi.json")


def test_document_describes_the_request_bodies(server_url: str) -> None:
    doc = httpx.get(f"{server_url}/openapi.json").json()
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
