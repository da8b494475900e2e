"""The evaluation report: Markdown tables a reviewer reads, with the claims checked plainly, and
the same report as a self-contained HTML page with plots (``report.html``)."""
from __future__ import annotations

import re
from html import escape

import pandas as pd

from prodrank.evaluation.targets import MODEL, ORACLE, TEACHER, TRUE_SUFFIX, is_expected_rate


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
            if test is None or baseline == TEACHER:  # the teacher is what the served model was distilled from
                continue
            (beaten if test["diff"] > 0 and test["p_value"] < alpha else lost).append(
                f"{baseline} (Δ={test['diff']:+.4f}, p={test['p_value']:.3g})")
        verdict = "HOLDS" if beaten and not lost else "DOES NOT HOLD"
        lines.append(f"- **{target} {key}: the model beats every baseline significantly — {verdict}.**"
                     + (f" Not significantly better than: {', '.join(lost)}." if lost else ""))
        distilled = summary["significance"].get(TEACHER, {}).get(f"{target}.{key}")
        if distilled is not None:
            lines.append(f"  - The served student against the teacher it was distilled from: Δ={distilled['diff']:+.4f} "
                         f"(p={distilled['p_value']:.3g}).")
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
    out += examination_table(summary.get("examination"))
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


# -- the same report as one self-contained HTML page -----------------------------------------
CSS = """body{font:15px/1.45 system-ui,sans-serif;color:#1d2430;max-width:1100px;margin:24px auto;padding:0 16px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #e4e7ec;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}.model{font-weight:600}.fail{color:#b42318}img{max-width:100%}"""


def _figure(label: str, size: tuple[float, float]):
    """A matplotlib Figure outside pyplot (no global figure registry, no GUI backend), imported
    when a report is written: a second that every command importing the evaluation would pay."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    fig.set_label(label)
    return fig


def _task_grid(n: int, rows_per_panel: int, label: str):
    """A figure with one panel per task, at most four across; panels left over are hidden."""
    ncols = min(4, n)
    nrows = -(-n // ncols)
    fig = _figure(label, (3.6 * ncols, (0.3 * rows_per_panel + 1.0) * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _figure_png(fig) -> str:
    """A matplotlib figure as an ``<img>`` with the PNG inlined (the page loads nothing else)."""
    import base64
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="{escape(fig.get_label())}" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _methods_by_score(methods: dict, target: str, key: str) -> list[str]:
    """Every method with ``key`` on ``target``, best first, whatever its name."""
    return sorted((m for m in methods if methods[m].get(target, {}).get(key) is not None),
                  key=lambda m: -methods[m][target][key])


def ci_plot(summary: dict, key: str) -> str:
    """Per task, every method's ``key`` with its 95 % CI, the model highlighted."""
    methods, targets = summary["methods"], list(summary["methods"][MODEL])
    fig, axes = _task_grid(len(targets), len(methods), f"{key} per task with 95 % CI")
    for ax, target in zip(axes, targets, strict=True):
        names = _methods_by_score(methods, target, key)[::-1]
        values = [methods[m][target][key] for m in names]
        cis = [methods[m][target].get(f"{key}_ci") or [v, v] for m, v in zip(names, values, strict=True)]
        errors = [[v - lo for v, (lo, _) in zip(values, cis, strict=True)],
                  [hi - v for v, (_, hi) in zip(values, cis, strict=True)]]
        ax.barh(names, values, xerr=errors, capsize=3,
                color=["#2563eb" if m == MODEL else "#98a2b3" for m in names])
        ax.set_title(target, fontsize=10)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"{key} per task, 95 % bootstrap CI", fontsize=11)
    fig.tight_layout()
    return _figure_png(fig)


def baseline_plot(summary: dict, key: str) -> str:
    """Per task, the model's ``key`` minus each baseline's (paired over queries), p < 0.05 solid."""
    rows = [(baseline, target.removesuffix(f".{key}"), test["diff"], test["p_value"])
            for baseline, tests in summary["significance"].items() for target, test in tests.items()]
    if not rows:
        return "<p>No baseline was compared.</p>"
    targets = list(dict.fromkeys(r[1] for r in rows))
    baselines = list(dict.fromkeys(r[0] for r in rows))
    fig, axes = _task_grid(len(targets), len(baselines), f"{MODEL} minus each baseline")
    for ax, target in zip(axes, targets, strict=True):
        found = {b: (d, p) for b, t, d, p in rows if t == target}
        names = [b for b in baselines if b in found][::-1]
        ax.barh(names, [found[b][0] for b in names],
                color=["#2563eb" if found[b][1] < 0.05 else "#d0d5dd" for b in names])
        ax.axvline(0, color="#1d2430", linewidth=0.8)
        ax.set_title(target, fontsize=10)
        ax.tick_params(labelsize=8)
    fig.suptitle(f"{MODEL} minus baseline, {key} (solid: p < 0.05, paired randomisation test)", fontsize=11)
    fig.tight_layout()
    return _figure_png(fig)


