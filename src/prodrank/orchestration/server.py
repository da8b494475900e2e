"""A local Prefect server for the project: find it, start it in the background, stop it.

``make run`` and ``make prefect-server`` call ``python -m prodrank.orchestration.server ensure``:
if a Prefect server already answers (``$PREFECT_API_URL``, or the one this project started) it
is reused; otherwise ``prefect server start`` is launched on ``orchestration.server_host:port``
(127.0.0.1:4200 by default) as a detached process whose PID, URL and log are kept in
``$PREFECT_HOME`` (``.prefect/prodrank-server.json``, ``.prefect/server.log``). ``stop`` sends it
SIGTERM (SIGKILL after a grace period). Failing to start never fails the caller: the pipeline
then runs without Prefect, as plain ``dvc repro``.

Stages find the server through :func:`discover` (``$PREFECT_API_URL`` first, then the state
file); a missing server costs one refused TCP connection, a few milliseconds.

``python -m tools.screenshot prefect`` writes a PNG of the running server's UI for the docs.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from prodrank.config import load_config
from prodrank.orchestration import env

STATE_FILE = "prodrank-server.json"
STARTUP_GRACE_SECONDS = 180  # a fresh database takes 10-20 s to migrate; more than this is not "starting"
LOG_FILE = "server.log"


@dataclass
class ServerInfo:
    api_url: str  # http://127.0.0.1:4200/api
    pid: int | None = None  # set when this project started it
    started_at: float | None = None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def api_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/api"


def healthy(url: str, timeout: float = 1.0) -> bool:
    """True when ``<api url>/health`` answers ``true``."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status == 200 and response.read().strip() == b"true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(url: str, seconds: float, pid: int | None = None) -> bool:
    """Poll until healthy, ``seconds`` pass, or process ``pid`` dies."""
    deadline = time.monotonic() + seconds
    while True:
        if healthy(url):
            return True
        if time.monotonic() >= deadline or (pid is not None and not pid_alive(pid)):
            return False
        time.sleep(0.25)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) is not alive
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _is_prefect(pid: int) -> bool:
    """Guard against a recycled PID: only signal a process whose command line mentions prefect."""
    try:
        return b"prefect" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust the state file


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_state(home: Path | None = None) -> ServerInfo | None:
    path = (home or env.prefect_home()) / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return ServerInfo(**data)
    except (OSError, ValueError, TypeError):
        return None


def _write_state(info: ServerInfo, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(info)))
    os.replace(tmp, home / STATE_FILE)


def discover(wait_seconds: float = 0.0) -> ServerInfo | None:
    """The Prefect server to report to, or None.

    ``$PREFECT_API_URL`` when set (it must answer); else the server this project started (its
    state file), waiting up to ``wait_seconds`` while it is still starting.
    """
    if url := os.environ.get("PREFECT_API_URL"):
        return ServerInfo(url) if healthy(url) or wait_healthy(url, wait_seconds) else None
    state = read_state()
    if state is None or (state.pid is not None and not pid_alive(state.pid)):
        return None
    if healthy(state.api_url):
        return state
    # wait only for a server that may still be starting, not for one that has been unhealthy for long
    starting = state.started_at is not None and time.time() - state.started_at < STARTUP_GRACE_SECONDS
    if starting and wait_healthy(state.api_url, wait_seconds, state.pid):
        return state
    return None


def start(host: str = "127.0.0.1", port: int = 4200, wait_seconds: float = 60.0,
          home: Path | None = None) -> ServerInfo:
    """Launch ``prefect server start`` detached (own session, so it outlives the caller and a
    Ctrl-C in the terminal does not reach it); record PID and URL; wait until it answers
    (``wait_seconds=0``: return at once)."""
    env.configure()
    home = home or env.prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("prefect")
    cmd = [str(exe) if exe.exists() else "prefect", "server", "start", "--host", host, "--port", str(port),
           "--analytics-off"]
    proc_env = dict(os.environ, PREFECT_HOME=str(home))
    proc_env.pop("PREFECT_API_URL", None)
    # the UI asks its API at PREFECT_UI_API_URL, which Prefect derives from its default port 4200,
    # not from --port: on any other port the UI would show another server's runs (or none)
    proc_env.setdefault("PREFECT_UI_API_URL", api_url(host, port))
    with open(home / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=proc_env, start_new_session=True, close_fds=True)
    info = ServerInfo(api_url(host, port), proc.pid, time.time())
    _write_state(info, home)
    if wait_seconds and not wait_healthy(info.api_url, wait_seconds, proc.pid):
        alive = pid_alive(proc.pid)
        stop(home)
        raise RuntimeError(f"Prefect server did not answer on {info.api_url} within {wait_seconds:.0f} s "
                           f"({'still starting' if alive else 'it exited'}); see {home / LOG_FILE}")
    return info


