"""params.yaml loading: profiles merge, and bad keys fail with their dotted path."""
import pytest
import yaml

from prodrank.config import Config, ConfigError, load_config, resolve
from tests.conftest import PROJECT_ROOT


def test_defaults_and_profile_overrides_merge_sections_but_replace_values():
    cfg = resolve({"train": {"epochs": 3, "score_weights": {"click": 1.0, "add_to_cart": 1.0, "purchase": 1.0}},
                   "profiles": {"judged": {"train": {"tasks": [{"name": "rel", "label": "grade", "kind": "graded"}],
                                                     "chaining": False, "score_weights": {"rel": 1.0}}}}},
                  profile="judged")
    assert cfg.train.epochs == 3  # kept from the defaults
    assert cfg.train.score_weights == {"rel": 1.0}  # replaced whole, not merged with click/...
    assert [t.name for t in cfg.train.tasks] == ["rel"]


@pytest.mark.parametrize("raw, message", [
    ({"train": {"archtecture": "mmoe"}}, "train.archtecture: Extra inputs are not permitted"),
    ({"train": {"architecture": "moe"}}, "train.architecture: Input should be"),
    ({"world": {"n_products": "many"}}, "world.n_products: Input should be a valid integer"),
    ({"split": {"test_fraction": 0.9}}, "split.test_fraction: Input should be less than 0.5"),
    ({"train": {"score_weights": {"buy": 1.0}}}, "unknown task 'buy'"),
    ({"pretrain": {"scratch": {"hidden_size": 30, "num_attention_heads": 4}}}, "multiple of num_attention_heads"),
    ({"train": {"product_features": ["price", "price"]}}, "train: Value error, product_features must name each"),
    ({"train": {"product_features": ["colour"]}}, "train.product_features.0: Input should be 'price' or 'rating'"),
])
def test_bad_keys_fail_naming_the_key(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(raw)


def test_unknown_profile_and_non_mapping_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        resolve({}, profile="huge")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_code_defaults_are_the_default_profile_of_params_yaml():
    """One source of defaults: ``Config()`` is the documented model, params.yaml's top level."""
    assert Config() == load_config(PROJECT_ROOT / "params.yaml", profile="default")
