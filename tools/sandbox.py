"""A throwaway copy of the project to run the real pipeline in, without touching the project.

The drift demo (:mod:`tools.monitoring.demo_drift`) and the reliability suite
(:mod:`tools.reliability`) both need a workspace with its own DVC repository, BentoML store
and Prefect home, on a fast configuration: :func:`make_workspace` copies the sources and
configuration into a new folder and applies dotted ``params.yaml`` overrides;
:func:`workspace_env` is the environment that points every tool at that folder.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COPY = ("params.yaml", "dvc.yaml", "bentofile.yaml", "expectations", "src", "flows", "pyproject.toml")
FAST_PARAMS = {  # the tiny pipeline in about a minute (as the orchestration tests run it)
    "profile": "tiny",
    "pretrain.enabled": False,
    "evaluate.baselines": ["random", "production"],
    "evaluate.bootstrap_samples": 20,
    "orchestration.prefect": "off",
    "orchestration.build_bento": False,
}


def set_params(path: Path, updates: dict[str, Any]) -> None:
    """Apply ``{"section.key": value}`` overrides to a params.yaml file."""
    params = yaml.safe_load(path.read_text())
    for dotted, value in updates.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def executable(name: str) -> str:
    """A console script of this interpreter's environment (dvc, prodrank, bentoml)."""
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def run_command(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
    """Run ``cmd``; raise with the tail of its output when it fails."""
    out = open(log_path, "w") if log_path else subprocess.PIPE
    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    finally:
        if log_path:
            out.close()
    if result.returncode != 0:
        tail = log_path.read_text()[-3000:] if log_path else (result.stdout or "")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{tail}")


def make_workspace(directory: Path, params: dict[str, Any]) -> Path:
    """The project's sources and configuration in ``directory``, a DVC repository of its own,
    with the dotted ``params`` overrides applied."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        elif source.is_file():
            shutil.copy2(source, directory / name)
    set_params(directory / "params.yaml", params)
    if not (directory / ".dvc").exists():
        run_command([executable("dvc"), "init", "--no-scm", "-q"], directory)
    return directory


def workspace_env(root: Path) -> dict[str, str]:
    """This process's environment with every tool pointed at the workspace ``root``."""
    env = dict(os.environ)
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", BENTOML_HOME=str(root / ".bentoml"),
               PREFECT_HOME=str(root / ".prefect"), PRODRANK_PREFECT="off", BENTOML_DO_NOT_TRACK="true",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", DVC_NO_ANALYTICS="1",
               GX_ANALYTICS_ENABLED="false", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW="ignore", PRODRANK_PARAMS=str(root / "params.yaml"))
    env.pop("PRODRANK_MODEL_TAG", None)
    env.pop("PREFECT_API_URL", None)
    env.pop("PRODRANK_PROFILE", None)
    return env
