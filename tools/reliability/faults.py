"""Injected faults, each with what must hold afterwards. Every scenario returns a :class:`Check`.

A :class:`Target` is what the scenarios act on: a params file, a BentoML home holding a packaged
champion, and /rank bodies for its catalogue; :class:`~tools.reliability.suite` builds one in a
sandbox workspace (the tiny pipeline) or from the project's own champion.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prodrank import paths
from prodrank.serving.process import ServerProcess, request
from tools.reliability.load import audit_log, run_load
from tools.sandbox import executable, set_params


@dataclass
class Check:
    """One row of the results table."""

    test: str
    kind: str  # "fuzz", "load", "fault" or "security"
    held: bool
    what: str  # what must hold
    figures: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None  # why it could not run here

    def as_dict(self) -> dict[str, Any]:
        return {"test": self.test, "kind": self.kind, "held": self.held, "what": self.what,
                "figures": self.figures, "skipped": self.skipped}


@dataclass
class Target:
    params: Path  # params.yaml the server reads (serving section)
    bentoml_home: Path
    bodies: list[bytes]
    workdir: Path  # scratch space for logs and copies


def serving_params(target: Target, root: Path, **serving: Any) -> Path:
    """A copy of the target's params.yaml with ``serving`` overrides (log_dir, ...)."""
    params = yaml.safe_load(target.params.read_text())
    params.setdefault("serving", {}).update(serving)
    path = root / "params.yaml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def start_server(target: Target, root: Path, home: Path | None = None, env: dict[str, str] | None = None,
                 port: int | None = None, **serving: Any) -> ServerProcess:
    params = serving_params(target, root, **{"log_dir": str(root / "logs"), **serving})
    return ServerProcess.start({"BENTOML_HOME": str(home or target.bentoml_home), "PRODRANK_PARAMS": str(params),
                                **(env or {})}, root / "server.log", port=port, cwd=root)


def metadata(server: ServerProcess, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, raw = request(server.url, "GET", "/metadata", headers=headers, timeout=10)
    return json.loads(raw) if status == 200 else {"status": status}


def server_killed_mid_load(target: Target, rate: float, seconds: float = 30.0, kill_at: float = 10.0) -> Check:
    """SIGKILL the whole server (arbiter and worker) while it is under load, restart it at once,
    keep the load on. Must hold: every request and feedback the server acknowledged (200) is in
    the log exactly once, and no log line is torn."""
    root = target.workdir / "kill_mid_load"
    server = start_server(target, root)
    server.wait_ready()
    load: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: load.update(result=run_load(server.url, target.bodies, rate, seconds,
                                                                          concurrency=4)))
    thread.start()
    time.sleep(kill_at)
    server.kill()
    killed_at = time.monotonic()
    # same port, so the load carries on against it; same log folder: it appends new files
    restarted = start_server(target, root, port=int(server.url.rsplit(":", 1)[1]))
    ready_s = restarted.wait_ready()
    downtime = time.monotonic() - killed_at
    thread.join()
    restarted.stop()
    result = load["result"]
    audit = audit_log(root / "logs", result.acknowledged, result.acknowledged_feedback)
    held = (audit["missing_requests"] == 0 and audit["missing_feedback"] == 0 and audit["duplicated_requests"] == 0
            and audit["unreadable_lines"] == 0 and result.status.get(200, 0) > 0)
    return Check("server killed (SIGKILL) mid-load, restarted", "fault", held,
                 "every acknowledged /rank and /feedback record logged exactly once; no torn line",
                 {**audit, "load": result.summary(), "restart_ready_s": round(ready_s, 1),
                  "downtime_s": round(downtime, 1)})