def ensure(host: str = "127.0.0.1", port: int = 4200, wait_seconds: float = 60.0) -> tuple[ServerInfo, bool]:
    """A running server: the one already answering, else a new one. Returns (info, started_now).
    If ``port`` is taken by something that is not a Prefect server, a free port is used."""
    env.configure()
    found = discover()
    if found is not None:
        return found, False
    state = read_state()
    if state is not None and state.pid is not None and pid_alive(state.pid):
        # ours, still starting (or hung): wait for it rather than start a second one
        if wait_seconds == 0 or wait_healthy(state.api_url, wait_seconds, state.pid):
            return state, False
        stop()
    if not port_free(host, port):
        if healthy(api_url(host, port)):  # someone else's server: use it (recorded without a PID: never stopped by us)
            info = ServerInfo(api_url(host, port))
            _write_state(info, env.prefect_home())
            return info, False
        port = free_port(host)
    return start(host, port, wait_seconds), True


def stop(home: Path | None = None, grace_seconds: float = 20.0) -> bool:
    """SIGTERM the server this project started (SIGKILL after ``grace_seconds``); True if one ran."""
    home = home or env.prefect_home()
    state = read_state(home)
    (home / STATE_FILE).unlink(missing_ok=True)
    if state is None or state.pid is None or not pid_alive(state.pid) or not _is_prefect(state.pid):
        return False
    try:
        os.killpg(state.pid, signal.SIGTERM)  # its own session: the server and any children
    except ProcessLookupError:
        return False
    except PermissionError:
        os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(state.pid):
        try:
            os.killpg(state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


def recent_run_names(api: str, limit: int = 5, timeout: float = 10.0) -> list[str]:
    """Names of the ``limit`` flow runs that started last, from the API (newest first)."""
    body = json.dumps({"limit": limit, "sort": "START_TIME_DESC"}).encode()
    request = urllib.request.Request(api.rstrip("/") + "/flow_runs/filter", data=body, method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        return [run["name"] for run in json.loads(response.read())]


def _settings(params: str, profile: str | None) -> tuple[str, int, float]:
    try:
        orch = load_config(params, profile).orchestration
        return orch.server_host, orch.server_port, orch.server_wait_seconds
    except Exception:  # noqa: BLE001 - a broken params.yaml must not stop `make run` from reporting it later
        return "127.0.0.1", 4200, 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prodrank.orchestration.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["ensure", "start", "stop", "status", "url"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--wait", type=float, default=None, help="seconds to wait for it to answer")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    env.configure()
    host, port, wait = _settings(args.params, args.profile)
    wait = args.wait if args.wait is not None else max(wait, 60.0)

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr)

    if args.command in ("ensure", "start"):
        try:
            info, started = ensure(host, port, wait)
        except (RuntimeError, OSError) as err:
            say(f"prefect: no server ({err}); stages run without Prefect.")
            return 0 if args.command == "ensure" else 1
        state = "server running" if healthy(info.api_url) else "server starting in the background"
        say(f"prefect: {state} — UI: {info.ui_url}  (API {info.api_url}; "
            f"{'stop: make prefect-stop' if info.pid else 'not started by this project'})")
        return 0
    if args.command == "stop":
        say("prefect: server stopped" if stop() else "prefect: no server started by this project is running")
        return 0
    found = discover()
    if args.command == "url":
        if found is None:
            return 1
        print(found.api_url)
        return 0
    say(f"prefect: server answering at {found.ui_url}" if found else "prefect: no server answering")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
