"""The model store API: gated packaging with provenance, champion/promote/rollback,
tamper detection on load, and the package stage."""
from __future__ import annotations

import json

import numpy as np
import pytest

from prodrank.models.ranker import load_ranker
from prodrank.serving import registry
from prodrank.serving.packaging import package
from prodrank.serving.promotion import RETRAIN_RUN_ENV
from prodrank.serving.registry import RegistryError, TamperedModelError
from tests.serving.conftest import GATE_FAILED, GATE_PASSED


def copy_ranker(src, dst, tweak: bytes = b""):
    """A second, distinct ranker: same weights, one extra byte in ranker.json's whitespace."""
    import shutil

    shutil.copytree(src, dst)
    if tweak:
        (dst / "ranker.json").write_bytes((dst / "ranker.json").read_bytes() + tweak)
    return dst


def test_save_model_records_provenance_and_loads_identically(serving_data, bento_home, cfg):
    tag = registry.save_model(serving_data["ranker_dir"], GATE_PASSED, cfg)
    assert tag.startswith(f"{cfg.serving.model_name}:")
    meta = registry.model_metadata(tag, cfg)
    md = meta["metadata"]
    assert meta["labels"]["stage"] == "candidate" and meta["labels"]["gate"] == "passed"
    assert md["metrics"]["click.ndcg@10"] == pytest.approx(0.81) and md["metrics"]["quality_gate"]["passed"]
    assert md["tasks"] == ["click", "add_to_cart", "purchase"] and md["score_weights"]["purchase"] == 4.0
    assert len(md["params_hash"]) == 64 and md["git_revision"] and "data_version" in md
    assert set(md["files"]) >= {"ranker/ranker.json", "ranker/head.safetensors", "ranker/encoder/model.safetensors"}
    assert all(len(h) == 64 for h in md["files"].values())

    loaded, metadata = registry.load_packaged(tag, cfg)
    direct = load_ranker(serving_data["ranker_dir"])
    products = serving_data["products"]
    pids = list(products)[:6]
    a = loaded.score(["blue drill"] * 6, pids, products)
    b = direct.score(["blue drill"] * 6, pids, products)
    np.testing.assert_array_equal(a["score"], b["score"])
    assert metadata["tag"] == tag
    # the same files again: the existing tag, not a duplicate
    assert registry.save_model(serving_data["ranker_dir"], GATE_PASSED, cfg) == tag


def test_failed_gate_is_refused(serving_data, bento_home, cfg, tmp_path):
    with pytest.raises(RegistryError, match="quality gate did not pass.*below"):
        registry.save_model(serving_data["ranker_dir"], GATE_FAILED, cfg)
    with pytest.raises(RegistryError, match="quality gate"):
        registry.save_model(serving_data["ranker_dir"], {"methods": {}}, cfg)
    metrics = tmp_path / "evaluate.json"
    metrics.write_text(json.dumps(GATE_FAILED))
    with pytest.raises(RegistryError, match="quality gate failed"):
        package(cfg, serving_data["ranker_dir"], metrics, tmp_path / "package.json")
    assert not (tmp_path / "package.json").exists() and registry.newest(cfg) is None


def test_tampered_file_is_refused_with_its_name(serving_data, bento_home, cfg):
    tag = registry.save_model(serving_data["ranker_dir"], GATE_PASSED, cfg)
    path = registry.model_metadata(tag, cfg)["path"]
    head = f"{path}/ranker/head.safetensors"
    data = bytearray(open(head, "rb").read())
    data[-1] ^= 0xFF
    open(head, "wb").write(bytes(data))
    with pytest.raises(TamperedModelError, match=r"changed: ranker/head\.safetensors"):
        registry.load_packaged(tag, cfg)
    open(f"{path}/ranker/extra.bin", "wb").write(b"x")
    with pytest.raises(TamperedModelError, match=r"unexpected: ranker/extra\.bin"):
        registry.load_packaged(tag, cfg)


def test_champion_promote_rollback(serving_data, bento_home, cfg, tmp_path):
    assert registry.champion(cfg) is None
    first = registry.save_model(serving_data["ranker_dir"], GATE_PASSED, cfg)
    second = registry.save_model(copy_ranker(serving_data["ranker_dir"], tmp_path / "r2", b"\n"), GATE_PASSED, cfg)
    third = registry.save_model(copy_ranker(serving_data["ranker_dir"], tmp_path / "r3", b"\n\n"), GATE_PASSED, cfg)
    assert len({first, second, third}) == 3
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback(cfg)
    registry.promote(first, cfg)
    registry.promote(second, cfg)
    registry.promote(third, cfg)
    reg = registry.read_registry(cfg)
    assert registry.champion(cfg) == third
    assert reg["models"][second]["stage"] == "previous" and reg["models"][first]["stage"] == "previous"
    assert registry.rollback(cfg) == second
    assert registry.champion(cfg) == second
    assert registry.read_registry(cfg)["models"][third]["stage"] == "rolled_back"
    assert registry.rollback(cfg) == first
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback(cfg)
    registry.load_packaged(third, cfg)  # demoted models stay in the store, loadable
    with pytest.raises(RegistryError, match="not in the BentoML store"):
        registry.promote(f"{cfg.serving.model_name}:doesnotexist", cfg)


