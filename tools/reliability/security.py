"""Security checks: secrets in the repository, the optional API key, pickle-free weights, loopback binding."""
from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

import psutil

from prodrank.config import Config
from prodrank.serving.process import request
from prodrank.serving.request_log import log_files
from tools.reliability.faults import Check, Target, start_server

# what a leaked credential looks like; a finding names the file and line, never the value
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "assigned secret": re.compile(r"(?i)\b(?:api[_-]?key|secret|passw(?:or)?d|token)\b[\"']?\s*[:=]\s*[\"'][A-Za-z0-9+/_\-]{16,}[\"']"),
}
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"}


def scan_secrets(root: Path) -> list[str]:
    """``path:line: kind`` for every line of a git-tracked file that looks like a credential."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True).stdout
    findings = []
    for name in filter(None, files.split("\0")):
        path = root / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary (images) or deleted in the work tree
        for number, line in enumerate(text.splitlines(), start=1):
            findings += [f"{name}:{number}: {kind}" for kind, pattern in SECRET_PATTERNS.items() if pattern.search(line)]
    return findings


def no_secrets_in_repo(root: Path) -> Check:
    findings = scan_secrets(root)
    return Check("no secrets in the repository", "security", not findings,
                 "no git-tracked line looks like a private key, cloud/API token or an assigned secret",
                 {"findings": findings[:20], "patterns": sorted(SECRET_PATTERNS)})


def api_key(target: Target) -> Check:
    """With ``serving.require_api_key``: 401 without or with a wrong key, 200 with it (both header
    forms, /rank and /search), probes and the search page's files open, the key never written to
    the server's or the request log; and without the key in the environment the server refuses to
    start."""
    root = target.workdir / "api_key"
    key = secrets.token_urlsafe(32)
    env_name = "PRODRANK_API_KEY"
    server = start_server(target, root, env={env_name: key}, require_api_key=True, api_key_env=env_name)
    body = target.bodies[0]
    search = json.dumps({"query": json.loads(body)["query"], "k": 3}).encode()
    try:
        server.wait_ready()
        got = {
            "no key": request(server.url, "POST", "/rank", body)[0],
            "wrong key": request(server.url, "POST", "/rank", body, {"x-api-key": key[:-1] + "x"})[0],
            "bearer": request(server.url, "POST", "/rank", body, {"authorization": f"Bearer {key}"})[0],
            "x-api-key": request(server.url, "POST", "/rank", body, {"x-api-key": key})[0],
            "search no key": request(server.url, "POST", "/search", search)[0],
            "search x-api-key": request(server.url, "POST", "/search", search, {"x-api-key": key})[0],
            "page no key": request(server.url, "GET", "/")[0],
            "page script no key": request(server.url, "GET", "/static/search.js")[0],
            "docs no key": request(server.url, "GET", "/docs")[0],
            "metadata no key": request(server.url, "GET", "/metadata")[0],
            "healthz no key": request(server.url, "GET", "/healthz")[0],
            "readyz no key": request(server.url, "GET", "/readyz")[0],
        }
    finally:
        server.stop()
    logged = [server.log_path, *log_files(root / "logs")]
    leaked = [p.name for p in logged if key in p.read_text(errors="replace")]
    missing_root = target.workdir / "api_key_missing"
    refused = start_server(target, missing_root, env={env_name: ""}, require_api_key=True, api_key_env=env_name)
    code = refused.wait_exit(120)
    if code is None:
        refused.stop()
    explained = f"${env_name} is unset" in refused.log_tail(20_000)
    expected = {"no key": 401, "wrong key": 401, "bearer": 200, "x-api-key": 200, "search no key": 401,
                "search x-api-key": 200, "page no key": 200, "page script no key": 200, "docs no key": 401,
                "metadata no key": 401, "healthz no key": 200, "readyz no key": 200}
    held = got == expected and not leaked and code not in (None, 0) and explained
    return Check("API key (serving.require_api_key)", "security", held,
                 "401 without or with a wrong key, 200 with it, probes and the page open, the key in no log, "
                 "no start without a key", {"status": got, "key_in_logs": leaked, "start_without_key_exit": code,
                                           "start_without_key_explained": explained})


def pickle_free_weights(target: Target) -> Check:
    """The packaged model holds no pickle-format file, and the loader only reads safetensors."""
    files = [p for p in (target.bentoml_home / "models").rglob("*") if p.is_file()]
    pickled = sorted(str(p.relative_to(target.bentoml_home)) for p in files if p.suffix in PICKLE_SUFFIXES)
    weights = sorted(p.name for p in files if p.suffix == ".safetensors")
    return Check("weights load only from safetensors", "security", not pickled and bool(weights),
                 "no pickle-format file in the model store; the loaders pass use_safetensors=True",
                 {"safetensors_files": weights, "pickle_files": pickled})


def loopback_only(target: Target) -> Check:
    """The default configuration binds 127.0.0.1, and the running server listens nowhere else."""
    root = target.workdir / "loopback"
    server = start_server(target, root)
    try:
        server.wait_ready()
        procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        listening = sorted({f"{c.laddr.ip}:{c.laddr.port}" for p in procs for c in p.net_connections("inet")
                            if c.status == psutil.CONN_LISTEN})
    finally:
        server.stop()
    default_host = Config().serving.host
    held = default_host == "127.0.0.1" and bool(listening) and all(a.startswith("127.0.0.1:") for a in listening)
    return Check("binds 127.0.0.1 by default", "security", held,
                 "serving.host defaults to 127.0.0.1 and the server listens on loopback only",
                 {"default_host": default_host, "listening": listening})


def limits(target: Target, max_candidates: int = 50, max_body_bytes: int = 50_000) -> Check:
    """Request size and candidate limits answered with 413 and 422 before any scoring."""
    root = target.workdir / "limits"
    server = start_server(target, root, max_candidates=max_candidates, max_body_bytes=max_body_bytes)
    too_many = ('{"query": "q", "candidates": [' + ",".join(f'{{"id": "{i}", "title": "t"}}'
                                                            for i in range(max_candidates + 1)) + "]}").encode()
    too_big = ('{"query": "q", "candidates": [{"id": "a", "title": "' + "x" * max_body_bytes + '"}]}').encode()
    try:
        server.wait_ready()
        got = {"candidates over the limit": request(server.url, "POST", "/rank", too_many)[0],
               "body over the limit": request(server.url, "POST", "/rank", too_big)[0],
               "alive after": request(server.url, "GET", "/healthz")[0]}
    finally:
        server.stop()
    expected = {"candidates over the limit": 422, "body over the limit": 413, "alive after": 200}
    return Check("request size and candidate limits", "security", got == expected,
                 f"over {max_candidates} candidates -> 422, over {max_body_bytes} bytes -> 413", {"status": got})
