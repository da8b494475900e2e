"""End to end: `dvc repro` on the tiny profile in a fresh copy of the project, a no-op
re-run, push/pull through the local remote, and a validation failure that stops the
pipeline while the last good artefacts stay intact."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from prodrank.serving.process import ServerProcess, free_port, request
from tests.conftest import PROJECT_ROOT
from tools import sandbox
from tools.reliability.faults import tree_digest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def make_env(cwd: Path) -> dict[str, str]:
    """The environment the Makefile gives its commands in the project at ``cwd``: the venv first on
    PATH and the project's own BentoML store."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "BENTOML_HOME": str(cwd / ".bentoml")}


def sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = make_env(cwd)
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def fresh_copy(destination: Path) -> Path:
    """The working tree as git sees it (tracked + untracked, not ignored), in a new git repo."""
    files = sh(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], PROJECT_ROOT).stdout
    for name in filter(None, files.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    sh(["git", "init", "-q"], destination)
    return destination


def set_params(root: Path, **updates) -> None:
    sandbox.set_params(root / "params.yaml", updates)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The README's order on a fresh copy: `make test` (a packaging test of it, as the Makefile runs
    it, with the project's store exported), then `make run` (`dvc repro`, tiny profile)."""
    root = fresh_copy(tmp_path_factory.mktemp("project"))
    set_params(root, profile="tiny")
    remote = tmp_path_factory.mktemp("remote")
    sh([str(BIN / "dvc"), "remote", "modify", "local", "url", str(remote)], root)
    sh([str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", "tests/serving/test_registry.py", "-k", "package_stage"], root)
    assert not (root / ".bentoml").exists(), "the tests wrote into the project's BentoML store"
    sh([str(BIN / "dvc"), "repro"], root)
    return root


def test_repro_runs_every_stage_and_writes_metrics(project):
    for path in ("data/raw/catalog.parquet", "data/prepared/train/interactions.parquet", "models/pretrained/config.json",
                 "models/ranker/ranker.json", "reports/evaluation/report.md", "reports/validation/summary.json"):
        assert (project / path).exists(), path
    evaluation = json.loads((project / "metrics/evaluate.json").read_text())
    assert {"prodrank", "bm25", "random", "production"} <= set(evaluation["methods"])
    # logged and ground-truth (position-bias free) targets for every task, plus true relevance
    assert {"click", "purchase", "click_true", "purchase_true", "relevance_true"} <= set(evaluation["methods"]["prodrank"])
    pretrain = json.loads((project / "metrics/pretrain.json").read_text())
    assert pretrain["perplexity_final"] < pretrain["perplexity_start"]  # domain pretraining learned something
    shown = sh([str(BIN / "dvc"), "metrics", "show", "--json"], project).stdout
    assert "best_valid_ndcg@10" in shown


def test_serve_serves_the_model_run_packaged(project):
    """`make serve` after `make run`: it names the model it serves, and /metadata is the packaged one."""
    manifest = json.loads((project / "models/package.json").read_text())
    assert manifest["champion"] == manifest["tag"] and manifest["promotion"]["promote"]
    port, log_path = free_port(), project / "serve.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([str(BIN / "prodrank"), "serve", "--port", str(port)], cwd=project, env=make_env(project),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_ready(180)
        status, body = request(server.url, "GET", "/metadata")
        served = json.loads(body)
        assert status == 200 and (served["model_tag"], served["profile"]) == (manifest["tag"], "tiny")
        assert f"serving {manifest['tag']} (champion, profile 'tiny', click.ndcg@10 " in log_path.read_text()
    finally:
        server.stop()


def test_second_repro_is_a_fast_no_op(project):
    start = time.perf_counter()
    result = sh([str(BIN / "dvc"), "repro"], project)
    elapsed = time.perf_counter() - start
    assert "didn't change, skipping" in result.stdout or "up to date" in result.stdout
    # only the input check runs (always); it finds the inputs unchanged, so nothing else does
    assert [line for line in result.stdout.splitlines() if line.startswith("Running stage")] == ["Running stage 'inputs':"]
    assert elapsed < 10, f"no-op dvc repro took {elapsed:.1f}s"


def test_push_then_pull_into_a_clean_clone_restores_data(project, tmp_path):
    sh([str(BIN / "dvc"), "push"], project)
    clone = tmp_path / "clone"
    shutil.copytree(project, clone, ignore=shutil.ignore_patterns("data", "models", ".dvc/cache", ".dvc/tmp"))
    sh([str(BIN / "dvc"), "pull"], clone)
    for path in ("data/raw", "data/prepared", "models/ranker"):
        assert tree_digest(clone / path) == tree_digest(project / path), path


def test_evaluate_any_judgments_file_in_the_documented_format(project, tmp_path):
    rows = ["query,product_id,product_title,brand,grade"]
    for q, (query, good) in enumerate([("red sofa", "Acme 3-Seat Sofa in Red"), ("cordless drill", "Volt 20V Cordless Drill"),
                                       ("table lamp", "Lumo Table Lamp in Brass")]):
        rows += [f"{query},G{q},{good},Acme,3", f"{query},B{q}a,Steel Garden Hose 50 ft.,Hoso,1",
                 f"{query},B{q}b,Cotton Bath Towel 6-Pk,Softy,1"]
    judgments = tmp_path / "judgments.csv"
    judgments.write_text("\n".join(rows) + "\n")
    sh([str(BIN / "prodrank"), "evaluate", "--judgments", str(judgments), "--out", str(tmp_path / "out")], project)
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["n_queries"] == 3
    assert {"prodrank", "bm25", "minilm_biencoder"} <= set(result["methods"])
    assert "lambdamart" not in result["methods"]  # needs training data from the same source
    assert result["methods"]["bm25"]["relevance_true"]["ndcg@10"] == 1.0  # the good titles share the query words
    assert result["inputs"] == {str(judgments): hashlib.sha256(judgments.read_bytes()).hexdigest()}


def test_validation_split_evaluation_never_reads_the_test_split(project, tmp_path):
    sh([str(BIN / "prodrank"), "evaluate", "--split", "valid", "--out", str(tmp_path / "valid")], project)
    predictions = pd.read_parquet(tmp_path / "valid" / "predictions.parquet")
    valid = set(pd.read_parquet(project / "data/prepared/valid/queries.parquet")["query_id"])
    test = set(pd.read_parquet(project / "data/prepared/test/queries.parquet")["query_id"])
    evaluated = predictions[predictions["split"] == "evaluated"]
    assert set(evaluated["query_id"]) == valid and not valid & test
    assert not set(predictions["query_id"]) & test  # the drift reference's other splits: train only
    assert set(predictions.loc[predictions["split"] != "evaluated", "split"]) == {"train"}
    assert "valid split" in (tmp_path / "valid" / "report.md").read_text()


def test_ablations_are_trained_and_tabulated(project):
    sh([str(BIN / "prodrank"), "ablate"], project)
    table = json.loads((project / "reports/ablations/ablations.json").read_text())
    variants = {row["variant"] for row in table}
    assert variants == {"full_model", "no_domain_pretraining", "single_task_click"}
    single = [r for r in table if r["variant"] == "single_task_click"]
    assert {r["target"] for r in single} >= {"click", "relevance_true"}  # only its own task, plus true relevance
    full = [r for r in table if r["variant"] == "full_model"]
    assert all(r["diff_vs_full"] == 0 for r in full)
    report = (project / "reports/ablations/ablations.md").read_text()
    assert "| no_domain_pretraining |" in report
    # the two claims, each against the variant that removes what it credits
    assert "## Claims" in report and "(vs no_domain_pretraining)" in report and "(vs single_task_click)" in report


def test_failing_quality_gate_stops_before_packaging(project):
    set_params(project, **{"profiles.tiny.evaluate.quality_gate": {"minimum": {"click.ndcg@10": 0.999}}})
    try:
        result = sh([str(BIN / "dvc"), "repro"], project, check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "quality gate failed" in output and "below the minimum 0.999" in output
        assert "Running stage 'package'" not in output
        report = json.loads((project / "metrics/evaluate.json").read_text())
        assert report["quality_gate"]["passed"] is False  # the numbers are still written for reading
    finally:
        set_params(project, **{"profiles.tiny.evaluate.quality_gate": {"minimum": {}, "must_beat": ["random"]}})


def test_bad_data_stops_the_pipeline_and_keeps_good_artefacts(project, tmp_path):
    before = {p: tree_digest(project / p) for p in ("data/prepared", "models/ranker")}
    bad = tmp_path / "judgments.csv"
    bad.write_text("query,product_id,product_title,grade\n"
                   "red sofa,A1,Caf\ufffd Sofa,3\nred sofa,A2,Blue Lamp,1\nblue lamp,A2,Blue Lamp,3\nblue lamp,A1,Caf\ufffd Sofa,0\n",
                   encoding="utf-8")
    # without text repair (the default repairs this): damaged text stops the pipeline, naming the remedy
    set_params(project, **{"data.source": "judgments", "data.judgments.path": str(bad), "data.text_repair": "none"})
    try:
        result = sh([str(BIN / "dvc"), "repro"], project, check=False)
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert "validation failed" in output.lower() and "title" in output
        assert "set data.text_repair: ftfy" in output
        assert "Running stage 'split'" not in output
        assert {p: tree_digest(project / p) for p in before} == before
        assert json.loads((project / "reports/validation/summary.json").read_text())["success"] is False
    finally:
        set_params(project, **{"data.source": "synthetic", "data.judgments.path": None, "data.text_repair": "ftfy"})


def test_a_changed_input_file_reruns_ingest_and_an_unchanged_one_does_not(project, tmp_path):
    """The input file is named in params (here inside the profile, where init-profile writes);
    DVC sees its content through data/inputs.json."""
    judgments = tmp_path / "judgments.csv"
    rows = ["query,product_id,product_title,grade"] + [
        f"{query},{pid},{title},{grade}" for query in ("red sofa", "desk lamp", "garden hose", "bath towel")
        for pid, title, grade in (("S1", "Red 3-Seat Sofa", 3 if query == "red sofa" else 0),
                                  ("L1", "LED Desk Lamp", 3 if query == "desk lamp" else 0),
                                  ("H1", "Garden Hose 50 ft", 3 if query == "garden hose" else 1),
                                  ("T1", "Cotton Bath Towel", 3 if query == "bath towel" else 1))]
    judgments.write_text("\n".join(rows) + "\n")
    set_params(project, **{"profiles.tiny.data": {"source": "judgments", "judgments": {"path": str(judgments)}}})
    try:
        first = sh([str(BIN / "dvc"), "repro", "validate"], project)
        assert "Running stage 'ingest'" in first.stdout
        again = sh([str(BIN / "dvc"), "repro", "validate"], project)
        assert "Running stage 'ingest'" not in again.stdout and "Stage 'ingest' didn't change" in again.stdout
        judgments.write_text(judgments.read_text().replace("Red 3-Seat Sofa", "Red 3-Seat Sofà"))  # one byte more
        changed = sh([str(BIN / "dvc"), "repro", "validate"], project)
        assert "Running stage 'ingest'" in changed.stdout and "Running stage 'validate'" in changed.stdout
        titles = pd.read_parquet(project / "data/raw/catalog.parquet").set_index("product_id")["title"]
        assert titles["S1"] == "Red 3-Seat Sofà"
    finally:
        set_params(project, **{"profiles.tiny.data": {}})


KINDS = ("sofa", "desk lamp", "garden hose", "bath towel", "cordless drill", "kettle", "pillow", "rug", "mirror", "stool")
COLOURS = ("red", "blue", "black", "green")


def stranger_judgments(path: Path) -> Path:
    """A small graded judgments file as a stranger would bring it: 40 queries, ten candidates
    each, one scraped title with mojibake."""
    rows = ["query,product_id,product_title,brand,grade"]
    for k, kind in enumerate(KINDS):
        for c, colour in enumerate(COLOURS):
            shown = [(k, c, 3), *((k, o, 2) for o in range(4) if o != c),
                     *(((k + d) % len(KINDS), c, 1) for d in (1, 2, 3)), *(((k + d) % len(KINDS), (c + 1) % 4, 0) for d in (4, 5))]
            for pk, pc, grade in shown:
                title = f"{COLOURS[pc].title()} {KINDS[pk].title()}" + (" â€“ CafÃ© Edition" if (pk, pc) == (0, 0) else "")
                rows.append(f"{colour} {kind},P{pk}{pc},{title},Acme,{grade}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_your_own_data_in_two_commands(project, tmp_path):
    """`prodrank init-profile` on a file it has never seen, then the pipeline (`make run`): the text
    is repaired, the model is gated and packaged, and it becomes the champion `make serve` serves."""
    source = stranger_judgments(tmp_path / "stranger.csv")
    before = (project / "params.yaml").read_text()
    try:
        init = sh([str(BIN / "prodrank"), "init-profile", "stranger", "--judgments", str(source)], project)
        assert "judgments: 360 rows, 40 queries, 40 products" in init.stdout and "next: make run" in init.stdout
        sh([str(BIN / "dvc"), "repro"], project)
        repaired = json.loads((project / "data/raw/text_repair.json").read_text())
        assert repaired["changed"] == {"judgments.product_title": 9}
        manifest = json.loads((project / "models/package.json").read_text())
        assert manifest["champion"] == manifest["tag"] and manifest["metadata"]["profile"] == "stranger"
        assert "built with profile 'tiny'" in manifest["promotion"]["reason"]
        history = pd.read_csv(project / "reports/plots/valid_ndcg.csv")
        assert history["step"].iloc[0] == 0  # the zero-shot start competes in model selection
    finally:
        (project / "params.yaml").write_text(before)
