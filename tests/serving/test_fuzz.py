"""Schemathesis against the live service's own OpenAPI schema (``/docs.json``): generated valid and
invalid requests for every operation; no 5xx, and every response conforms to the schema
(status code documented, content type, body). ``$PRODRANK_FUZZ_EXAMPLES`` examples per
operation (25 here; ``make reliability`` runs 200). Its own server: the requests it makes must
not mix with test_server.py's request-log audit."""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.serving.conftest import launch_server

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("PRODRANK_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, serving_data):
    info = launch_server(tmp_path_factory.mktemp("fuzz_server"), serving_data["ranker_dir"])
    try:
        yield info
    finally:
        info["server"].stop()


@pytest.fixture(scope="module")
def operations(fuzz_server) -> dict:
    schema = schemathesis.openapi.from_url(fuzz_server["url"] + "/docs.json")
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation the schema cannot describe fails here, loudly
        found[operation.label] = operation
    return found


def test_schema_lists_the_public_operations(operations):
    assert {"POST /rank", "POST /feedback"} <= set(operations), sorted(operations)


def accepted_or_rightly_refused(case, response) -> None:
    """Schema-valid data must be accepted, except for what JSON Schema cannot say: candidate ids
    unique within a request (there is no unique-by-key keyword), and feedback only for a
    request_id this server served (404). This replaces schemathesis' generic acceptance check."""
    if response.status_code == 200:
        return
    body = case.body if isinstance(case.body, dict) else {}
    ids = [c.get("id") for c in body.get("candidates", []) if isinstance(c, dict)]
    duplicate_ids = len(ids) != len(set(ids))
    if case.path == "/rank" and response.status_code == 422 and duplicate_ids and "duplicate id" in response.text:
        return
    if case.path == "/feedback" and response.status_code == 404 and "unknown request_id" in response.text:
        return
    raise AssertionError(f"schema-valid request refused: {response.status_code} {response.text[:300]}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema_and_never_fails(operations, mode):
    """Positive (schema-valid) and negative (schema-violating) requests for every operation;
    each response is checked by schemathesis' default checks (no 5xx; status code, content type,
    headers and body as documented; invalid data refused) and, for valid data, by
    :func:`accepted_or_rightly_refused`."""
    for label, operation in operations.items():
        takes_input = any(len(group) for group in (operation.body, operation.query, operation.path_parameters,
                                                   operation.headers, operation.cookies))
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # a probe without parameters has no invalid request to make

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case) -> None:
            response = case.call_and_validate(timeout=60, excluded_checks=[positive_data_acceptance])
            if mode is GenerationMode.POSITIVE:
                accepted_or_rightly_refused(case, response)

        try:
            check()
        except Exception as err:
            raise AssertionError(f"{label} ({mode.value}): {err}") from err
