"""The train entry point under torchrun: 2 CPU processes (gloo) match one process."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from tests.conftest import make_prepared

TRAIN = {"expert_hidden": 16, "tower_hidden": 8, "n_experts": 2, "max_steps": 4, "eval_every": 2,
         "checkpoint_every": 2, "queries_per_batch": 4, "candidates_per_query": 5, "learning_rate": 1e-3,
         "dropout": 0.0, "max_eval_queries": 50}


def project(tmp_path, name, init_dir):
    root = tmp_path / name
    make_prepared(root / "data" / "prepared")
    shutil.copytree(init_dir, root / "models" / "pretrained")
    # dropout draws depend on the per-process batch size, so turn it off to compare exactly
    config_path = root / "models" / "pretrained" / "config.json"
    config = json.loads(config_path.read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config_path.write_text(json.dumps(config))
    (root / "params.yaml").write_text(yaml.safe_dump({"runtime": {"threads": 1}, "train": TRAIN}))
    return root


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(tmp_path, tiny_init_dir):
    single = project(tmp_path, "single", tiny_init_dir)
    subprocess.run([sys.executable, "-m", "prodrank.cli", "train"], cwd=single, check=True, capture_output=True)
    multi = project(tmp_path, "multi", tiny_init_dir)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "prodrank.cli", "train"],
                            cwd=multi, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    one = json.loads((single / "metrics" / "train.json").read_text())
    two = json.loads((multi / "metrics" / "train.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["best_valid_ndcg@10"] == pytest.approx(one["best_valid_ndcg@10"], abs=1e-4)
    head_one = load_file(single / "models" / "ranker" / "head.safetensors")
    head_two = load_file(multi / "models" / "ranker" / "head.safetensors")
    for key, value in head_one.items():
        np.testing.assert_allclose(head_two[key], value, rtol=1e-3, atol=1e-5, err_msg=key)
