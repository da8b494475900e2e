"""Request validation without a server: every bad-input case of the issue is a 4xx whose
message names the field (the pydantic models, then the ASGI guard in front of BentoML)."""
from __future__ import annotations

import asyncio
import json
import re
import sys
import unicodedata

import jsonschema
import jsonschema_rs
import pytest
from pydantic import ValidationError
from schemathesis.core.jsonschema.patterns import compile_ecma_pattern

from prodrank.serving.guard import RequestGuard, check_json_body, complete_openapi
from prodrank.serving.schemas import (
    BLANK_RANGES,
    LIMITS,
    Candidate,
    FeedbackRequest,
    RankRequest,
    format_validation_errors,
    is_blank,
)


def good(**over):
    body = {"query": "red sofa", "candidates": [{"id": "a", "title": "acme red sofa"}, {"id": "b", "title": "lamp"}]}
    body.update(over)
    return body


def errors_of(model, body) -> dict:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(body))
    return format_validation_errors(info.value.errors(include_context=False, include_input=False))


def test_valid_request_parses_with_all_optional_fields():
    req = RankRequest.model_validate_json(json.dumps(good(top_k=1, candidates=[
        {"id": "a", "title": "t", "description": "d", "brand": "b", "category": "c",
         "attributes": {"color": "red", "size": 3}, "price": 12, "rating": 4.5}])))
    assert req.top_k == 1 and req.candidates[0].price == 12.0
    fields = req.candidates[0].fields()
    assert fields["attributes"] == "color: red; size: 3"
    assert fields["price"] == 12.0 and fields["rating"] == 4.5  # what a ranker with product features reads