def slice_plot(slices: pd.DataFrame, key: str) -> str:
    """Per task, ``key`` by slice for every method."""
    targets = list(dict.fromkeys(slices["target"]))
    names = list(dict.fromkeys(slices["slice"]))
    methods = [MODEL, *sorted(m for m in set(slices["method"]) if m != MODEL)]
    fig = _figure(f"{key} by slice", (10, 2.6 * len(targets)))
    axes = fig.subplots(len(targets), 1, squeeze=False)
    width = 0.8 / len(methods)
    for ax, target in zip(axes[:, 0], targets, strict=True):
        table = slices[slices["target"] == target].pivot_table(index="slice", columns="method", values=key)
        for i, method in enumerate(m for m in methods if m in table.columns):
            values = table[method].reindex(names)
            ax.bar([j + i * width for j in range(len(names))], values, width, label=method,
                   color="#2563eb" if method == MODEL else None)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, fontsize=8)
        ax.set_title(target, fontsize=10)
        ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=7, ncols=4)
    fig.tight_layout()
    return _figure_png(fig)


def _inline_markdown(text: str) -> str:
    """The claims' Markdown (``**bold**``, ```code```) as HTML, everything else escaped."""
    html = escape(text.strip().removeprefix("- "))
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", html)


def examination_curves(record: dict) -> dict[str, list[float]]:
    """The examination curves of a position-bias correction, by name: the estimate from the train
    log, the position tower's per task, and the world's true one where the data is simulated."""
    curves = {"estimated from the log": record["examination"]["all"]}
    curves.update({f"tower, {task}": curve for task, curve in record.get("tower", {}).items()})
    if record.get("world") is not None:
        curves["world (truth)"] = record["world"]
    return curves


def examination_table(record: dict | None) -> list[str]:
    """Markdown: the model's examination curve beside the world's, per position."""
    if not record:
        return []
    curves = examination_curves(record)
    out = ["", "## Position bias", "",
           f"Trained with `train.position_debiasing: {record['method']}`. Examination by shown position, 1 at "
           f"position 1, estimated on the train log by {record['estimator']}; inverse propensities are capped at "
           f"1/{record['clip']:g}.", "", "| position | " + " | ".join(curves) + " |", "|---" * (len(curves) + 1) + "|"]
    for i, position in enumerate(record["positions"]):
        out.append(f"| {position} | " + " | ".join(f"{c[i]:.3f}" for c in curves.values()) + " |")
    return out


def examination_plot(record: dict | None) -> str:
    """The examination curves against position (HTML ``<img>``), or nothing without a correction."""
    if not record:
        return ""
    fig = _figure("examination by position", (6.0, 3.6))
    ax = fig.subplots()
    for name, curve in examination_curves(record).items():
        ax.plot(record["positions"], curve, marker="o", markersize=3, label=name,
                linestyle="--" if name.startswith("world") else "-")
    ax.set_xlabel("shown position")
    ax.set_ylabel("examination (position 1 = 1)")
    ax.legend(fontsize=8)
    return (f"<h2>Position bias</h2><p>Trained with <code>train.position_debiasing: {escape(record['method'])}"
            "</code>; report.md has the numbers.</p>" + _figure_png(fig))


def render_html(summary: dict, slices: pd.DataFrame, key: str, gate_problems: list[str], title: str) -> str:
    """The evaluation report as one self-contained page: the same claims, gate, tables and slices
    as :func:`render`, from the same summary, with the plots inlined as PNG; every method in the
    summary appears, whatever its name."""
    methods = summary["methods"]
    targets = list(methods[MODEL])
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>",
           f"<p>{summary['n_queries']} held-out queries; 95 % bootstrap CIs over queries; p-values from a paired "
           "sign-flip randomisation test of the model against each baseline (report.md explains the gains).</p>",
           "<h2>Claims</h2><ul>", *(f"<li>{_inline_markdown(line)}</li>" for line in claims(summary, key)), "</ul>",
           "<h2>Quality gate</h2><ul>",
           *([f"<li class='fail'>FAILED: {escape(p)}</li>" for p in gate_problems] or ["<li>passed</li>"]), "</ul>",
           f"<h2>{escape(key)} per task</h2>", ci_plot(summary, key),
           "<h2>Against each baseline</h2>", baseline_plot(summary, key)]
    for target in targets:
        out += [f"<h3>{escape(target)}</h3><table><tr><th>method</th><th>{escape(key)}</th><th>95 % CI</th>"
                "<th>ndcg@5</th><th>MRR</th><th>MAP</th><th>AUC</th></tr>"]
        for method in _methods_by_score(methods, target, key):
            m = methods[method][target]
            ci = m.get(f"{key}_ci")
            out.append(f"<tr class='{'model' if method == MODEL else ''}'><td>{escape(method)}</td><td>{_fmt(m.get(key))}"
                       f"</td><td>{f'{ci[0]:.4f}–{ci[1]:.4f}' if ci else '–'}</td><td>{_fmt(m.get('ndcg@5'))}</td>"
                       f"<td>{_fmt(m.get('mrr'))}</td><td>{_fmt(m.get('map'))}</td><td>{_fmt(m.get('auc'))}</td></tr>")
        out.append("</table>")
    if not slices.empty:
        out += [f"<h2>{escape(key)} by slice (vocabulary-gap tags, query frequency)</h2>", slice_plot(slices, key)]
    out.append(examination_plot(summary.get("examination")))
    return "\n".join(out) + "\n</body></html>\n"
