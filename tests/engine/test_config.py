import dataclasses
from pathlib import Path

import pytest

from videorft.engine.config import GRPOConfig, RunConfig, load_config
from videorft.engine.config_loader import ConfigError, describe, field_docs

RECIPES = sorted(p for p in Path(__file__).resolve().parents[2].joinpath("recipes").rglob("*.yaml")
                 if p.name != "pipeline.yaml")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_recipe_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)


def test_defaults_follow_the_released_grpo_recipe():
    cfg = load_config(None)
    assert (cfg.rollout.group_size, cfg.grpo.beta, cfg.grpo.optim.lr) == (8, 0.04, 1e-6)
    assert (cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.max_new_tokens) == (1.0, 0.95, 1024)


def test_overrides_are_typed_and_nested():
    cfg = load_config(None, ["grpo.beta=0.02", "grpo.optim.lr=3e-6", "rollout.group_size=4",
                             "video.num_frames=null", "run.device=cpu"])
    assert cfg.grpo.beta == 0.02 and cfg.grpo.optim.lr == 3e-6
    assert cfg.rollout.group_size == 4 and cfg.video.num_frames is None and cfg.run.device == "cpu"


@pytest.mark.parametrize("override, needle", [
    ("bogus.key=1", "unknown key 'bogus'"),
    ("grpo.betaa=0.1", "did you mean 'beta'"),
    ("rollout.group_size=eight", "rollout.group_size: expected an integer"),
    ("run.device=tpu", "run.device: 'tpu' is not one of"),
    ("grpo.loss_agg=token_mean", "did you mean 'token-mean'"),
    ("run.progress=3", "run.progress: expected true/false"),
    ("grpo=1", "expected a mapping of GRPOConfig fields"),
    ("novalue", "not of the form section.field=value"),
])
def test_bad_overrides_name_the_field(override, needle):
    with pytest.raises(ConfigError, match=None) as err:
        load_config(None, [override])
    assert needle in str(err.value)


def test_errors_in_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  tiny:\n    hiden_size: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(bad) in str(err.value) and "model.tiny.hiden_size" in str(err.value)
    assert "did you mean 'hidden_size'" in str(err.value)


def _sections(cls):
    yield cls
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.type) or (isinstance(f.type, str) and f.type.endswith("Config")):
            yield from _sections(type(getattr(cls(), f.name)))


def test_every_field_is_documented():
    for section in _sections(RunConfig):
        docs = field_docs(section)
        missing = [f.name for f in dataclasses.fields(section) if not docs.get(f.name)]
        assert not missing, f"{section.__name__} fields without a docstring: {missing}"


def test_describe_lists_leaf_fields_with_docs():
    rows = {name: doc for name, _, _, doc in describe(RunConfig)}
    assert "grpo.optim.lr" in rows and "grpo.beta" in rows
    assert "KL" in rows["grpo.beta"]
    assert GRPOConfig().optim.scheduler == "cosine"
