"""The evaluation report as a page: the Markdown report's content, every method of the summary
whatever its name, plots inlined as PNG, and the page rendered by headless Chromium with the
network cut."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from prodrank.evaluation.report import render, render_html
from prodrank.evaluation.targets import MODEL, ORACLE
from tools.browser import open_page
from tools.screenshot import chromium

TARGETS = ("click", "purchase", "click_true")


def summary() -> dict:
    values = {MODEL: 0.81, "student": 0.79, "bm25": 0.74, "production": 0.70, ORACLE: 0.95}
    methods = {m: {t: {"ndcg@10": v - 0.01 * i, "ndcg@10_ci": [v - 0.01 * i - 0.02, v - 0.01 * i + 0.02],
                       "ndcg@5": v - 0.05, "mrr": v - 0.1, "map": v - 0.12, "auc": 0.7}
                   for i, t in enumerate(TARGETS)} for m, v in values.items()}
    significance = {b: {f"{t}.ndcg@10": {"diff": values[MODEL] - values[b], "p_value": 0.001 if b != "student" else 0.2,
                                         "queries": 30} for t in TARGETS} for b in ("student", "bm25", "production")}
    return {"n_queries": 30, "methods": methods, "significance": significance}


def slices() -> pd.DataFrame:
    return pd.DataFrame([{"slice": s, "target": t, "method": m, "ndcg@10": 0.5 + 0.1 * j, "queries": 10}
                         for j, s in enumerate(("synonym", "head", "tail")) for t in TARGETS
                         for m in (MODEL, "student", "bm25")])


def test_the_page_holds_what_the_markdown_says_for_every_method():
    data, table = summary(), slices()
    html = render_html(data, table, "ndcg@10", ["click.ndcg@10 = 0.1 is below 0.5"], "eval <test>")
    markdown = render(data, table, "ndcg@10", ["click.ndcg@10 = 0.1 is below 0.5"], "eval <test>")
    assert "<title>eval &lt;test&gt;</title>" in html
    for method in ("student", "bm25", "production", ORACLE):  # methods come from the summary, by name
        assert html.count(f"<td>{method}</td>") == len(TARGETS)
    assert "class='fail'>FAILED: click.ndcg@10 = 0.1 is below 0.5" in html
    assert "<strong>click ndcg@10: the model beats every baseline significantly — DOES NOT HOLD.</strong>" in html
    assert "Not significantly better than: student" in markdown and "Not significantly better than: student" in html
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) == 3  # CI, baselines, slices
    assert "http://" not in html and "https://" not in html  # nothing to fetch


def test_the_page_renders_offline_in_headless_chromium(tmp_path):
    if chromium() is None:
        pytest.fail("no Chromium: apt-get install -y chromium (or set $CHROMIUM)")
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(summary(), slices(), "ndcg@10", [], "evaluation"))
    with open_page(page_file.as_uri()) as page:
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, i.alt])")
        rows = page.evaluate("document.querySelectorAll('table tr').length")
    assert len(images) == 3 and all(done and width > 300 for done, width, _ in images), images
    assert rows == len(TARGETS) * 6  # a header and five methods per task


def test_a_corrected_models_examination_curve_is_shown_beside_the_worlds():
    data = {**summary(), "examination": {
        "method": "tower", "positions": [1, 2, 3], "examination": {"all": [1.0, 0.52, 0.31]},
        "tower": {"click": [1.0, 0.49, 0.35]}, "world": [1.0, 0.5, 0.333333], "clip": 0.1,
        "estimator": "intervention harvesting"}}
    markdown = render(data, slices(), "ndcg@10", [], "evaluation")
    assert "| position | estimated from the log | tower, click | world (truth) |" in markdown
    assert "| 2 | 0.520 | 0.490 | 0.500 |" in markdown
    html = render_html(data, slices(), "ndcg@10", [], "evaluation")
    assert '<img alt="examination by position"' in html and "position_debiasing: tower" in html
    assert "Position bias" not in render(summary(), slices(), "ndcg@10", [], "evaluation")  # none without a correction
