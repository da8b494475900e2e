"""Put the DVC workspace back the way it was when a retrain does not promote its challenger.

Before the retrain flow changes anything it takes a :class:`Snapshot`: ``params.yaml``,
``dvc.lock`` and every output DVC does not cache (``cache: false`` metrics, plots and reports,
read from ``dvc.yaml``). :meth:`Snapshot.restore` copies them back and runs
``dvc checkout --force``, which restores the cached outputs (``data/``, ``models/``) that
``dvc.lock`` names from the DVC cache. So after a rejected or failed retrain the workspace is
the champion's again: ``dvc status`` is clean and a ``dvc repro`` is a no-op. Accepted drops
stay versioned in ``datasets/`` for the record.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import yaml

from prodrank.orchestration.drops import run_dvc

log = logging.getLogger(__name__)

TRACKED_FILES = ("params.yaml", "dvc.lock")


def uncached_outputs(dvc_yaml: Path) -> list[str]:
    """Paths of ``cache: false`` outs/metrics/plots in dvc.yaml."""
    spec = yaml.safe_load(dvc_yaml.read_text()) or {}
    found: list[str] = []
    for stage in (spec.get("stages") or {}).values():
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key) or []:
                if isinstance(entry, dict):
                    for path, options in entry.items():
                        if isinstance(options, dict) and options.get("cache") is False:
                            found.append(path)
    return sorted(set(found))


def _copy(source: Path, target: Path) -> None:
    """Copy a file or a directory tree to ``target``, creating its parent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


class Snapshot:
    """Saved copies of the workspace files DVC cannot restore by itself."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="prodrank-retrain-", dir=self.root / ".dvc" / "tmp"))
        dvc_yaml = self.root / "dvc.yaml"
        self.paths = [*TRACKED_FILES, *(uncached_outputs(dvc_yaml) if dvc_yaml.exists() else [])]
        self.present: set[str] = set()
        for rel in self.paths:
            source = self.root / rel
            if not source.exists():
                continue
            _copy(source, self.dir / rel)
            self.present.add(rel)

    def restore(self) -> None:
        for rel in self.paths:
            target = self.root / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            if rel in self.present:
                _copy(self.dir / rel, target)
        if "dvc.lock" in self.present:
            try:
                run_dvc(["checkout", "--force", "-q"], self.root)
            except RuntimeError as err:  # e.g. an output never cached: leave it, say so
                log.warning("dvc checkout after restoring the workspace: %s", err)
        log.info("workspace restored: %s and the cached outputs dvc.lock names", ", ".join(sorted(self.present)))

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
