"""Atomic, resumable checkpoints.

    <run_dir>/checkpoints/step-000100/model/        HF save_pretrained (safetensors) + tokenizer +
                                                    processor files: loadable by transformers,
                                                    AutoProcessor and vLLM as is
    <run_dir>/checkpoints/step-000100/trainer.pt    optimizer, schedule, step, trainer state (plain)
    <run_dir>/checkpoints/step-000100/deepspeed/    DeepSpeed engine state (ZeRO runs)
    <run_dir>/checkpoints/step-000100/rng-<rank>.pt every rank's RNG states
    <run_dir>/checkpoints/latest                    name of the newest complete checkpoint

A checkpoint is written into `step-N.tmp` and renamed when complete, and `latest` is replaced
atomically after that, so a run killed at any moment resumes from the last complete one.
Everything loads with torch.load(weights_only=True) or safetensors.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videorft.engine.models.processor_files import write_processor_files
from videorft.engine.trainers.distributed import barrier, rng_state, set_rng_state
from videorft.engine.trainers.train_engine import TrainEngine

LATEST = "latest"


def _safe_rng(state: dict) -> dict:
    """RNG states in types that torch.load(weights_only=True) accepts."""
    name, keys, pos, has_gauss, cached = state["numpy"]
    out = dict(state)
    out["numpy"] = (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached)
    return out


def _restore_rng(state: dict) -> None:
    name, keys, pos, has_gauss, cached = state["numpy"]
    state = dict(state, numpy=(name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    set_rng_state(state)


def _model_state(engine: TrainEngine) -> dict[str, torch.Tensor] | None:
    """Full model weights on rank 0 (ZeRO-3 gathers them: a collective call)."""
    if engine.uses_deepspeed and engine.module.zero_optimization_stage() == 3:
        state = engine.module._zero3_consolidated_16bit_state_dict()
        prefix = "model."
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} if state else None
    return None


def save_checkpoint(engine: TrainEngine, tokenizer, run_dir: Path, step: int, state: dict[str, Any],
                    keep_last: int = 2) -> Path:
    """Write checkpoint `step` (collective under DeepSpeed: every rank must call it)."""
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:06d}"
    tmp = root / f"step-{step:06d}.tmp"
    info = engine.info
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(info)
    full_state = _model_state(engine)
    if info.is_main:
        model = engine.policy.model
        model.save_pretrained(tmp / "model", state_dict=full_state, safe_serialization=True)
        tokenizer.save_pretrained(tmp / "model")
        write_processor_files(tmp / "model", model.config, tokenizer, source=model.name_or_path)
    if engine.uses_deepspeed:
        engine.module.save_checkpoint(str(tmp / "deepspeed"), tag="state", client_state={"trainer": state})
    elif info.is_main:
        torch.save({"optimizer": engine.optimizer.state_dict(), "scheduler": engine.scheduler.state_dict(),
                    "trainer": state}, tmp / "trainer.pt")
    torch.save(_safe_rng(rng_state()), tmp / f"rng-{info.rank}.pt")
    barrier(info)
    if info.is_main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = root / (LATEST + ".tmp")
        pointer.write_text(final.name + "\n")
        os.replace(pointer, root / LATEST)
        _prune(root, keep_last)
    barrier(info)
    return final


def _prune(root: Path, keep_last: int) -> None:
    done = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in done[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def export_final(run_dir: Path, is_main: bool) -> Path:
    """Copy the newest checkpoint's HF model to <run_dir>/final (what later stages load)."""
    final = Path(run_dir) / "final"
    ckpt = latest_checkpoint(run_dir)
    if is_main and ckpt is not None:
        shutil.rmtree(final, ignore_errors=True)
        shutil.copytree(ckpt / "model", final)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    pointer = Path(run_dir) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    return path if path.is_dir() else None


def _load_model_weights(model: torch.nn.Module, folder: Path) -> None:
    """Copy the weights of a save_pretrained folder into the live model, in place.

    The folder holds the released checkpoint's tensor names (save_pretrained reverts transformers'
    renaming, e.g. live `model.language_model.layers.0` is saved as `model.layers.0`), so it is
    read back through from_pretrained, which applies the same conversion a user's load does.
    """
    dtype = next(model.parameters()).dtype
    saved = type(model).from_pretrained(folder, dtype=dtype)
    missing, unexpected = model.load_state_dict(saved.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"checkpoint {folder} does not match the model: missing {missing}, "
                           f"unexpected {unexpected}")
    del saved


def load_checkpoint(engine: TrainEngine, path: Path) -> dict[str, Any]:
    """Restore weights, optimizer and schedule from `path`; returns the trainer state (RNGs: restore_rng)."""
    if engine.uses_deepspeed:
        _, client = engine.module.load_checkpoint(str(path / "deepspeed"), tag="state")
        state = client["trainer"]
    else:
        _load_model_weights(engine.policy.model, path / "model")
        saved = torch.load(path / "trainer.pt", weights_only=True)
        engine.optimizer.load_state_dict(saved["optimizer"])
        engine.scheduler.load_state_dict(saved["scheduler"])
        state = saved["trainer"]
    return state


def restore_rng(path: Path, rank: int) -> None:
    """Put this rank's RNGs back where they were when checkpoint `path` was written.

    Separate from load_checkpoint on purpose: the trainers call it last, right before the step
    loop, so nothing that runs during set-up (model loading, data, reference) draws from the
    restored streams and the resumed steps sample exactly what the uninterrupted run sampled.
    """
    _restore_rng(torch.load(Path(path) / f"rng-{rank}.pt", weights_only=True))
