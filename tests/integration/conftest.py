"""Shared set-up of the trainer integration tests: one tiny world, one tiny model, one SFT run.

Every stage runs as the user runs it, `python -m videorft.engine.cli <stage> --config FILE`, in a
subprocess with one compute thread (the test machine is small and shared). The session builds:

    world      `videorft synth`: 16 train / 8 test easy clips, 64x64, 2 s
    base       `videorft init-model`: a random Qwen2.5-VL, hidden 64, 2 layers
    sft_run    `videorft sft` from base: 80 steps at a high learning rate, enough for the model
               to emit `<think>..</think><answer>..</answer>` often, so GRPO rewards vary
    encoder    an untrained tiny SigLIP for the semantic reward (its numbers do not matter here)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml

STAGE_TIMEOUT_S = 300

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
              "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

VIDEO = {"backend": "pyav", "fps": 2.0, "min_frames": 4, "max_frames": 4, "min_pixels": 3136,
         "max_pixels": 3136, "preprocess": "torch"}
"""4 frames of 56x56: 8 video tokens per prompt."""

SFT_STEPS = 80
SFT_SAVE_EVERY = 20
GRPO_STEPS = 6
GRPO_SAVE_EVERY = 2


def stage_env(**extra: str) -> dict[str, str]:
    """The environment of a stage subprocess: one thread, offline, plus `extra`."""
    return {**os.environ, **THREAD_ENV, **extra}


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a stage config as YAML and return its path."""
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


SINGLE_PROCESS = (sys.executable, "-m", "videorft.engine.cli")
TWO_RANKS = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "videorft.engine.cli")


def deepspeed_two_ranks() -> tuple[str, ...]:
    """The documented `deepspeed --num_gpus 2 --module videorft.engine.cli` launch, on a free port.

    On a machine without GPUs DeepSpeed's launcher picks its CPU accelerator and still starts
    --num_gpus processes; each gets RANK, LOCAL_RANK, WORLD_SIZE and `--local_rank=<n>` after the
    module name, which the CLI accepts.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    launcher = Path(sys.executable).with_name("deepspeed")
    return (str(launcher), "--num_gpus", "2", "--master_port", str(port), "--module", "videorft.engine.cli")


def stage_command(stage: str, config_file: Path, launcher: tuple[str, ...] = SINGLE_PROCESS) -> list[str]:
    """The command line that runs `stage` from `config_file` (one process, or under torchrun)."""
    return [*launcher, stage, "--config", str(config_file)]


def run_stage(stage: str, config: dict[str, Any], work: Path, launcher: tuple[str, ...] = SINGLE_PROCESS,
              env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a stage to completion; fails the test with the stage's output when it exits non-zero.

    Returns the JSON summary the CLI prints (one rank's, under a multi-process launcher).
    """
    work.mkdir(parents=True, exist_ok=True)
    config_file = write_config(work / f"{stage}-{config['run']['name']}.yaml", config)
    cmd = stage_command(stage, config_file, launcher)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=STAGE_TIMEOUT_S, env=env or stage_env())
    if out.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {out.returncode}\n--- stderr ---\n{out.stderr[-6000:]}")
    return _summary(out.stdout)


def _summary(stdout: str) -> dict[str, Any]:
    """The last top-level JSON object the CLI printed (each rank prints one under torchrun)."""
    start = stdout.rfind("\n{")
    start = start + 1 if start >= 0 else stdout.find("{")
    end = stdout.find("\n}", start)
    return json.loads(stdout[start:end + 2])


def _logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]


