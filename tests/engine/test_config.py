import dataclasses
from pathlib import Path

import pytest

from videorft.engine.cli import pipeline_prerequisites, read_pipeline
from videorft.engine.config import GRPOConfig, RunConfig, load_config
from videorft.engine.config_loader import ConfigError, describe, dump_yaml, field_docs, load_yaml, to_dict

RECIPE_ROOT = Path(__file__).resolve().parents[2].joinpath("recipes")
RECIPES = sorted(p for p in RECIPE_ROOT.rglob("*.yaml") if p.name != "pipeline.yaml")
PIPELINES = sorted(p.parent for p in RECIPE_ROOT.rglob("pipeline.yaml"))


def _holds(loaded, written) -> bool:
    """Whether a loaded config value is what the YAML wrote (numbers as numbers, e.g. "1e-6")."""
    if isinstance(loaded, float) and not isinstance(written, bool) and isinstance(written, (int, float, str)):
        return loaded == float(written)
    return to_dict(loaded) == written


def _check_written(node, data: dict, where: str = "") -> None:
    for key, value in data.items():
        loaded = getattr(node, key)
        if isinstance(value, dict) and dataclasses.is_dataclass(loaded):
            _check_written(loaded, value, f"{where}{key}.")
        else:
            assert _holds(loaded, value), f"{where}{key}: the file says {value!r}, the config holds {loaded!r}"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_recipe_loads_as_written_and_round_trips(path, tmp_path):
    cfg = load_config(path)
    _check_written(cfg, load_yaml(path))
    dump_yaml(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


def _leaves(data, where: str = ""):
    """(dotted name, value) of every leaf of a nested dict (list items are leaves of the list's name)."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{where}{key}.")
        elif isinstance(value, list):
            yield from ((f"{where}{key}", item) for item in value)
        else:
            yield f"{where}{key}", value


def _outputs(recipe: Path) -> list[Path]:
    """Every output_dir / output_file a recipe's stages write."""
    return [Path(v) for _, config in read_pipeline(recipe) for k, v in _leaves(to_dict(load_config(config)))
            if k.rsplit(".", 1)[-1] in ("output_dir", "output_file") and v]


@pytest.mark.parametrize("recipe", PIPELINES, ids=lambda p: p.name)
def test_every_path_a_pipeline_stage_reads_is_written_by_an_earlier_stage(recipe):
    written: list[Path] = [out for before in pipeline_prerequisites(recipe) for out in _outputs(before)]
    for stage, config in read_pipeline(recipe):
        leaves = list(_leaves(to_dict(load_config(config))))
        outputs = [Path(v) for k, v in leaves if k.rsplit(".", 1)[-1] in ("output_dir", "output_file") and v]
        root = outputs[0].parts[0]
        for name, value in leaves:
            if isinstance(value, str) and Path(value).parts[:1] == (root,) and Path(value) not in outputs:
                assert any(Path(value).is_relative_to(out) for out in written), \
                    f"{config.name} ({stage}): {name}={value} is read before any stage writes it"
        written.extend(outputs)


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
    ("kernels.token_chunk=7", "unknown key 'kernels.token_chunk'"),
])
def test_bad_overrides_name_the_field(override, needle):
    with pytest.raises(ConfigError) as err:
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
    rows = {name: (default, doc) for name, _, default, doc in describe(RunConfig)}
    assert "grpo.optim.lr" in rows and "grpo.beta" in rows
    assert "KL" in rows["grpo.beta"][1]
    assert rows["grpo.optim.scheduler"][0] == GRPOConfig().optim.scheduler == "cosine"
    assert rows["rewards.functions"][0] == ["accuracy", "format", "semantic"]       # default_factory values
