"""Schema fuzzing with Schemathesis: no 5xx and no response that breaks the app's own OpenAPI schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(client):
    """The schema of the running app (its lifespan started by the shared client)."""
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


schema = schemathesis.pytest.from_fixture("api_schema")
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path} answered {response.status_code}: {response.text[:300]}"
    # Schema-valid is not always digit-valid (a 1x1 PNG holds no digit), so a refusal of valid
    # data is not a failure; a 5xx, an undocumented status or a body off its schema is.
    case.validate_response(response, checks=CONFORMANCE)