def kill_after_checkpoint(stage: str, config: dict[str, Any], work: Path, poll_s: float = 0.02) -> int:
    """Start a stage and SIGKILL it once a checkpoint is complete and a later step is logged.

    The later row makes the restart prove it rewinds metrics.jsonl to the checkpoint (no row
    lost or written twice). Returns the step of the checkpoint the run was killed after; fails
    when the process ends first (then nothing would be left to resume).
    """
    work.mkdir(parents=True, exist_ok=True)
    config_file = write_config(work / f"{stage}-{config['run']['name']}-killed.yaml", config)
    run_dir = Path(config["run"]["output_dir"])
    latest = run_dir / "checkpoints" / "latest"
    proc = subprocess.Popen(stage_command(stage, config_file), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=stage_env())
    deadline = time.monotonic() + STAGE_TIMEOUT_S
    try:
        while not (latest.is_file() and max(_logged_steps(run_dir), default=0) > _step_of(latest)):
            if proc.poll() is not None:
                pytest.fail(f"{stage} ended (rc {proc.returncode}) before it could be killed:\n"
                            f"{proc.stderr.read()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{stage} wrote no checkpoint in {STAGE_TIMEOUT_S} s")
            time.sleep(poll_s)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return _step_of(latest)


def _step_of(latest: Path) -> int:
    return int(latest.read_text().strip().split("-")[-1])


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


MEASURED = ("time/", "tokens_per_s", "peak_mem_mb", "model_tflops_per_s", "mfu")
"""Metric keys (prefixes) that measure the machine (wall time, memory), not the training: they may differ."""


