"""The scheduled retrain: ``make schedule`` = a local Prefect server + ``flow.serve`` with a cron.

``python -m prodrank.orchestration.schedule`` (what ``make schedule`` runs):

1. makes sure a Prefect server answers (:func:`prodrank.orchestration.server.ensure`; the
   scheduler lives in the server — Prefect's temporary server cannot schedule);
2. serves the ``prodrank-retrain`` flow as deployment ``prodrank-retrain/<deployment_name>``
   with ``orchestration.schedule_cron`` in ``schedule_timezone``; each scheduled (or manually
   triggered) run executes in a subprocess in this project directory;
3. runs until SIGINT/SIGTERM (Ctrl-C, or ``make schedule-stop``): Prefect pauses the schedule
   ("Pausing all deployments"), and the server is stopped too if this command started it
   (``--keep-server`` leaves it up).

Trigger a run now: ``.venv/bin/prefect deployment run prodrank-retrain/scheduled`` (with
``PREFECT_API_URL`` set, e.g. ``export PREFECT_API_URL=$(python -m prodrank.orchestration.server url)``).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from prodrank.config import Config, load_config
from prodrank.orchestration import env, server

PID_FILE = "schedule.pid"
FLOW_NAME = "prodrank-retrain"


def deployment_name(cfg: Config) -> str:
    return f"{FLOW_NAME}/{cfg.orchestration.deployment_name}"


def build_deployment(cfg: Config, root: Path, params: str = "params.yaml", profile: str | None = None):
    """The retrain flow as a runner deployment with the cron schedule of ``cfg``."""
    from prefect.schedules import Cron  # lazy: prefect; `schedule stop` and `--help` run without it

    from prodrank.orchestration.retrain import retrain  # lazy: prefect, as above

    orch = cfg.orchestration
    return retrain.to_deployment(
        name=orch.deployment_name,
        schedules=[Cron(orch.schedule_cron, timezone=orch.schedule_timezone)],
        parameters={"params": params, "profile": profile, "project_dir": str(root)},
        tags=["prodrank", "retrain", f"profile:{cfg.profile}"],
        description=f"Scheduled retraining of prodrank in {root} (docs/orchestration.md).",
    )


def serve(cfg: Config, root: Path, params: str = "params.yaml", profile: str | None = None,
          start_server: bool = True, keep_server: bool = False) -> int:
    """Serve the scheduled deployment until interrupted; returns an exit status."""
    env.configure(root)
    orch = cfg.orchestration
    started = False
    if start_server:
        info, started = server.ensure(orch.server_host, orch.server_port, max(orch.server_wait_seconds, 60))
    else:
        info = server.discover(orch.server_wait_seconds)
        if info is None:
            print("schedule: no Prefect server answers (set PREFECT_API_URL or drop --no-server)", file=sys.stderr)
            return 1
    os.environ["PREFECT_API_URL"] = info.api_url
    pid_file = env.prefect_home(root) / PID_FILE
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    print(f"schedule: serving {deployment_name(cfg)} — cron '{orch.schedule_cron}' ({orch.schedule_timezone}); "
          f"UI {info.ui_url}; stop with Ctrl-C or `make schedule-stop`", file=sys.stderr, flush=True)
    # until Prefect's runner installs its own SIGTERM handler (graceful stop), SIGTERM interrupts here
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        prefect = env.import_prefect()
        prefect.serve(build_deployment(cfg, root, params, profile), pause_on_shutdown=True, limit=1)
    except KeyboardInterrupt:
        pass
    finally:
        pid_file.unlink(missing_ok=True)
        if started and not keep_server:
            server.stop()
            print("schedule: stopped the Prefect server it had started", file=sys.stderr)
    print("schedule: stopped", file=sys.stderr)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def stop(root: Path | None = None) -> bool:
    """SIGTERM a running ``make schedule`` (its PID file); True if one was running."""
    pid_file = env.prefect_home(root) / PID_FILE
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    if not server.pid_alive(pid):
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prodrank.orchestration.schedule", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "stop"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--no-server", dest="start_server", action="store_false",
                        help="use the server in $PREFECT_API_URL instead of starting one")
    parser.add_argument("--keep-server", action="store_true", help="leave the Prefect server running on exit")
    args = parser.parse_args(argv)
    root = Path.cwd().resolve()
    if args.command == "stop":
        print("schedule: stop signal sent" if stop(root) else "schedule: not running", file=sys.stderr)
        return 0
    cfg = load_config(args.params, args.profile)
    return serve(cfg, root, args.params, args.profile, args.start_server, args.keep_server)


if __name__ == "__main__":
    sys.exit(main())
