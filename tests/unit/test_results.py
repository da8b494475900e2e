"""`prodrank report`: recorded metrics become docs/results.md and the README's results table."""
from __future__ import annotations

import json

import pytest

from prodrank.config import load_config
from prodrank.evaluation import results
from tests.conftest import PROJECT_ROOT


def evaluation(model: float, bm25: float, p: float, target: str = "click_true") -> dict:
    return {"methods": {"prodrank": {target: {"ndcg@10": model}, "click": {"ndcg@10": 0.4}},
                        "bm25": {target: {"ndcg@10": bm25}, "click": {"ndcg@10": 0.3}}},
            "significance": {"bm25": {f"{target}.ndcg@10": {"diff": model - bm25, "p_value": p, "queries": 9},
                                      "click.ndcg@10": {"diff": 0.1, "p_value": 0.5, "queries": 9}}},
            "n_queries": 9, "quality_gate": {"passed": True}}


def workspace(root, metrics: dict, ablations: list | None = None) -> None:
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "metrics" / "evaluate.json").write_text(json.dumps(metrics))
    if ablations is not None:
        (root / "reports" / "ablations").mkdir(parents=True, exist_ok=True)
        (root / "reports" / "ablations" / "ablations.json").write_text(json.dumps(ablations))


def test_report_writes_the_page_and_replaces_only_the_readme_block(tmp_path):
    cfg = load_config(PROJECT_ROOT / "params.yaml", "default")
    (tmp_path / "README.md").write_text(f"# intro\n\n{results.BEGIN}\nold hand-typed table\n{results.END}\n\n## after\n")
    ablations = [{"variant": "full_model", "target": "click_true", "ndcg@10": 0.8, "diff_vs_full": 0.0, "p_value": float("nan")},
                 {"variant": "no_chaining", "target": "click_true", "ndcg@10": 0.75, "diff_vs_full": -0.05, "p_value": 0.002}]
    workspace(tmp_path, evaluation(0.8, 0.7, 0.001), ablations)
    results.report(cfg, tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "old hand-typed table" not in readme and readme.startswith("# intro") and readme.endswith("## after\n")
    # only the ground-truth target is a headline target when the data has one
    assert "| method | default: click_true |" in readme and "| **prodrank** | **0.800** |" in readme
    assert "prodrank beats every baseline on every target (paired test, largest p = 0.001)" in readme
    page = (tmp_path / "docs" / "results.md").read_text()
    assert "| BM25 (bm25s) | 0.700 (Δ +0.100, p=0.001) |" in page
    assert "| no_chaining | 0.750 (-0.050, p=0.002) |" in page and "| full_model | 0.800 |" in page

    # a second profile adds its columns; the default stays as recorded
    real = cfg.model_copy(update={"profile": "home_depot"})
    workspace(tmp_path, evaluation(0.9, 0.89, 0.2, target="relevance"))
    (tmp_path / "reports" / "ablations" / "ablations.json").unlink()
    results.report(real, tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "| method | default: click_true | home_depot: relevance | home_depot: click |" in readme
    assert "`home_depot`: prodrank does not beat every baseline on every target" in readme
    recorded = json.loads((tmp_path / "docs" / "results" / "default.json").read_text())
    assert recorded["evaluation"]["methods"]["prodrank"]["click_true"]["ndcg@10"] == 0.8


def test_report_without_metrics_or_block_says_what_to_do(tmp_path):
    cfg = load_config(PROJECT_ROOT / "params.yaml", "default")
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        results.report(cfg, tmp_path)
    workspace(tmp_path, evaluation(0.8, 0.7, 0.001))
    (tmp_path / "README.md").write_text("# no block\n")
    with pytest.raises(ValueError, match="no results block"):
        results.report(cfg, tmp_path)
