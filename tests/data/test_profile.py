"""`prodrank init-profile`: a stranger's judgments or interactions file becomes a selected profile
with the real-data recipe, and a report of what the file holds."""
from __future__ import annotations

import shutil

import pytest

from prodrank import cli
from prodrank.config import TrainConfig, load_config
from prodrank.data.profile import ProfileError, init_profile
from tests.conftest import PROJECT_ROOT


@pytest.fixture()
def params(tmp_path):
    return shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")


def judgments(path, rows=(("red sofa", "S1", "Red Sofa", "CafÃ© oak", 3), ("red sofa", "L1", "Desk Lamp", "", 1),
                          ("desk lamp", "L1", "Desk Lamp", "LED", 2), ("desk lamp", "S1", "Red Sofa", "CafÃ© oak", 0))):
    path.write_text("query,product_id,product_title,description,grade\n"
                    + "".join(f"{q},{p},{t},{d},{g}\n" for q, p, t, d, g in rows), encoding="utf-8")
    return path


def test_judgments_become_a_selected_profile_with_the_recipe(params, tmp_path, capsys):
    source = judgments(tmp_path / "mine.csv")
    assert cli.main(["--params", str(params), "init-profile", "mine", "--judgments", str(source)]) == 0
    out = capsys.readouterr().out
    assert "judgments: 4 rows, 2 queries, 2 products" in out and "grade scale: 0 to 3" in out
    assert "product fields: description" in out and "next: make run" in out
    cfg = load_config(params)  # the selected profile, validated like any other
    assert cfg.profile == "mine" and cfg.data.source == "judgments" and cfg.data.judgments.path == str(source)
    assert [t.name for t in cfg.train.tasks] == ["relevance"] and cfg.train.similarity_prior
    assert cfg.train.validate_at_start and not cfg.pretrain.enabled and cfg.train.product_features == ()
    assert cfg.evaluate.quality_gate.gate_metric == "relevance.ndcg@10"
    assert load_config(params, "default").world == load_config(PROJECT_ROOT / "params.yaml", "default").world
    text = params.read_text()
    assert text.startswith((PROJECT_ROOT / "params.yaml").read_text().split("\nprofile:")[0])  # comments kept
    with pytest.raises(ProfileError, match="already has a profile 'mine'"):
        init_profile(params, "mine", str(source), None, None)


def test_interactions_get_one_task_per_event_and_the_features_the_catalogue_has(params, tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_id,title,price\nS1,Red Sofa,499\nL1,Desk Lamp,29\n")
    log = tmp_path / "log.csv"
    log.write_text("query,product_id,position,clicked,added_to_cart,purchased\n"
                   "red sofa,S1,1,1,1,0\nred sofa,L1,2,0,0,0\ndesk lamp,L1,1,1,0,0\ndesk lamp,S1,2,0,0,0\n")
    lines = init_profile(params, "shop", None, str(log), str(catalog))
    assert "events: clicks 2, add_to_carts 1, purchases 0" in lines
    cfg = load_config(params)
    assert [t.name for t in cfg.train.tasks] == ["click", "add_to_cart"] and cfg.train.product_features == ("price",)
    assert cfg.data.interactions.catalog == str(catalog)
    # every product was shown at one position only: examination cannot be told from relevance
    assert any(line.startswith("position bias: not estimated") for line in lines)
    assert cfg.train.position_debiasing == "none"


def test_a_log_that_moves_products_gets_the_default_position_bias_correction(params, tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_id,title\nS1,Red Sofa\nL1,Desk Lamp\n")
    log = tmp_path / "log.csv"
    log.write_text("query,product_id,position,clicked,added_to_cart,purchased\n"
                   "red sofa,S1,1,1,0,0\nred sofa,L1,2,0,0,0\nred sofa,L1,1,0,0,0\nred sofa,S1,2,1,0,0\n"
                   "red sofa,S1,2,0,0,0\n")
    lines = init_profile(params, "shop", None, str(log), str(catalog))
    assert "examination by shown position (1 = position 1): 1.00, 0.50; correction: " \
        f"{TrainConfig().position_debiasing}" in lines
    assert load_config(params).train.position_debiasing == TrainConfig().position_debiasing


@pytest.mark.parametrize(("name", "message"), [("My Data", "profile name"), ("default", "already has a profile")])
def test_bad_names_are_refused_and_params_stay(params, tmp_path, name, message):
    before = params.read_text()
    with pytest.raises(ProfileError, match=message):
        init_profile(params, name, str(judgments(tmp_path / "j.csv")), None, None)
    assert params.read_text() == before


def test_interactions_without_a_catalogue_are_refused(params, tmp_path):
    with pytest.raises(ProfileError, match="--interactions FILE --catalog FILE"):
        init_profile(params, "x", None, str(tmp_path / "log.csv"), None)
