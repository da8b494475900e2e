"""The ranking service as a child process: start ``bentoml serve`` on 127.0.0.1, wait until it
is ready, stop it by PID. Used by the tests, the serving benchmark, the drift demo and the
reliability suite, so every one of them exercises the same real HTTP server.

    server = ServerProcess.start(env={"PRODRANK_PARAMS": "params.yaml"}, log_path=Path("server.log"))
    server.wait_ready()
    status, body = request(server.url, "POST", "/rank", json.dumps({...}).encode())
    server.stop()        # SIGTERM by PID: drains the request log; SIGKILL only if it hangs
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import psutil

SERVICE = "prodrank.serving.service:ProdrankRanker"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def request(url: str, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
            timeout: float = 120) -> tuple[int, bytes]:
    """(status, body) of one HTTP request on a fresh connection; never raises on 4xx/5xx."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("content-type", "application/json")
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class ServerProcess:
    """One ``bentoml serve`` child process bound to 127.0.0.1."""

    def __init__(self, proc: subprocess.Popen, url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, env: Mapping[str, str], log_path: Path, port: int | None = None,
              cwd: Path | None = None) -> ServerProcess:
        """Start the service with ``env`` added to this process's environment (PRODRANK_PARAMS,
        BENTOML_HOME, ...); stdout and stderr go to ``log_path``."""
        port = port or free_port()
        full_env = {k: v for k, v in os.environ.items() if k != "PRODRANK_MODEL_TAG"}
        full_env.update(BENTOML_DO_NOT_TRACK="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                        TOKENIZERS_PARALLELISM="false", OMP_WAIT_POLICY="PASSIVE")
        full_env.update(env)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen([str(Path(sys.executable).with_name("bentoml")), "serve", SERVICE,
                                     "--host", "127.0.0.1", "--port", str(port)],
                                    cwd=cwd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # Ctrl-C in the caller's terminal is the caller's alone
        return cls(proc, f"http://127.0.0.1:{port}", log_path)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 180) -> float:
        """Seconds until /readyz answered 200; raises with the server's log if it exited or timed out."""
        started = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if request(self.url, "GET", "/readyz", timeout=2)[0] == 200:
                    return time.monotonic() - started
            except OSError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"server not ready in {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.3)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM by PID and wait (a clean shutdown drains the request log); SIGKILL only if it
        hangs, or for a worker still running after its arbiter exited."""
        if self.proc.poll() is None:
            workers = self._descendants()
            os.kill(self.proc.pid, signal.SIGTERM)
            if self.wait_exit(timeout) is None:
                self.kill()
            _, alive = psutil.wait_procs(workers, timeout=5)
            for proc in alive:
                proc.kill()
        return self.proc.returncode

    def _descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> int | None:
        """SIGKILL to the server and every process under it: a crash, no shutdown hook runs.
        BentoML's arbiter starts its service worker in a session of its own, so killing the
        arbiter (or its process group) alone would leave the worker serving."""
        tree = self._descendants()
        if self.proc.poll() is None:
            tree.append(psutil.Process(self.proc.pid))
        for proc in tree:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=10)
        self.proc.wait(10)
        return self.proc.returncode
