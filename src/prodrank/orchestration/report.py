"""The retrain summary: ``reports/retrain/<run>.json`` and ``.md``, and a Prefect markdown artifact."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from prodrank.io import write_json, write_text

log = logging.getLogger(__name__)

REPORT_DIR = Path("reports/retrain")
ARTIFACT_KEY = "retrain-summary"
SHOWN_METRICS = ("ndcg@5", "ndcg@10", "mrr", "map", "auc")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def benchmark_table(champion: dict | None, challenger: dict | None) -> list[str]:
    """Markdown rows: per task and metric, champion vs challenger on the benchmark."""
    def model(summary: dict | None) -> dict:
        return ((summary or {}).get("methods") or {}).get("prodrank") or {}

    ours, theirs = model(challenger), model(champion)
    rows = ["| target | metric | champion | challenger | Δ |", "|---|---|---|---|---|"]
    for target in sorted(set(ours) | set(theirs)):
        for metric in SHOWN_METRICS:
            a, b = theirs.get(target, {}).get(metric), ours.get(target, {}).get(metric)
            if a is None and b is None:
                continue
            delta = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
            rows.append(f"| {target} | {metric} | {_fmt(a)} | {_fmt(b)} | {_fmt(delta)} |")
    return rows


def render_markdown(summary: dict[str, Any]) -> str:
    decision = summary.get("decision") or {}
    data = summary.get("data") or {}
    drop = data.get("drop") or {}
    lines = [
        f"# Retrain {summary['run_id']}: **{summary['status']}**",
        "",
        f"**Why:** {decision.get('reason') or summary.get('error') or '—'}",
        "",
        "| | |",
        "|---|---|",
        f"| started / finished (UTC) | {summary.get('started_at')} / {summary.get('finished_at')} |",
        f"| champion before → after | `{summary.get('champion_before')}` → `{summary.get('champion_after')}` |",
        f"| challenger | `{(summary.get('challenger') or {}).get('tag')}` |",
        f"| promotion rule | {decision.get('metric')} on the benchmark, margin {decision.get('margin')} |",
        f"| champion / challenger / Δ | {_fmt(decision.get('champion_score'))} / {_fmt(decision.get('challenger_score'))}"
        f" / {_fmt(decision.get('delta'))} |",
        f"| data drop | {drop.get('id') or drop.get('name') or '—'} ({drop.get('kind', '—')}, "
        f"origin {(drop.get('origin') or {}).get('type', '—')}) |",
        f"| drop DVC md5 | {drop.get('dvc_md5') or '—'} |",
        f"| prepared data version | {(data.get('prepared_version') or {}).get('md5') or '—'} |",
        f"| benchmark | {(summary.get('benchmark') or {}).get('n_queries', '—')} queries, "
        f"frozen {(summary.get('benchmark') or {}).get('created_at', '—')} |",
        f"| bento | {(summary.get('bento') or {}).get('tag') or (summary.get('bento') or {}).get('note') or '—'} |",
        f"| workspace | {summary.get('workspace') or '—'} |",
        f"| flow run | {summary.get('flow_run_id') or '—'} |",
    ]
    gate = (summary.get("challenger") or {}).get("quality_gate")
    if gate:
        lines += ["", f"**Quality gate (test split):** {'passed' if gate.get('passed') else 'failed'}"]
        lines += [f"- {p}" for p in gate.get("problems") or []]
    champion = (summary.get("champion") or {}).get("benchmark")
    challenger = (summary.get("challenger") or {}).get("benchmark")
    if champion or challenger:
        lines += ["", "## On the benchmark", "", *benchmark_table(champion, challenger)]
    if summary.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in summary["notes"]]]
    if summary.get("error"):
        lines += ["", "## Error", "", "```", str(summary["error"])[-4000:], "```"]
    if summary.get("commit"):
        lines += ["", "## To commit", "", *[f"- `{p}`" for p in summary["commit"]]]
    return "\n".join(lines) + "\n"


def paths_for(run_id: str, root: Path = Path(".")) -> dict[str, str]:
    directory = root / REPORT_DIR
    return {"json": str(directory / f"{run_id}.json"), "markdown": str(directory / f"{run_id}.md"),
            "details": str(directory / run_id)}


def write(summary: dict[str, Any], root: Path = Path(".")) -> dict[str, str]:
    """Write the JSON and markdown summaries (and ``latest.json``); returns their paths."""
    directory = root / REPORT_DIR
    json_path, md_path = directory / f"{summary['run_id']}.json", directory / f"{summary['run_id']}.md"
    markdown = render_markdown(summary)
    write_json(summary, json_path)
    write_text(markdown, md_path)
    write_json(summary, directory / "latest.json")
    return {"json": str(json_path), "markdown": str(md_path)}


def publish_artifact(summary: dict[str, Any]) -> str | None:
    """The summary as a Prefect markdown artifact of the current flow run (None outside one)."""
    try:
        from prefect.artifacts import (
            create_markdown_artifact,  # lazy: prefect; the report is written without it
        )
        from prefect.context import get_run_context

        get_run_context()
    except Exception:  # noqa: BLE001 - not in a flow run (e.g. `.fn` in tests)
        return None
    try:
        artifact = create_markdown_artifact(markdown=render_markdown(summary), key=ARTIFACT_KEY,
                                            description=f"retrain {summary['run_id']}: {summary['status']}")
        return str(getattr(artifact, "id", artifact))
    except Exception as err:  # noqa: BLE001 - the report files are the record; the artifact is a copy
        log.warning("could not create the Prefect artifact: %s", err)
        return None


def read(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
