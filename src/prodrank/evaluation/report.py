"""The evaluation report: Markdown tables a reviewer reads, with the claims checked plainly."""
from __future__ import annotations

import pandas as pd

from prodrank.evaluation.targets import MODEL, ORACLE, TRUE_SUFFIX, is_expected_rate


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def claims(summary: dict, key: str, alpha: float = 0.05) -> list[str]:
    """The paper's claim, checked per task: the model beats every baseline, significantly."""
    lines = []
    model = summary["methods"][MODEL]
    for target in model:
        beaten, lost = [], []
        for baseline, tests in summary["significance"].items():
            test = tests.get(f"{target}.{key}")
            if test is None:
                continue
            (beaten if test["diff"] > 0 and test["p_value"] < alpha else lost).append(
                f"{baseline} (Δ={test['diff']:+.4f}, p={test['p_value']:.3g})")
        verdict = "HOLDS" if beaten and not lost else "DOES NOT HOLD"
        lines.append(f"- **{target} {key}: the model beats every baseline significantly — {verdict}.**"
                     + (f" Not significantly better than: {', '.join(lost)}." if lost else ""))
        oracle = summary["methods"].get(ORACLE, {}).get(target, {}).get(key)
        production = summary["methods"].get("production", {}).get(target, {}).get(key)
        logged = not target.endswith(TRUE_SUFFIX)
        if logged and oracle is not None and production is not None and oracle < production:
            unbiased = f"`{target}{TRUE_SUFFIX}`" if target + TRUE_SUFFIX in model else "the true-relevance rows"
            lines.append(f"  - Caution: on {target} the logged production order ({production:.4f}) scores above the "
                         f"oracle ranking by true relevance ({oracle:.4f}). Logged engagement is shaped by the "
                         "position bias of the ranker that produced it, so this metric rewards agreement with the "
                         f"logging policy; {unbiased} is the unbiased comparison.")
    return lines


def render(summary: dict, slices: pd.DataFrame, key: str, gate_problems: list[str], title: str) -> str:
    methods = summary["methods"]
    targets = list(methods[MODEL])
    out = [f"# {title}", "", f"{summary['n_queries']} held-out queries. Metric gains: the logged event rate per "
           "pair for engagement tasks (`click` ...); where the data has ground truth, the expected event rate per "
           "examined impression (`click_true` ..., no position bias) and the true graded relevance (0–3, "
           "`relevance_true`). 95 % bootstrap CIs over queries; p-values from a paired sign-flip randomisation test "
           "of the model against each baseline.", ""]
    out += ["## Claims", "", *claims(summary, key)]
    for target in (t for t in targets if t.endswith(TRUE_SUFFIX)):
        # the ceiling of a ground-truth target is ranking by that truth itself: NDCG 1.0
        ours = methods[MODEL][target].get(key)
        if ours is not None:
            by_relevance = methods.get(ORACLE, {}).get(target, {}).get(key)
            out.append(f"- Gap to the oracle ceiling on {target} {key}: {1.0 - ours:.4f} (model {ours:.4f}, "
                       "oracle 1.0" + (f"; ranking by true relevance alone {by_relevance:.4f}" if by_relevance
                                      is not None and is_expected_rate(target) else "") + ").")
    out += ["", "## Quality gate", ""]
    out += [f"- FAILED: {p}" for p in gate_problems] or ["- passed"]
    for target in targets:
        out += ["", f"## {target}", "", f"| method | {key} (95 % CI) | ndcg@5 | MRR | MAP | AUC |", "|---|---|---|---|---|---|"]
        for method in sorted(methods, key=lambda m: -(methods[m].get(target, {}).get(key) or -1)):
            m = methods[method].get(target)
            if not m:
                continue
            ci = m.get(f"{key}_ci")
            ci_text = f" ({ci[0]:.4f}–{ci[1]:.4f})" if ci else ""
            out.append(f"| {'**' + method + '**' if method == MODEL else method} | {_fmt(m.get(key))}{ci_text} | "
                       f"{_fmt(m.get('ndcg@5'))} | {_fmt(m.get('mrr'))} | {_fmt(m.get('map'))} | {_fmt(m.get('auc'))} |")
    if not slices.empty:
        out += ["", f"## {key} by slice (vocabulary-gap tags, query frequency)", ""]
        for target in targets:
            table = slices[slices["target"] == target].pivot_table(index="slice", columns="method", values=key)
            counts = slices[slices["target"] == target].groupby("slice")["queries"].max()
            columns = [c for c in (MODEL, *sorted(c for c in table.columns if c not in (MODEL, ORACLE)), ORACLE) if c in table.columns]
            out += [f"### {target}", "", "| slice | queries | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
            for name, row in table.iterrows():
                out.append(f"| {name} | {counts[name]} | " + " | ".join(_fmt(row[c]) for c in columns) + " |")
            out.append("")
    return "\n".join(out) + "\n"
