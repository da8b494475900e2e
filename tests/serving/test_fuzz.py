"""Schemathesis against the live service's own OpenAPI schema (``/docs.json``): generated valid and
invalid requests for every operation; no 5xx, and every response conforms to the schema
(status code documented, content type, body). ``$PRODRANK_FUZZ_EXAMPLES`` examples per
operation (25 here; ``make reliability`` runs 200, and records the result with the digest of the
schema it fuzzed, which a test here compares with the served schema). Its own server: the
requests it makes must not mix with test_server.py's request-log audit."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.serving.conftest import launch_server
from tools.reliability.fuzzing import DIGEST_ENV, FULL_EXAMPLES, schema_digest, stale_reason

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("PRODRANK_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, serving_data):
    info = launch_server(tmp_path_factory.mktemp("fuzz_server"), serving_data["ranker_dir"],
                         catalog=serving_data["prepared"] / "catalog.parquet")
    try:
        yield info
    finally:
        info["server"].stop()


@pytest.fixture(scope="module")
def schema(fuzz_server):
    """The served schema; its digest goes to ``$PRODRANK_FUZZ_SCHEMA_OUT`` when the suite asks,
    so the full run's record names the schema it fuzzed."""
    loaded = schemathesis.openapi.from_url(fuzz_server["url"] + "/docs.json")
    if os.environ.get(DIGEST_ENV):
        Path(os.environ[DIGEST_ENV]).write_text(schema_digest(loaded.raw_schema))
    return loaded


@pytest.fixture(scope="module")
def operations(schema) -> dict:
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation the schema cannot describe fails here, loudly
        found[operation.label] = operation
    return found


def test_schema_lists_the_public_operations(operations):
    assert {"POST /rank", "POST /search", "POST /feedback"} <= set(operations), sorted(operations)


def test_full_fuzzing_run_vouches_for_the_served_schema(schema):
    """The recorded full run (docs/reliability-fuzz.json) fuzzed this very schema and held: a change
    to /rank, /search or /feedback fails here until the full run is repeated against it."""
    reason = stale_reason(schema_digest(schema.raw_schema))
    assert reason is None, reason


def spec_with(metadata_title: str, candidate_title: str) -> dict:
    return {"servers": [{"url": "http://127.0.0.1:1"}],
            "paths": {"/rank": {"post": {"requestBody": {"$ref": "#/components/schemas/Rank"}}},
                      "/feedback": {"post": {}}, "/metadata": {"get": {"$ref": "#/components/schemas/Meta"}}},
            "components": {"schemas": {"Rank": {"items": {"$ref": "#/components/schemas/Candidate"}},
                                       "Candidate": {"title": candidate_title}, "Meta": {"title": metadata_title}}}}


def test_digest_follows_the_fuzzed_operations_and_what_they_reference():
    base = schema_digest(spec_with("m", "c"))
    assert schema_digest(spec_with("other", "c")) == base  # an unfuzzed route's component
    assert schema_digest({**spec_with("m", "c"), "servers": []}) == base  # the server address
    assert schema_digest(spec_with("m", "other")) != base  # a component /rank references, two refs deep


def test_stale_reason_names_what_to_rerun(tmp_path):
    record = tmp_path / "record.json"
    assert "missing" in stale_reason("abc", record)
    record.write_text(json.dumps({"schema_sha256": "abc", "held": True, "examples_per_operation": FULL_EXAMPLES}))
    assert stale_reason("abc", record) is None
    assert "changed" in stale_reason("def", record) and "--fuzz-only" in stale_reason("def", record)
    record.write_text(json.dumps({"schema_sha256": "abc", "held": False, "examples_per_operation": FULL_EXAMPLES,
                                  "failures": 2, "errors": 0}))
    assert "did not hold (2 failures" in stale_reason("abc", record)


def byte_limit(schema, operation) -> int | None:
    """The operation's documented body limit (``x-max-body-bytes``), None without a body."""
    definition = schema.raw_schema["paths"][operation.path][operation.method.lower()]
    return definition.get("requestBody", {}).get("x-max-body-bytes")


def sent_bytes(response) -> int:
    body = response.request.body or b""
    return len(body.encode("utf-8") if isinstance(body, str) else body)


def rightly_too_large(schema, operation, response) -> None:
    """A 413 is right for a body over the documented limit, whether or not the body is valid:
    the guard refuses it before parsing. It is wrong for any smaller body."""
    limit, sent = byte_limit(schema, operation), sent_bytes(response)
    if limit is None or sent <= limit:
        raise AssertionError(f"413 for a body of {sent} bytes, limit {limit}: {response.text[:300]}")


def accepted_or_rightly_refused(case, response) -> None:
    """Schema-valid data must be accepted, except for what JSON Schema cannot say: candidate ids
    unique within a request (there is no unique-by-key keyword), a search's n at least its k (no
    keyword compares two fields), and feedback only for a request_id this server served (404).
    This replaces schemathesis' generic acceptance check."""
    if response.status_code == 200:
        return
    body = case.body if isinstance(case.body, dict) else {}
    ids = [c.get("id") for c in body.get("candidates", []) if isinstance(c, dict)]
    duplicate_ids = len(ids) != len(set(ids))
    if case.path == "/rank" and response.status_code == 422 and duplicate_ids and "duplicate id" in response.text:
        return
    if case.path == "/feedback" and response.status_code == 404 and "unknown request_id" in response.text:
        return
    n, k = body.get("n"), body.get("k", 10)
    if case.path == "/search" and response.status_code == 422 and isinstance(n, int) and n < k \
            and "is less than k" in response.text:
        return
    raise AssertionError(f"schema-valid request refused: {response.status_code} {response.text[:300]}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema_and_never_fails(schema, operations, mode):
    """Positive (schema-valid) and negative (schema-violating) requests for every operation;
    each response is checked by schemathesis' default checks (no 5xx; status code, content type,
    headers and body as documented; invalid data refused with 4xx) and, for valid data, by
    :func:`accepted_or_rightly_refused`. A 413 is checked by :func:`rightly_too_large` instead of
    the refusal checks: over the byte limit it is the answer to valid and invalid bodies alike."""
    for label, operation in operations.items():
        takes_input = any(len(group) for group in (operation.body, operation.query, operation.path_parameters,
                                                   operation.headers, operation.cookies))
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # a probe without parameters has no invalid request to make

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case) -> None:
            response = case.call(timeout=60)
            if response.status_code == 413:
                rightly_too_large(schema, case.operation, response)
                case.validate_response(response, excluded_checks=[positive_data_acceptance, negative_data_rejection])
                return
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            if mode is GenerationMode.POSITIVE:
                accepted_or_rightly_refused(case, response)

        try:
            check()
        except Exception as err:
            raise AssertionError(f"{label} ({mode.value}): {err}") from err
