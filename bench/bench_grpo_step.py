"""The whole GRPO step (rollout, rewards, log-probs, update) with and without prefix sharing.

A video-heavy step as VideoRFT runs it, scaled to a CPU: one prompt of 16 frames at 280x308
(8 temporal patches x 110 merged tokens = 880 video tokens, ~1,000 prompt tokens), G
completions of 128 tokens (rollout.min_new_tokens, so every completion has its full length), a wider
tiny Qwen2.5-VL (hidden 256, 4 layers) with a frozen reference for the KL term. Providers, side
by side in one run on the same rollouts' shapes:
  prefix-shared   grpo.prefix_sharing: each group's prompt runs once in the log-prob and update
                  passes, and HF generate prefills it once for the G completions
  per-row         every completion row carries its own copy of the prompt
extra_info: tokens_per_s (completion tokens trained per second of the step), peak_mem_mib,
phase_s (seconds per phase). Guarded figure: per-row step time / prefix-shared step time, and
the same ratio for the log-prob + update phases alone.

    OMP_NUM_THREADS=2 pytest bench/bench_grpo_step.py --benchmark-json=bench/results/cpu-2core/grpo_step-<date>.json
"""

from __future__ import annotations

import copy
import time

import pytest
import torch

from bench.conftest import HAS_CUDA, stamp
from bench.peak_memory import measure_peak_mib
from videorft.engine.config import TinyModelConfig, load_config
from videorft.engine.models.attention import VARLEN_ATTENTION, apply_attention
from videorft.engine.models.policy import PolicyModel
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.tokenizer import build_tokenizer
from videorft.engine.rewards import GroupScorer
from videorft.engine.rollout.hf import HFRollout
from videorft.engine.trainers.distributed import DistInfo
from videorft.engine.trainers.grpo_step import StepContext, grpo_step
from videorft.engine.trainers.phases import PhaseTimer
from videorft.engine.trainers.reference import ReferencePolicy
from videorft.engine.trainers.train_engine import TrainEngine
from videorft.loaders.clip import VideoClip
from videorft.loaders.collate import SpecialIds, collate_prompts
from videorft.loaders.dataset import VideoQADataset
from videorft.loaders.family import family_named
from videorft.loaders.records import Record

DEVICE = torch.device("cuda" if HAS_CUDA else "cpu")
WIDE = TinyModelConfig(hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=768,
                       vision_depth=2, vision_hidden_size=64)
PROVIDERS = {"prefix-shared": True, "per-row": False}
COMPLETION = 128


def _config(group_size: int, prefix_sharing: bool):
    return load_config(None, [
        f"run.device={DEVICE.type}", "model.dtype=float32", f"rollout.group_size={group_size}",
        f"rollout.max_new_tokens={COMPLETION}", f"rollout.min_new_tokens={COMPLETION}", "rollout.top_p=1.0",
        f"rollout.prefill_once={str(prefix_sharing).lower()}", "grpo.prompts_per_step=1",
        f"grpo.prefix_sharing={str(prefix_sharing).lower()}", "rewards.functions=[accuracy,format]",
        "rewards.length_bonus.enabled=false", "kernels.backend=auto", "grpo.optim.lr=1e-5",
        "video.min_pixels=86240", "video.max_pixels=86240", "video.max_pixels_floor=1.0"])