@pytest.mark.parametrize(("body", "field", "words"), [
    (good(query=""), "query", "non-whitespace"),
    (good(query=" \t\n "), "query", "non-whitespace"),
    (good(candidates=[]), "candidates", "at least one"),
    (good(candidates=[{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]), "candidates", "duplicate id 'a'"),
    (good(candidates=[{"id": "a", "title": 5}]), "candidates.0.title", "valid string"),
    (good(candidates=[{"id": 7, "title": "x"}]), "candidates.0.id", "valid string"),
    (good(candidates=[{"id": "a"}]), "candidates.0.title", "Field required"),
    (good(candidates=[{"id": "", "title": "x"}]), "candidates.0.id", "at least 1"),
    (good(candidates="a,b"), "candidates", "valid array"),
    (good(top_k="3"), "top_k", "valid integer"),
    (good(top_k=0), "top_k", "greater than or equal to 1"),
    (good(top_k=2.5), "top_k", "valid integer"),
    (good(colour="red"), "colour", "Extra inputs"),
    (good(candidates=[{"id": "a", "title": "x", "colour": "red"}]), "candidates.0.colour", "Extra inputs"),
    (good(candidates=[{"id": "a", "title": "x", "price": -1}]), "candidates.0.price", "greater than or equal"),
    (good(candidates=[{"id": "a", "title": "x", "rating": -0.5}]), "candidates.0.rating", "greater than or equal"),
    ({"candidates": [{"id": "a", "title": "x"}]}, "query", "Field required"),
])
def test_bad_rank_bodies_name_the_field(body, field, words):
    err = errors_of(RankRequest, body)
    fields = [e["field"] for e in err["errors"]]
    assert field in fields, err
    assert words in err["error"] and err["error"].startswith(f"{fields[0]}:")


def test_too_many_candidates_uses_the_configured_limit(monkeypatch):
    monkeypatch.setattr(LIMITS, "max_candidates", 3)
    body = good(candidates=[{"id": str(i), "title": "t"} for i in range(4)])
    err = errors_of(RankRequest, body)
    assert err["errors"] == [{"field": "candidates", "message": "4 candidates, more than the limit of 3"}]
    RankRequest.model_validate_json(json.dumps(good(candidates=body["candidates"][:3])))


def code_points() -> list[str]:
    """Every Unicode scalar value (no surrogates: a JSON text cannot carry them alone)."""
    return [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]


def whitespace_by_any_reading() -> set[str]:
    """What Python's str.isspace, an ECMA-262 engine (jsonschema_rs) and Python's ASCII reading of
    ``\\s`` (schemathesis' generator) each call whitespace."""
    ecma = jsonschema_rs.validator_for({"type": "string", "pattern": r"\S"})
    return {c for c in code_points() if c.isspace() or not ecma.is_valid(c) or re.fullmatch(r"\s", c, re.ASCII)}


def disputed_code_points() -> list[str]:
    """Where the readings of "blank" could differ: whitespace by any reading, the blank set itself,
    and every control, format and separator character; plus ordinary text as a control group."""
    categories = {"Cc", "Cf", "Zs", "Zl", "Zp"}
    blank = {chr(c) for a, b in BLANK_RANGES for c in range(a, b + 1)}
    others = {c for c in code_points() if unicodedata.category(c) in categories}
    return sorted(whitespace_by_any_reading() | blank | others | set("a\u00e9\u4e2d-_."))


def accepted_by_pydantic(body: dict) -> bool:
    try:
        RankRequest.model_validate_json(json.dumps(body))
    except ValidationError:
        return False
    return True


def test_blank_covers_whitespace_by_every_reading():
    assert all(is_blank(c) for c in whitespace_by_any_reading())
    assert not is_blank(" a ") and is_blank("\u00a0\x1c\u2028\ufeff\u180e")


def test_schema_and_validator_agree_on_blank_for_every_disputed_code_point():
    """Each disputed character as the whole query, id or title: the validators accept the body
    exactly when the JSON Schema does, read by Python's jsonschema, an ECMA-262 engine
    (jsonschema_rs) and schemathesis' generator."""
    schema = RankRequest.model_json_schema()
    patterns = {schema["properties"]["query"]["pattern"], *(
        schema["$defs"]["Candidate"]["properties"][f]["pattern"] for f in ("id", "title"))}
    readers = [jsonschema.Draft202012Validator(schema).is_valid, jsonschema_rs.validator_for(schema).is_valid]
    generator_readings = [compile_ecma_pattern(p) for p in patterns]
    disagreements = []
    for c in disputed_code_points():
        for body in (good(query=c), good(candidates=[{"id": c, "title": "t"}]), good(candidates=[{"id": "a", "title": c}])):
            accepted = accepted_by_pydantic(body)
            if any(read(body) != accepted for read in readers):
                disagreements.append((f"U+{ord(c):04X}", [read(body) for read in readers], accepted))
        if any(bool(pattern.search(c)) == is_blank(c) for pattern in generator_readings):
            disagreements.append((f"U+{ord(c):04X}", "generator", not is_blank(c)))
    assert not disagreements, disagreements[:20]


def test_too_large_and_too_long_are_documented_in_the_schema():
    """413 and 422 are documented for every JSON API, and the byte limit that decides 413 is in the schema."""
    spec = {"paths": {"/rank": {"post": {"requestBody": {}, "responses": {}}}}}
    operation = complete_openapi(spec, ["/rank"], api_key=False, max_body_bytes=20_000)["paths"]["/rank"]["post"]
    assert operation["requestBody"] == {"required": True, "x-max-body-bytes": 20_000}
    assert {"413", "422"} <= set(operation["responses"])


def test_feedback_validation():
    FeedbackRequest.model_validate_json('{"request_id": "r1", "product_id": "a", "event": "add_to_cart"}')
    err = errors_of(FeedbackRequest, {"request_id": "r1", "product_id": "a", "event": "view"})
    assert err["errors"][0]["field"] == "event"
    err = errors_of(FeedbackRequest, {"request_id": "r1", "event": "click"})
    assert err["errors"][0]["field"] == "product_id"


def test_long_text_is_accepted_not_rejected():
    Candidate.model_validate({"id": "a", "title": "x" * 100_000})  # cut and flagged by the engine, not a 4xx


@pytest.mark.parametrize(("body", "status", "words"), [
    (b'{"query": "\xff"}', 400, "not valid UTF-8 (byte 11"),
    (b'{"query": ', 400, "not valid JSON"),
    (b"", 400, "empty"),
    (b"[1, 2]", 422, "JSON object"),
    (b'"text"', 422, "JSON object"),
])
def test_body_checks(body, status, words):
    got = check_json_body(body)
    assert got is not None and got[0] == status and got[1] == "body" and words in got[2]
    assert check_json_body(b'{"query": "caf\xc3\xa9"}') is None


def run_guard(body: bytes, headers: list[tuple[bytes, bytes]], app_status: int = 200, app_body: bytes = b"{}",
              chunks: int = 1, limit: int = 1000):
    """Drive the guard with a fake app; returns (status, JSON body, whether the app ran)."""
    calls = {"app": False}

    async def app(scope, receive, send):
        calls["app"] = True
        message = await receive()
        assert message["body"] == body
        await send({"type": "http.response.start", "status": app_status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": app_body})

    parts = [body[i * len(body) // chunks:(i + 1) * len(body) // chunks] for i in range(chunks)]
    messages = [{"type": "http.request", "body": p, "more_body": i < chunks - 1} for i, p in enumerate(parts)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/rank", "headers": headers}
    asyncio.run(RequestGuard(app, max_body_bytes=limit)(scope, receive, send))
    status = sent[0]["status"]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(payload), calls["app"]


def test_guard_rejects_large_bodies_before_the_app():
    big = b'{"query": "' + b"x" * 2000 + b'"}'
    status, body, ran = run_guard(big, [(b"content-type", b"application/json"), (b"content-length", str(len(big)).encode())])
    assert status == 413 and body["errors"][0]["field"] == "body" and not ran
    status, body, ran = run_guard(big, [(b"content-type", b"application/json")], chunks=4)  # no length: counted
    assert status == 413 and not ran


def test_guard_content_type_and_passthrough():
    status, body, ran = run_guard(b"query=x", [(b"content-type", b"application/x-www-form-urlencoded")])
    assert status == 415 and body["errors"][0]["field"] == "content-type" and not ran
    status, body, ran = run_guard(b'{"a": 1}', [(b"content-type", b"application/json; charset=utf-8")])
    assert status == 200 and ran


def test_guard_rewrites_bentoml_validation_errors_to_422():
    bentoml_400 = json.dumps({"error": "1 validation error for Input",
                              "detail": [{"type": "missing", "loc": ["query"], "msg": "Field required"}]}).encode()
    status, body, ran = run_guard(b'{"a": 1}', [(b"content-type", b"application/json")], 400, bentoml_400)
    assert ran and status == 422
    assert body == {"error": "query: Field required", "errors": [{"field": "query", "message": "Field required"}]}