def _largest_file(directory: Path) -> Path:
    return max((p for p in directory.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def tampered_model(target: Target) -> Check:
    """Flip one byte of the packaged champion's weights (in a copy of the store). Must hold: the
    server refuses to start, exits non-zero and names the file that does not match its sha256."""
    root = target.workdir / "tampered"
    home = root / "bentoml"
    shutil.copytree(target.bentoml_home, home, dirs_exist_ok=True)
    weights = _largest_file(home / "models")
    with open(weights, "r+b") as fh:
        fh.seek(weights.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    server = start_server(target, root, home=home)
    started = time.monotonic()
    code = server.wait_exit(120)
    seconds = time.monotonic() - started
    if code is None:
        server.stop()
    text = server.log_tail(20_000)
    named = weights.name in text and "does not match its recorded sha256" in text
    return Check("tampered model file", "fault", code not in (None, 0) and named,
                 "the server refuses to start, naming the file whose sha256 differs",
                 {"exit_code": code, "seconds_to_exit": round(seconds, 1), "file": weights.name,
                  "error_named_file": named})


def unwritable_log_dir(target: Target, requests: int = 20) -> Check:
    """The log folder cannot be created (its parent is a regular file). Must hold: the server
    starts and answers every /rank with 200; /metadata reports the log errors and the reason."""
    root = target.workdir / "unwritable_log"
    root.mkdir(parents=True, exist_ok=True)
    (root / "not-a-folder").write_text("a file where the log folder's parent should be\n")
    server = start_server(target, root, log_dir=str(root / "not-a-folder" / "logs"))
    try:
        server.wait_ready()
        statuses = [request(server.url, "POST", "/rank", target.bodies[i % len(target.bodies)])[0]
                    for i in range(requests)]
        health = request(server.url, "GET", "/healthz")[0]
        info = metadata(server).get("request_log", {})
    finally:
        server.stop()
    ok = statuses.count(200)
    held = ok == requests and health == 200 and info.get("errors", 0) >= requests and bool(info.get("last_error"))
    return Check("unwritable log folder", "fault", held,
                 "every /rank answered 200, /healthz 200, the log failure counted and explained in /metadata",
                 {"rank_200": ok, "requests": requests, "healthz": health, "log_errors": info.get("errors"),
                  "last_error": info.get("last_error")})


def disk_full(target: Target, requests: int = 40, size_kb: int = 64) -> Check:
    """The log lives on a tiny tmpfs that fills up mid-run, then gets room again. Must hold: every
    /rank answered 200 throughout, the failures are counted with ENOSPC as the reason, and
    logging resumes once there is room. Needs mount rights (root); skipped otherwise."""
    root = target.workdir / "disk_full"
    mount = root / "small-disk"
    mount.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    what = "every /rank answered 200 while the disk was full; ENOSPC counted and explained; logging resumed after"
    if mounted.returncode != 0:
        return Check("disk full under the request log", "fault", True, what,
                     skipped=f"cannot mount a small tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    server = None
    try:
        filler = mount / "filler"
        filler.write_bytes(b"\0" * (size_kb * 1024 - 8 * 1024))  # leave 8 KB: a few records fit, then ENOSPC
        server = start_server(target, root, log_dir=str(mount / "logs"))
        server.wait_ready()
        statuses = [request(server.url, "POST", "/rank", target.bodies[i % len(target.bodies)])[0]
                    for i in range(requests)]
        full = metadata(server).get("request_log", {})
        filler.unlink()  # room again
        statuses += [request(server.url, "POST", "/rank", target.bodies[i % len(target.bodies)])[0] for i in range(5)]
        after = metadata(server).get("request_log", {})
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", str(mount)], capture_output=True)
    resumed = after.get("written", 0) >= full.get("written", 0) + 5
    held = (statuses.count(200) == len(statuses) and full.get("errors", 0) > 0
            and "No space left" in str(full.get("last_error")) and resumed)
    return Check("disk full under the request log", "fault", held, what,
                 {"rank_200": statuses.count(200), "requests": len(statuses), "written_before_full": full.get("written"),
                  "log_errors": full.get("errors"), "last_error": full.get("last_error"),
                  "written_after_room": after.get("written"), "resumed": resumed})


def tree_digest(path: Path) -> str | None:
    """sha256 over a directory's file names and contents (None if it does not exist)."""
    if not path.exists():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _repro_until(root: Path, env: dict[str, str], log_path: Path, condition, poll: float,
                 timeout: float = 900) -> tuple[bool, int | None]:
    """Run ``dvc repro train``; SIGKILL its whole process group as soon as ``condition()`` holds.
    Returns (killed, exit code)."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([executable("dvc"), "repro", "train"], cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if condition():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            return True, proc.returncode
        time.sleep(poll)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    return False, proc.returncode


def dvc_stage_killed(root: Path, env: dict[str, str]) -> list[Check]:
    """In a workspace whose pipeline has run: change a training parameter, then

    1. SIGKILL ``dvc repro train`` right after training wrote its first checkpoint (mid-epoch);
    2. rerun, SIGKILL it while the stage writes ``models/ranker`` (its temporary directory exists);
    3. rerun to the end.

    Must hold: after each kill the last good ``models/ranker`` and ``dvc.lock`` are untouched and
    ``dvc status`` reports the stage as changed (a partial output is never taken as valid); each
    rerun resumes training from the last checkpoint; the last run completes with a clean status.
    """
    ranker, lock = root / "models" / "ranker", root / "dvc.lock"
    checkpoints = root / paths.CHECKPOINTS / "train"  # where the train stage keeps state.pt
    good_ranker, good_lock = tree_digest(ranker), lock.read_bytes()
    params = yaml.safe_load((root / "params.yaml").read_text())
    profile_train = params.get("profiles", {}).get(params.get("profile"), {}).get("train", {})
    # a parameter only the train stage reads (and the tiny profile leaves alone): a new model must be trained
    set_params(root / "params.yaml", {"train.head_learning_rate": float(params["train"]["head_learning_rate"]) * 2})
    log_path = root / "kill_train.log"
    log_path.write_text("")

    def status_changed() -> bool:
        out = subprocess.run([executable("dvc"), "status", "train"], cwd=root, env=env, capture_output=True, text=True)
        return "changed" in out.stdout or "modified" in out.stdout

    def intact() -> bool:
        return tree_digest(ranker) == good_ranker and lock.read_bytes() == good_lock

    checks = []
    first_state = checkpoints / "state.pt"
    shutil.rmtree(checkpoints, ignore_errors=True)  # the config changed anyway; start from nothing
    killed, _ = _repro_until(root, env, log_path, first_state.exists, poll=0.05)
    mid_epoch = {"killed": killed, "intact": intact(), "status_changed": status_changed()}
    checks.append(Check("training killed mid-epoch (dvc repro train, SIGKILL)", "fault",
                        killed and mid_epoch["intact"] and mid_epoch["status_changed"],
                        "last good models/ranker and dvc.lock untouched; dvc status says train changed",
                        {**mid_epoch, "checkpoint_every": profile_train.get("checkpoint_every"),
                         "max_steps": profile_train.get("max_steps")}))

    def writing_output() -> bool:
        with os.scandir(ranker.parent) as entries:
            return any(e.name.startswith(".ranker.tmp-") for e in entries)

    # the output's write window is a few milliseconds for the tiny model: poll without sleeping
    killed, _ = _repro_until(root, env, log_path, writing_output, poll=0.0)
    text = log_path.read_text(errors="replace")
    resumed_steps = [int(line.split(" at step ")[1].split()[0]) for line in text.splitlines() if "resuming from" in line]
    mid_write = {"killed_while_writing": killed, "intact": intact(), "status_changed": status_changed(),
                 "resumed_at_steps": resumed_steps}
    checks.append(Check("dvc stage killed while writing its output", "fault",
                        mid_write["intact"] and mid_write["status_changed"] and bool(resumed_steps)
                        and resumed_steps[0] > 0,
                        "the rerun resumed from the checkpoint; the half-written output was not taken: "
                        "last good models/ranker and dvc.lock untouched, dvc status says train changed",
                        mid_write, skipped=None if killed else "the write window was missed (the run finished first)"))
    run = subprocess.run([executable("dvc"), "repro", "train"], cwd=root, env=env, capture_output=True, text=True)
    with open(log_path, "a") as fh:
        fh.write(run.stdout + run.stderr)
    final = {"exit_code": run.returncode, "status_changed": status_changed(), "new_model": tree_digest(ranker) != good_ranker,
             "leftovers": sorted(p.name for p in ranker.parent.iterdir() if p.name.startswith(".ranker."))}
    checks.append(Check("rerun after the kills completes", "fault",
                        run.returncode == 0 and not final["status_changed"] and final["new_model"] and not final["leftovers"],
                        "dvc repro finishes, status clean, the new model in place, no temporary left", final))
    return checks