def _prompt_batch(tokenizer, cfg):
    """One video prompt: 16 random frames at 280x308, the engine's own dataset building the sample."""
    frames = torch.randint(0, 256, (16, 280, 308, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    clip = VideoClip(frames, list(range(0, 64, 4)), [i / 4 for i in range(16)], fps=16.0, total_frames=64)
    record = Record(problem_id=0, problem="Which way does the red square move?", problem_type="multiple choice",
                    data_type="video", path="x.mp4", solution="<answer>B</answer>",
                    options=["A. left", "B. right", "C. up", "D. down"])
    dataset = VideoQADataset([record], tokenizer, cfg.video, cfg.data, "prompt", family=family_named("qwen2_5_vl"))
    return collate_prompts([dataset.build(0, record, clip)], SpecialIds.from_tokenizer(tokenizer))


def _context(model, tokenizer, cfg) -> StepContext:
    info = DistInfo(0, 1, 0, DEVICE)
    policy = copy.deepcopy(model).to(DEVICE)
    engine = TrainEngine(PolicyModel(policy, "auto"), cfg.grpo.optim, cfg.distributed, info, total_steps=100)
    reference = ReferencePolicy(PolicyModel(copy.deepcopy(model).to(DEVICE), "auto").requires_grad_(False), DEVICE)
    rollout = HFRollout(engine.policy.model, tokenizer, cfg.rollout)
    return StepContext(cfg=cfg, engine=engine, rollout=rollout, scorer=GroupScorer.from_config(cfg.rewards),
                       reference=reference, timer=PhaseTimer(DEVICE), device=DEVICE,
                       special_ids=SpecialIds.from_tokenizer(tokenizer))


@pytest.fixture(scope="module")
def tiny():
    tokenizer = build_tokenizer("bpe")
    model = build_tiny_model(WIDE, tokenizer, seed=0)
    apply_attention(model, VARLEN_ATTENTION)
    return model, tokenizer


@pytest.mark.bench
@pytest.mark.parametrize("group_size", [8, 16])
def test_grpo_step(benchmark, tiny, guard, group_size):
    """Both providers in one test, alternating rounds, so the ratio is measured side by side."""
    model, tokenizer = tiny
    batch = _prompt_batch(tokenizer, _config(group_size, True))
    prompt_tokens = int(batch.attention_mask.sum())
    contexts = {name: _context(model, tokenizer, _config(group_size, shared)) for name, shared in PROVIDERS.items()}
    times = {name: [] for name in PROVIDERS}
    phases = {name: {} for name in PROVIDERS}
    peaks = {}
    for round_ in range(3):                                            # round 0 warms up
        for name, ctx in contexts.items():
            torch.manual_seed(round_)
            started = time.perf_counter()
            if round_ == 1:
                _, peaks[name], _ = measure_peak_mib(lambda: grpo_step(ctx, iter([batch])), DEVICE)
            else:
                grpo_step(ctx, iter([batch]))
            seconds = time.perf_counter() - started
            step_phases = ctx.timer.pop()
            if round_:
                times[name].append(seconds)
                for key, value in step_phases.items():
                    phases[name][key[5:]] = phases[name].get(key[5:], 0.0) + value / 2
    shared, per_row = (min(times[n]) for n in PROVIDERS)
    train = {n: phases[n].get("logprob", 0) + phases[n].get("update", 0) for n in PROVIDERS}
    benchmark.extra_info["providers"] = {
        name: {"step_s": min(times[name]), "phase_s": phases[name], "peak_mem_mib": peaks.get(name),
               "tokens_per_s": group_size * COMPLETION / min(times[name])} for name in PROVIDERS}
    stamp(benchmark, "prefix-shared vs per-row", {"G": group_size, "prompt": prompt_tokens, "completion": COMPLETION,
                                                  "hidden": WIDE.hidden_size, "layers": WIDE.num_layers},
          tokens_per_s=group_size * COMPLETION / shared, peak_mem_mib=peaks.get("prefix-shared"))
    benchmark.extra_info["speedup_step"] = per_row / shared
    benchmark.extra_info["speedup_logprob_update"] = train["per-row"] / train["prefix-shared"]
    benchmark.extra_info["speedup_rollout"] = phases["per-row"]["rollout"] / phases["prefix-shared"]["rollout"]
    benchmark.pedantic(lambda: None, rounds=1)                        # the figures above are the measurement
    guard(f"grpo_step/G{group_size}/step_speedup", per_row / shared)
    guard(f"grpo_step/G{group_size}/logprob_update_speedup", train["per-row"] / train["prefix-shared"])