def evaluation(tmp_path, name: str, click_ndcg: float):
    metrics = tmp_path / name
    metrics.write_text(json.dumps({**GATE_PASSED, "methods": {"prodrank": {"click": {"ndcg@10": click_ndcg}}}}))
    return metrics


def test_package_stage_promotes_the_first_then_only_a_better_model(serving_data, bento_home, cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "dvc_data_version", lambda *_: {"path": "data/prepared", "md5": "d1", "stage": "split"})
    out = tmp_path / "models" / "package.json"
    manifest = package(cfg, serving_data["ranker_dir"], evaluation(tmp_path, "a.json", 0.81), out)
    first = manifest["tag"]
    written = json.loads(out.read_text())
    assert written["tag"] == first and written["champion"] == first and written["metadata"]["files"]
    assert written["promotion"]["promote"] and "no champion yet" in written["promotion"]["reason"]
    # same profile, same data: compared on the same test split; a tie keeps the champion
    tie = package(cfg, copy_ranker(serving_data["ranker_dir"], tmp_path / "r2", b"\n"), evaluation(tmp_path, "b.json", 0.81), out)
    assert tie["tag"] != first and tie["champion"] == first
    assert tie["promotion"]["compared_on"] == "test split" and not tie["promotion"]["promote"]
    assert registry.serving_tag(cfg) == first
    notice = registry.serving_notice(first, cfg)
    assert notice[0].startswith(f"serving {first} (champion, profile {cfg.profile!r}, click.ndcg@10 0.8100 on 8 test queries")
    assert f"the newest packaged model {tie['tag']} is not served: challenger does not beat" in notice[1]
    better = package(cfg, copy_ranker(serving_data["ranker_dir"], tmp_path / "r3", b"\n\n"),
                     evaluation(tmp_path, "c.json", 0.86), out)
    assert better["champion"] == better["tag"] and (better["promotion"]["new_score"], better["promotion"]["champion_score"]) == (0.86, 0.81)
    monkeypatch.setenv("PRODRANK_MODEL_TAG", first)
    assert registry.serving_tag(cfg) == first


def test_package_stage_replaces_a_champion_of_another_profile(serving_data, bento_home, cfg, tmp_path):
    """The test suite's tiny model must never keep serving over the model `make run` built."""
    tiny, default = (cfg.model_copy(update={"profile": name}) for name in ("tiny", "default"))
    old = package(tiny, serving_data["ranker_dir"], evaluation(tmp_path, "a.json", 0.95), tmp_path / "p1.json")["tag"]
    new = package(default, copy_ranker(serving_data["ranker_dir"], tmp_path / "r2", b"\n"), evaluation(tmp_path, "b.json", 0.5),
                  tmp_path / "p2.json")
    assert new["champion"] == new["tag"] != old
    assert f"the champion {old} was built with profile 'tiny'" in new["promotion"]["reason"]


def test_package_stage_inside_a_retrain_run_only_stores(serving_data, bento_home, cfg, tmp_path, monkeypatch):
    first = package(cfg, serving_data["ranker_dir"], evaluation(tmp_path, "a.json", 0.5), tmp_path / "p1.json")["tag"]
    monkeypatch.setenv(RETRAIN_RUN_ENV, "run-1")
    tiny = cfg.model_copy(update={"profile": "tiny"})
    second = package(tiny, copy_ranker(serving_data["ranker_dir"], tmp_path / "r2", b"\n"), evaluation(tmp_path, "b.json", 0.9),
                     tmp_path / "p2.json")
    assert second["champion"] == first and "retrain run run-1" in second["promotion"]["reason"]


def test_minimal_metrics_and_no_provenance_still_package(serving_data, bento_home, cfg, monkeypatch, tmp_path):
    """No n_queries, no git, no dvc.lock: those keys are left out, not a BentoML metadata error."""
    monkeypatch.chdir(tmp_path)  # no .git or dvc.lock above a tmp dir
    monkeypatch.setattr(registry, "git_revision", lambda root=None: None)
    tag = registry.save_model(serving_data["ranker_dir"], {"quality_gate": {"passed": True}}, cfg)
    md = registry.model_metadata(tag, cfg)["metadata"]
    assert "git_revision" not in md and "data_version" not in md and md["metrics"]["quality_gate"]["passed"]
    registry.load_packaged(tag, cfg)
