"""The full fuzzing run's record, so the fuzzing cannot silently fall behind the API schema.

``make test`` fuzzes ``/rank``, ``/search`` and ``/feedback`` with few examples; the reliability suite runs the
same tests with :data:`FULL_EXAMPLES` per operation, too slow for every test run. The suite writes
what it found, with a digest of the OpenAPI schema it fuzzed, to :data:`RECORD` (tracked in git);
a test in ``make test`` fails when the served schema's digest differs from the recorded one, or the
recorded run did not hold, so a schema change cannot ship without a full fuzzing run against it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodrank.io import write_json
from tools.sandbox import PROJECT_ROOT

FULL_EXAMPLES = 200  # examples per operation in a full run
FUZZED_PATHS = ("/rank", "/search", "/feedback")
RECORD = PROJECT_ROOT / "docs" / "reliability-fuzz.json"
DIGEST_ENV = "PRODRANK_FUZZ_SCHEMA_OUT"  # where the fuzz tests write the digest of the schema they fuzzed
REFRESH = "make reliability RELIABILITY_ARGS=--fuzz-only"


def _refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` target inside ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def fuzzed_part(spec: dict[str, Any]) -> dict[str, Any]:
    """The fuzzed operations and every component they reference, directly or not: what decides the
    generated requests and the response checks (not the server address or the other routes)."""
    paths = {path: spec.get("paths", {}).get(path) for path in FUZZED_PATHS}
    components: dict[str, Any] = {}
    pending = list(_refs(paths))
    while pending:
        ref = pending.pop()
        if ref in components or not ref.startswith("#/"):
            continue
        node: Any = spec
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        components[ref] = node
        pending.extend(_refs(node))
    return {"paths": paths, "components": components}


def schema_digest(spec: dict[str, Any]) -> str:
    """sha256 of :func:`fuzzed_part` in canonical JSON."""
    text = json.dumps(fuzzed_part(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def write_record(digest: str, examples: int, figures: dict[str, Any], held: bool, finished_at: str) -> None:
    """Record a full run (the suite calls this only for ``examples >= FULL_EXAMPLES``)."""
    counts = {k: figures.get(k) for k in ("tests", "failures", "errors", "skipped", "seconds")}
    write_json({"schema_sha256": digest, "operations": [f"POST {p}" for p in FUZZED_PATHS],
                "examples_per_operation": examples, "held": held, "finished_at": finished_at, **counts}, RECORD)


def stale_reason(served_digest: str, record_path: Path = RECORD) -> str | None:
    """Why the recorded full run does not vouch for the served schema, or None when it does."""
    if not record_path.exists():
        return f"no full fuzzing run recorded ({record_path.name} is missing): run `{REFRESH}`"
    record = json.loads(record_path.read_text())
    if record.get("schema_sha256") != served_digest:
        return (f"the OpenAPI schema of {', '.join(FUZZED_PATHS)} changed since the last full fuzzing run "
                f"(recorded {record.get('schema_sha256')}, served {served_digest}): run `{REFRESH}` "
                f"and commit {record_path.name}")
    if not record.get("held") or record.get("examples_per_operation", 0) < FULL_EXAMPLES:
        return (f"the last full fuzzing run did not hold ({record.get('failures')} failures, "
                f"{record.get('errors')} errors, {record.get('examples_per_operation')} examples per operation)")
    return None
