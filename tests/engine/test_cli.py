import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from videorft.engine.cli import main
from videorft.engine.models.processor_files import PROCESSOR_FILES

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("videorft")


def _cli(*args, cwd=ROOT):
    return subprocess.run([str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_help_lists_every_command():
    out = _cli("--help")
    assert out.returncode == 0
    for command in ("run", "config", "init-model"):
        assert command in out.stdout


def test_unknown_override_exits_nonzero_naming_it():
    out = _cli("init-model", "--config", "recipes/tiny/base.yaml", "bogus.key=1")
    assert out.returncode == 2
    assert "bogus" in out.stderr and "Traceback" not in out.stderr


def test_bad_invocations_exit_2():
    assert _cli("no-such-command").returncode == 2
    assert _cli("init-model").returncode == 2                      # --config missing
    missing = _cli("init-model", "--config", "recipes/tiny/missing.yaml")
    assert missing.returncode == 2 and "missing.yaml" in missing.stderr


def test_config_explain_documents_fields(capsys):
    assert main(["config", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "grpo.beta" in text and "rollout.group_size" in text


def test_the_deepspeed_launchers_local_rank_argument_is_accepted(monkeypatch, capsys):
    """`deepspeed --module videorft.engine.cli` runs `-m videorft.engine.cli --local_rank=N <stage> ...`."""
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert main(["--local_rank=1", "config", "--config", str(ROOT / "recipes/tiny/base.yaml")]) == 0
    assert "tiny-base" in capsys.readouterr().out
    assert os.environ["LOCAL_RANK"] == "1"
    monkeypatch.setenv("LOCAL_RANK", "0")                      # the launcher's environment wins
    assert main(["--local-rank", "1", "config"]) == 0
    assert os.environ["LOCAL_RANK"] == "0"
    with pytest.raises(SystemExit) as bad:
        main(["--local_rank=x", "config"])
    assert bad.value.code == 2


def test_init_model_writes_a_loadable_checkpoint_and_run_files(tmp_path):
    out_dir = tmp_path / "base"
    assert main(["init-model", "--config", str(ROOT / "recipes/tiny/base.yaml"),
                 f"run.output_dir={out_dir}", "model.tiny.hidden_size=32", "model.tiny.num_layers=1",
                 "model.tiny.intermediate_size=64", "run.progress=false"]) == 0
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    model = AutoModelForImageTextToText.from_pretrained(out_dir)
    tok = AutoTokenizer.from_pretrained(out_dir)
    assert model.config.text_config.hidden_size == 32
    assert tok.convert_tokens_to_ids("<|video_pad|>") == model.config.video_token_id
    assert (out_dir / "model.safetensors").is_file()
    assert all((out_dir / name).is_file() for name in PROCESSOR_FILES)      # vLLM / AutoProcessor can load it
    saved = yaml.safe_load((out_dir / "config.yaml").read_text())
    # the run's resolved config sits beside the model's own config.json
    assert saved["model"]["tiny"]["hidden_size"] == 32
    assert "init-model run" in (out_dir / "run.log").read_text()


def test_run_chains_a_recipe_and_validates_every_stage_first(tmp_path):
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "a.yaml").write_text(f"run: {{output_dir: {tmp_path / 'a'}, progress: false}}\n"
                                   "model: {tiny: {hidden_size: 32, num_layers: 1}}\n")
    (recipe / "b.yaml").write_text("model: {tiny: {hiden_size: 32}}\n")
    (recipe / "pipeline.yaml").write_text("stages:\n  - init-model: a.yaml\n  - init-model: b.yaml\n")
    assert main(["run", str(recipe)]) == 2
    assert not (tmp_path / "a").exists(), "no stage may start before every config is valid"
    (recipe / "b.yaml").write_text(f"run: {{output_dir: {tmp_path / 'b'}, progress: false}}\n"
                                   "model: {tiny: {hidden_size: 32, num_layers: 1}}\n")
    assert main(["run", str(recipe)]) == 0
    assert (tmp_path / "a" / "model.safetensors").is_file() and (tmp_path / "b" / "model.safetensors").is_file()


def test_pipeline_with_unknown_stage_is_rejected(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("stages:\n  - trian: x.yaml\n")
    assert main(["run", str(tmp_path)]) == 2


def test_generic_top_level_names_are_not_importable(tmp_path):
    """Only `videorft.*` is installed: `engine`, `kernels`, `loaders` stay private to the checkout."""
    code = ("import importlib.util, videorft.engine, videorft.kernels, videorft.loaders\n"
            "print([n for n in ('engine', 'kernels', 'loaders') if importlib.util.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
