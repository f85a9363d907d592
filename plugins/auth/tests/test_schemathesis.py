"""Schemathesis against a server that requires credentials: with the admin's no request
causes a 5xx, and without valid credentials no operation answers 2xx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from marathon_core.testing.processes import script_server

from .conftest import ADMIN, users_file_text  # type: ignore[import-not-found]

pytestmark = pytest.mark.processes

BASIC_ADMIN = httpx.BasicAuth(*ADMIN)


@contextmanager
def _serve(directory: Path) -> Iterator[str]:
    users = directory / "users.toml"
    users.write_text(users_file_text())
    script = Path(__file__).with_name("serve_with_auth.py")
    with script_server(
        script, "--auth_users", str(users), "--http_credentials", ":".join(ADMIN)
    ) as url:
        yield url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A server of its own: failed logins lock its client out for a while (429)."""
    with _serve(tmp_path) as url:
        yield url


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The API document, as the admin reads it."""
    with _serve(tmp_path_factory.mktemp("auth")) as url:
        response = httpx.get(f"{url}/openapi.json", auth=BASIC_ADMIN, timeout=10)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def _sweep(
    document: dict[str, Any], url: str, headers: dict[str, str], check: Any, examples: int
) -> int:
    """Call every operation ``examples`` times with ``headers``; the operations swept."""
    schema = schemathesis.openapi.from_dict(document)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document is the server's own
        operations.append(result.ok())
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: Any) -> None:
            response = case.call(base_url=url, headers=headers)
            check(case, response)

        call()
    return len(operations)


def test_no_request_of_the_admin_causes_a_server_error(
    document: dict[str, Any], server: str
) -> None:
    authorization = BASIC_ADMIN.auth_flow(httpx.Request("GET", server)).__next__()
    headers = {"Authorization": authorization.headers["Authorization"]}

    def no_5xx(case: Any, response: Any) -> None:
        case.validate_response(response, checks=[not_a_server_error])

    assert _sweep(document, server, headers, no_5xx, examples=12) >= 20


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWRtaW46d3Jvbmc="}, {"Authorization": "Bearer not-a-token"}],
    ids=["none", "wrong password", "unknown token"],
)
def test_no_operation_answers_2xx_without_valid_credentials(
    document: dict[str, Any], server: str, headers: dict[str, str]
) -> None:
    def refused(case: Any, response: Any) -> None:
        assert response.status_code in (401, 429), (case.method, case.formatted_path)

    assert _sweep(document, server, headers, refused, examples=3) >= 20
    # the liveness probe and the API document too
    for path in ("/ping", "/openapi.json"):
        assert httpx.get(f"{server}{path}", headers=headers, timeout=10).status_code in (401, 429)
