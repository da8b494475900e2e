"""ASGI middlewares in front of the service: an optional API key, and a clear 4xx for every bad body.

:class:`ApiKeyGuard` (on with ``serving.require_api_key``; the key itself comes from the
environment variable named by ``serving.api_key_env``, never from a file in the repository)
answers ``401`` to any request but the health probes that lacks ``Authorization: Bearer
<key>`` or ``X-API-Key: <key>``. The comparison is constant-time (:func:`hmac.compare_digest`),
so response timing does not leak how much of a guessed key was right.

:class:`RequestGuard` is in front of the JSON APIs.

:class:`OpenAPIDocument` completes the OpenAPI schema BentoML generates at ``/docs.json`` so that
it describes what the service really answers (schemathesis fuzzing checks every response
against it): request bodies are required, the 401/413/415/422/503 answers are documented
with the error body below, and each request body carries its byte limit as ``x-max-body-bytes``
(JSON Schema has no keyword for the size of a serialised body).

Too large or too long, one rule: ``413`` exactly when the body is over ``serving.max_body_bytes``,
whatever it holds, because it is refused before it is parsed; a body within that limit that breaks
the schema gets ``422``, more candidates than ``serving.max_candidates`` (``maxItems``) included.

BentoML parses and validates the body itself (pydantic), and answers a validation failure
with ``400 {"error": "2 validation errors for Input", "detail": [...]}``. In front of
that, this guard

- answers ``413`` for a body over ``serving.max_body_bytes`` (checked on Content-Length and
  again while reading, so a chunked body cannot slip past), before anything is parsed;
- answers ``415`` for a content type other than JSON;
- answers ``400`` naming the byte offset for a body that is not UTF-8, and line/column for
  one that is not JSON, and ``422`` for JSON that is not an object;
- rewrites BentoML's validation 400 into ``422`` with the API's error body, whose
  ``error`` string starts with the field path (``candidates.3.id: ...``).

Error body (every 4xx of the service)::

    {"error": "<field>: <message>[; <field>: <message>]", "errors": [{"field": ..., "message": ...}]}
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prodrank.serving.schemas import error_body, format_validation_errors

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON_TYPES = {"application/json", ""}


async def send_json(send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


ERROR_BODY_SCHEMA = {
    "type": "object",
    "required": ["error", "errors"],
    "properties": {
        "error": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"],
                                              "properties": {"field": {"type": "string"},
                                                             "message": {"type": "string"}}}},
    },
}
ERROR_STATUSES = {  # what the guards and the service answer besides BentoML's own documented codes
    "400": "the body is not UTF-8 JSON",
    "413": "the body is over serving.max_body_bytes (x-max-body-bytes), whatever it holds",
    "415": "the content type is not application/json",
    "422": "the body is within the byte limit but does not match the schema (the field is named)",
    "503": "the model is not loaded yet, or too many requests are in flight",
}


def complete_openapi(spec: dict[str, Any], json_paths: Iterable[str], api_key: bool,
                     max_body_bytes: int) -> dict[str, Any]:
    """``spec`` with required request bodies, their byte limit, and every error status of the JSON
    APIs documented, so a fuzzer can tell a rightful 413 from a wrong one."""
    error = {"application/json": {"schema": ERROR_BODY_SCHEMA}}
    statuses = {**ERROR_STATUSES, **({"401": "a missing or wrong API key"} if api_key else {})}
    for path in json_paths:
        operation = spec.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        if "requestBody" in operation:
            operation["requestBody"].update(required=True, **{"x-max-body-bytes": max_body_bytes})
        responses = operation.setdefault("responses", {})
        for status, description in statuses.items():
            responses[status] = {"description": description, "content": error}
    if api_key:
        spec.setdefault("components", {}).setdefault("securitySchemes", {}).update(
            {"bearer": {"type": "http", "scheme": "bearer"}, "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}})
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec


class OpenAPIDocument:
    """Rewrites the ``GET /docs.json`` response with :func:`complete_openapi`."""

    def __init__(self, app: Callable, max_body_bytes: int, json_paths: Iterable[str] = ("/rank", "/feedback"),
                 api_key: bool = False) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.json_paths = tuple(json_paths)
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") != "/docs.json":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        assert start is not None
        if start["status"] != 200:
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})
            return
        spec = complete_openapi(json.loads(b"".join(chunks)), self.json_paths, self.api_key, self.max_body_bytes)
        await send_json(send, 200, spec)


PROBE_PATHS = frozenset({"/healthz", "/livez", "/readyz"})  # orchestrators probe without credentials


class ApiKeyGuard:
    def __init__(self, app: Callable, api_key: str, open_paths: Iterable[str] = PROBE_PATHS) -> None:
        if not api_key:
            raise ValueError("ApiKeyGuard needs a non-empty key")
        self.app = app
        self.key = api_key.encode("utf-8")
        self.open_paths = frozenset(open_paths)

    def presented_key(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers", []):
            name = name.lower()
            if name == b"x-api-key":
                return value.strip()
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                return value[7:].strip()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        presented = self.presented_key(scope)
        if presented is None or not hmac.compare_digest(presented, self.key):
            reason = "missing API key" if presented is None else "wrong API key"
            await send_json(send, 401, error_body([("authorization", f"{reason}: send 'Authorization: Bearer <key>' "
                                                                     "or 'X-API-Key: <key>'")]),
                            [(b"www-authenticate", b'Bearer realm="prodrank"')])
            return
        await self.app(scope, receive, send)


class RequestGuard:
    def __init__(self, app: Callable, max_body_bytes: int = 1_000_000, paths: Iterable[str] = ("/rank", "/feedback")) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.paths = set(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES:
            await send_json(send, 415, error_body([("content-type", f"must be application/json, got {media_type!r}")]))
            return
        limit = self.max_body_bytes
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            await send_json(send, 413, error_body([("body", f"{declared} bytes, more than the limit of {limit}")]),
                            [(b"connection", b"close")])
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await send_json(send, 413, error_body([("body", f"more than the limit of {limit} bytes")]),
                                [(b"connection", b"close")])
                return
            if not message.get("more_body", False):
                break
        problem = check_json_body(bytes(body))
        if problem is not None:
            status, field, message_text = problem
            await send_json(send, status, error_body([(field, message_text)]))
            return
        await self.app(scope, _replay(bytes(body), receive), _RewriteValidationErrors(send))


def check_json_body(body: bytes) -> tuple[int, str, str] | None:
    """(status, field, message) for a body that is not UTF-8 JSON holding an object, else None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        return 400, "body", f"not valid UTF-8 (byte {err.start}: {body[err.start:err.start + 1]!r})"
    if not text.strip():
        return 400, "body", "empty; send a JSON object"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        return 400, "body", f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    except RecursionError:
        return 400, "body", "JSON nested too deeply"
    if not isinstance(parsed, dict):
        return 422, "body", f"must be a JSON object, got {type(parsed).__name__}"
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later calls wait for the disconnect, as the server's would

    return replay


class _RewriteValidationErrors:
    """Buffers a 400 response and, if it is BentoML's pydantic report, re-emits it as a 422
    with the API's error body; every other response passes straight through."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] == 400:
                self.start = message
                return
            await self.send(message)
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        raw = b"".join(self.chunks)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("detail"), list):
            payload = json.dumps(format_validation_errors(data["detail"])).encode("utf-8")
            headers = [(k, v) for k, v in self.start.get("headers", [])
                       if k.lower() not in (b"content-length", b"content-type")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await self.send({**self.start, "status": 422, "headers": headers})
            await self.send({"type": "http.response.body", "body": payload})
        else:
            await self.send(self.start)
            await self.send({"type": "http.response.body", "body": raw})
