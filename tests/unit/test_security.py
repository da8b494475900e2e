"""No secrets in the repository; the scanner finds a planted one; the API key guard is constant-time
and leaves the probes open; weights load only from safetensors."""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from prodrank.serving.guard import ApiKeyGuard
from tests.conftest import PROJECT_ROOT
from tools.reliability.security import scan_secrets


def test_the_repository_holds_no_secret():
    assert scan_secrets(PROJECT_ROOT) == []


def test_the_scanner_finds_planted_secrets(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    fake_aws = "AKIA" + "ABCDEFGHIJKLMNOP"  # built here so this file is not itself a finding
    fake_gh = "ghp_" + "a1" * 18
    (tmp_path / "settings.py").write_text(f'region = "eu"\naws = "{fake_aws}"\napi_key = "{"x9" * 10}"\n')
    (tmp_path / "notes.md").write_text(f"token {fake_gh}\n-----BEGIN " + "RSA PRIVATE KEY-----\n")
    (tmp_path / "clean.py").write_text('api_key = os.environ["PRODRANK_API_KEY"]\n')
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    found = scan_secrets(tmp_path)
    assert sorted(found) == ["notes.md:1: GitHub token", "notes.md:2: private key", "settings.py:2: AWS access key",
                             "settings.py:3: assigned secret"]
    assert not any(fake_aws in f or fake_gh in f for f in found)  # findings never repeat the secret


def _call(guard: ApiKeyGuard, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    guard.app = app
    asyncio.run(guard({"type": "http", "method": "POST", "path": path, "headers": headers}, receive, send))
    return sent[0]["status"]


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/rank", [], 401),
    ("/rank", [(b"x-api-key", b"s3cret-key-0123456789")], 200),
    ("/rank", [(b"authorization", b"Bearer s3cret-key-0123456789")], 200),
    ("/rank", [(b"authorization", b"bearer s3cret-key-0123456789")], 200),
    ("/rank", [(b"x-api-key", b"s3cret-key-012345678")], 401),  # a prefix of the key
    ("/rank", [(b"authorization", b"Basic czNjcmV0")], 401),
    ("/metadata", [], 401),
    ("/healthz", [], 200),
    ("/readyz", [], 200),
])
def test_api_key_guard(path, headers, status):
    assert _call(ApiKeyGuard(None, "s3cret-key-0123456789"), path, headers) == status


def test_api_key_guard_compares_in_constant_time(monkeypatch):
    import hmac

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    _call(ApiKeyGuard(None, "s3cret-key-0123456789"), "/rank", [(b"x-api-key", b"guess")])
    assert compared == [(b"guess", b"s3cret-key-0123456789")]


def test_weights_load_only_from_safetensors(tmp_path):
    """A ranker whose encoder weights arrive as a pickle (pytorch_model.bin) is refused."""
    import torch
    from transformers import BertConfig, BertModel

    from prodrank.models.ranker import FORMAT_VERSION, load_ranker

    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
    encoder_dir = tmp_path / "ranker" / "encoder"
    BertModel(config, add_pooling_layer=False).save_pretrained(encoder_dir)
    (encoder_dir / "model.safetensors").unlink()
    torch.save(BertModel(config, add_pooling_layer=False).state_dict(), encoder_dir / "pytorch_model.bin")
    (tmp_path / "ranker" / "ranker.json").write_text(f'{{"format_version": {FORMAT_VERSION}}}')
    with pytest.raises(OSError, match="safetensors"):
        load_ranker(tmp_path / "ranker")
