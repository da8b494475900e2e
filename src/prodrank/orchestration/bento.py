"""``bentoml build`` of a given packaged model, offline, with the project's ``bentofile.yaml``.

The service declares ``bentoml.models.BentoModel(<tag>)`` with the tag taken from
``$PRODRANK_MODEL_TAG`` at build time, so setting it packs exactly the challenger into the bento.
``lock_packages: false`` in bentofile.yaml keeps the build offline (stack notes, gotcha 9).
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from prodrank.config import Config
from prodrank.serving.registry import bentoml_home

log = logging.getLogger(__name__)

BENTOFILE = "bentofile.yaml"


class BentoBuildError(RuntimeError):
    """``bentoml build`` failed."""


def bentoml_exe() -> str:
    exe = Path(sys.executable).with_name("bentoml")
    return str(exe) if exe.exists() else "bentoml"


def build(tag: str, cfg: Config, root: Path = Path("."), params: str = "params.yaml",
          timeout: float = 900) -> str:
    """Build a bento serving model ``tag``; returns the bento's tag (``prodrank:<version>``)."""
    bentofile = root / BENTOFILE
    if not bentofile.exists():
        raise BentoBuildError(f"{bentofile} not found: cannot build a bento (set orchestration.build_bento: false "
                              "to promote without one)")
    env = {**os.environ, "PRODRANK_MODEL_TAG": tag, "BENTOML_HOME": str(bentoml_home(cfg)),
           "BENTOML_DO_NOT_TRACK": "true", "HF_HUB_OFFLINE": "1", "PRODRANK_PARAMS": params}
    if cfg.profile != "default":
        env["PRODRANK_PROFILE"] = cfg.profile
    cmd = [bentoml_exe(), "build", "-f", str(bentofile), "-o", "tag", str(root)]
    log.info("building the bento for %s: %s", tag, " ".join(cmd))
    try:
        result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise BentoBuildError(f"bentoml build timed out after {timeout:.0f} s") from err
    output = result.stdout + result.stderr
    found = re.findall(r"__tag__:(\S+)", output)
    if result.returncode != 0 or not found:
        raise BentoBuildError(f"bentoml build failed ({result.returncode}):\n{output[-3000:]}")
    return found[-1]


def bentos_for_model(tag: str, cfg: Config) -> list[str]:
    """Tags of the built bentos (oldest first) that pack model ``tag``."""
    found: list[tuple[float, str]] = []
    for bento_yaml in (bentoml_home(cfg) / "bentos").glob("*/*/bento.yaml"):
        try:
            spec = yaml.safe_load(bento_yaml.read_text()) or {}
        except (OSError, ValueError):
            continue
        models = [*(spec.get("models") or []),  # BentoML 1.4 lists them per service
                  *(m for svc in spec.get("services") or [] if isinstance(svc, dict) for m in svc.get("models") or [])]
        if any(isinstance(m, dict) and str(m.get("tag")) == tag for m in models):
            found.append((bento_yaml.stat().st_mtime, f"{spec.get('name')}:{spec.get('version')}"))
    return [t for _, t in sorted(found)]