def training_rows(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl without the MEASURED keys: what two equal runs log alike."""
    return [{k: v for k, v in row.items() if not k.startswith(MEASURED)} for row in read_rows(run_dir)]


def load_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a save_pretrained folder (safetensors, one file or shards)."""
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(Path(model_dir).glob("*.safetensors")):
        weights.update(load_file(str(shard)))
    assert weights, f"no safetensors in {model_dir}"
    return weights


def base_run(name: str, output_dir: Path, model_path: Path, log_every: int = 1) -> dict[str, Any]:
    """Sections every trainer config of these tests shares."""
    return {"run": {"name": name, "output_dir": str(output_dir), "seed": 0, "device": "cpu",
                    "log_every": log_every, "progress": False},
            "model": {"source": "pretrained", "path": str(model_path), "dtype": "float32", "attention": "sdpa"},
            "video": dict(VIDEO)}


def data_section(world: Path) -> dict[str, Any]:
    """Training data of the tiny world, decoded in the main process."""
    return {"train_file": str(world / "train.jsonl"), "media_root": str(world), "system_prompt": "default",
            "num_workers": 0}


def sft_config(world: Path, model_path: Path, output_dir: Path, name: str = "sft") -> dict[str, Any]:
    """An SFT run from `model_path` that learns the answer format of the tiny world."""
    cfg = base_run(name, output_dir, model_path, log_every=1)
    cfg.update(data=data_section(world), kernels={"backend": "torch"},
               sft={"max_steps": SFT_STEPS, "batch_size": 4, "grad_accum": 1, "loss_on": "response",
                    "save_every": SFT_SAVE_EVERY,
                    "optim": {"lr": 5.0e-3, "weight_decay": 0.0, "scheduler": "cosine", "warmup_steps": 5,
                              "max_grad_norm": 1.0}})
    return cfg


def grpo_config(world: Path, model_path: Path, output_dir: Path, encoder: Path | None,
                name: str = "grpo") -> dict[str, Any]:
    """A short GRPO run from `model_path`: 2 prompts x 4 completions of up to 40 tokens per step,
    with GSPO's sequence-level ratio and token-level TIS against the sampler's log-probs.

    With `encoder`, the semantic reward (gated on accuracy) joins accuracy and format.
    """
    cfg = base_run(name, output_dir, model_path, log_every=1)
    cfg["run"]["profile_steps"] = 2                       # a torch.profiler trace of steps 2-3
    functions = ["accuracy", "format"] + (["semantic"] if encoder is not None else [])
    rewards: dict[str, Any] = {"functions": functions, "length_bonus": {"enabled": False}}
    if encoder is not None:
        rewards["semantic"] = {"encoder_path": str(encoder), "weight": 2.0, "pooling": "mean-embedding",
                               "num_frames": 4}
    cfg.update(data=data_section(world), kernels={"backend": "torch"},
               rollout={"backend": "hf", "group_size": 4, "temperature": 1.0, "top_p": 1.0,
                        "max_new_tokens": 40},
               grpo={"steps": GRPO_STEPS, "prompts_per_step": 2, "beta": 0.04, "save_every": GRPO_SAVE_EVERY,
                     "importance_sampling_level": "sequence", "rollout_is": "tis",
                     "optim": {"lr": 5.0e-4, "weight_decay": 0.0, "scheduler": "cosine", "warmup_steps": 1,
                               "max_grad_norm": 1.0}},
               rewards=rewards)
    return cfg


@pytest.fixture(scope="session")
def integration_root(tmp_path_factory) -> Path:
    """Scratch folder of the session's shared artefacts."""
    return tmp_path_factory.mktemp("integration")


@pytest.fixture(scope="session")
def world(integration_root) -> Path:
    """The tiny synthetic world, written by `videorft synth`."""
    root = integration_root / "world"
    config = {"run": {"name": "synth", "output_dir": str(integration_root / "synth_run"), "device": "cpu"},
              "synth": {"output_dir": str(root), "num_train": 16, "num_test": 8, "seed": 0, "width": 64,
                        "height": 64, "fps": 4, "duration_s": 2.0, "codec": "h264", "difficulty": "easy",
                        "max_objects": 2, "cot_style": "brief", "workers": 1}}
    run_stage("synth", config, integration_root)
    return root


@pytest.fixture(scope="session")
def base_model(integration_root) -> Path:
    """A random-weight tiny Qwen2.5-VL saved by `videorft init-model`."""
    out = integration_root / "base"
    config = {"run": {"name": "base", "output_dir": str(out), "seed": 0, "device": "cpu"},
              "model": {"source": "tiny", "dtype": "float32",
                        "tiny": {"family": "qwen2_5_vl", "tokenizer": "bpe", "hidden_size": 64, "num_layers": 2,
                                 "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128,
                                 "vision_depth": 1, "vision_hidden_size": 32}}}
    run_stage("init-model", config, integration_root)
    return out


@pytest.fixture(scope="session")
def sft_run(integration_root, world, base_model) -> Path:
    """The uninterrupted reference SFT run (its final model starts every GRPO run)."""
    out = integration_root / "sft"
    run_stage("sft", sft_config(world, base_model, out), integration_root)
    return out


@pytest.fixture(scope="session")
def encoder(integration_root) -> Path:
    """An untrained tiny SigLIP in the released checkpoint layout, for the semantic reward."""
    from videorft.engine.config import EncoderTrainConfig
    from videorft.engine.encoder import write_untrained_encoder

    cfg = EncoderTrainConfig(image_size=32, patch_size=8, hidden_size=32, num_layers=1, num_heads=2,
                             intermediate_size=64)
    return write_untrained_encoder(integration_root / "encoder", cfg)


@pytest.fixture(scope="session")
def grpo_run(integration_root, world, sft_run, encoder) -> Path:
    """The uninterrupted reference GRPO run (accuracy, format and semantic rewards)."""
    out = integration_root / "grpo"
    run_stage("grpo", grpo_config(world, sft_run / "final", out, encoder), integration_root)
    return out


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (importlib import mode cannot import a conftest)."""
    return SimpleNamespace(
        run_stage=run_stage, kill_after_checkpoint=kill_after_checkpoint, read_rows=read_rows,
        training_rows=training_rows, load_weights=load_weights, sft_config=sft_config, grpo_config=grpo_config,
        stage_env=stage_env,
        TWO_RANKS=TWO_RANKS, deepspeed_two_ranks=deepspeed_two_ranks, GRPO_STEPS=GRPO_STEPS, SFT_STEPS=SFT_STEPS)
