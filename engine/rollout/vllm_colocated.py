"""Rollouts with vLLM colocated in the training process (CUDA only; checked against vLLM 0.32).

One engine per rank, on that rank's own GPU: under torchrun or the DeepSpeed launcher the engine
runs in vLLM's torchrun mode (`distributed_executor_backend="external_launcher"`, which reads
RANK / LOCAL_RANK, joins the existing process group and needs VLLM_ENABLE_V1_MULTIPROCESSING=0),
so no engine lands on cuda:0 by default; the trainer's current CUDA device is put back after
construction. With `rollout.vllm_tensor_parallel_size` > 1, consecutive ranks form one
tensor-parallel engine and run the same requests (their prompts are gathered and the outputs
split back).

Memory and weights (`rollout.vllm_sleep`): after a rollout the engine sleeps at level 2 (weights
and KV cache discarded, nothing copied to host RAM), so the update has the memory.
`sync_weights(model)` then wakes the weight buffers only and streams the new weights in, one
module at a time (gathered under ZeRO-3), by their transformers names through vLLM's
`load_weights`; the KV cache is woken just before the next generate. PyTorch's cached free blocks
are handed back to CUDA (`empty_cache`) after sleeping and before each wake, since vLLM's
sleep-mode pool cannot use them. If the weights are still discarded when a rollout starts (a
step skipped before its sync), generate re-syncs them from the policy first. After every sync the prefix, multimodal-processor and encoder caches are reset:
vision embeddings computed with the old weights must not be reused.

vllm is imported only when this backend is built.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist

from videorft.engine.config import RolloutConfig
from videorft.engine.rollout.media import frame_sizes, vllm_media
from videorft.engine.rollout.types import (PromptSource, Rollouts, completion_mask, decode_completions,
                                            suppressed_token_ids)
from videorft.engine.rollout.weight_sync import module_weight_chunks

log = logging.getLogger("videorft")

SLEEP_TAGS = ("weights", "kv_cache")
"""What level-2 sleep discards (vLLM's wake_up tags)."""
TEXT_TOKEN_ALLOWANCE = 1024
"""Prompt tokens besides the vision tokens (system prompt, question, options) in the default budget."""


def default_max_model_len(video_cfg, max_new_tokens: int, pixels_per_token: int = 28 * 28) -> int | None:
    """Prompt budget (vision tokens at the video settings' bounds + text) plus max_new_tokens.

    None when the frames keep their native resolution (no pixel bound: no budget to derive).
    pixels_per_token: (patch * merge)^2; Qwen2/2.5-VL's 784 over-counts Qwen3-VL's 1024 (safe).
    """
    if video_cfg.max_pixels is None:
        return None
    frames = video_cfg.num_frames or video_cfg.max_frames
    temporal_patches = -(-frames // 2)
    video_tokens = temporal_patches * (video_cfg.max_pixels // pixels_per_token)
    image_tokens = video_cfg.image_max_pixels // pixels_per_token
    return max(video_tokens, image_tokens) + TEXT_TOKEN_ALLOWANCE + max_new_tokens


def _executor_backend(tp: int) -> str | None:
    """"external_launcher" when launched as one of several ranks (or under DeepSpeed), else vLLM's default."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() % tp:
            raise ValueError(f"rollout.vllm_tensor_parallel_size={tp} does not divide the "
                             f"world size {dist.get_world_size()}")
        return "external_launcher"
    if tp > 1:
        raise ValueError(f"rollout.vllm_tensor_parallel_size={tp} needs a launch with torchrun or the "
                         "DeepSpeed launcher (one process per GPU)")
    return None


def _tensor_parallel_group(tp: int):
    """This rank's group of `tp` consecutive ranks (None for tp 1); a collective call."""
    if tp == 1:
        return None
    world = dist.get_world_size()
    group, _ = dist.new_subgroups_by_enumeration([list(range(r, r + tp)) for r in range(0, world, tp)])
    return group


class VLLMRollout:
    """Samples G completions per prompt with vLLM; prompts carry the decoded clip's frames."""

    name = "vllm"

    def __init__(self, model_path: str, model: torch.nn.Module | None, tokenizer, cfg: RolloutConfig,
                 max_model_len: int, dtype: str = "bfloat16", seed: int = 0):
        """model: the policy (plain transformers model) that a stale engine re-syncs from; None for
        an engine that never sleeps (evaluation).
        seed: the run's seed; each tensor-parallel group adds its index, so the ranks of one group
        sample alike and the groups differ."""
        tp = cfg.vllm_tensor_parallel_size
        if tp < 1:
            raise ValueError(f"rollout.vllm_tensor_parallel_size must be >= 1, got {tp}")
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"      # in-process: weight sync is a local copy
        from vllm import LLM

        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        backend = _executor_backend(tp)
        rank = dist.get_rank() if backend else 0
        device = torch.cuda.current_device() if torch.cuda.is_available() else None
        self.llm = LLM(model=model_path, dtype=dtype, gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                       max_model_len=max_model_len, tensor_parallel_size=tp, distributed_executor_backend=backend,
                       enable_sleep_mode=cfg.vllm_sleep, enable_prefix_caching=True,
                       logprobs_mode="processed_logprobs", limit_mm_per_prompt={"video": 1, "image": 1},
                       seed=seed + rank // tp)
        if device is not None:
            torch.cuda.set_device(device)                       # vLLM's worker set its own
        self._tp_group = _tensor_parallel_group(tp) if backend else None
        self._asleep: set[str] = set()
        self._patch_size = int(self.llm.llm_engine.model_config.hf_config.vision_config.patch_size)
        log.info("vLLM rollout engine: max_model_len %d, tensor parallel %d, executor %s", max_model_len, tp,
                 backend or "default")

    def _sampling(self, n: int, greedy: bool, max_new_tokens: int | None, temperature: float | None,
                  top_p: float | None):
        from vllm import SamplingParams

        common = dict(n=n, max_tokens=max_new_tokens or self.cfg.max_new_tokens, min_tokens=self.cfg.min_new_tokens,
                      logprobs=0, logit_bias={i: -100.0 for i in suppressed_token_ids(self.tokenizer)})
        if greedy:
            return SamplingParams(temperature=0.0, **common)
        return SamplingParams(temperature=temperature or self.cfg.temperature, top_p=top_p or self.cfg.top_p,
                              top_k=self.cfg.top_k if self.cfg.top_k > 0 else -1, **common)

    def _requests(self, prompts: PromptSource) -> list[dict[str, Any]]:
        """One vLLM prompt per batch prompt: the text with one vision placeholder, and its media."""
        kinds = [r.data_type for r in prompts.records]
        sizes = frame_sizes(kinds, prompts.model_inputs(), self._patch_size)
        return [{"prompt": text, **vllm_media(clip, kind, size)}
                for text, clip, kind, size in zip(prompts.prompt_texts, prompts.clips, kinds, sizes)]

    @torch.no_grad()
    def generate(self, prompts: PromptSource, group_size: int | None = None, greedy: bool = False,
                 max_new_tokens: int | None = None, temperature: float | None = None,
                 top_p: float | None = None, features=None) -> Rollouts:
        """G completions for each of the P prompts, rows grouped by prompt, with sampler log-probs.

        `features` (a frozen tower's encodings) are not used: vLLM encodes the media with its own
        copy of the weights, and its encoder cache serves the G completions of a prompt."""
        g = group_size or self.cfg.group_size
        self.wake()
        requests = self._requests(prompts)
        outputs = self._generate_in_group(requests, self._sampling(g, greedy, max_new_tokens, temperature, top_p))
        rows = [c for out in outputs for c in out.outputs]                      # P*G completions
        return _as_rollouts(rows, self.tokenizer, g)

    def _generate_in_group(self, requests: list[dict], sampling) -> list:
        """generate(); ranks of one tensor-parallel engine run all their requests together."""
        if self._tp_group is None:
            return self.llm.generate(requests, sampling, use_tqdm=False)
        parts: list[list[dict] | None] = [None] * dist.get_world_size(self._tp_group)
        dist.all_gather_object(parts, requests, group=self._tp_group)
        outputs = self.llm.generate([r for part in parts for r in part], sampling, use_tqdm=False)
        start = sum(len(part) for part in parts[:dist.get_rank(self._tp_group)])
        return outputs[start:start + len(requests)]

    @torch.no_grad()
    def sync_weights(self, model: torch.nn.Module) -> None:
        """Load `model`'s current weights into the engine (collective under ZeRO-3; safe at any time).

        Streams one module's parameters at a time by their transformers names; vLLM maps them to
        its own (fused) parameters. Leaves the KV cache asleep if it was.
        """
        if "weights" in self._asleep:
            _release_cached_blocks()
            self.llm.wake_up(tags=["weights"])
            self._asleep.discard("weights")
        for chunk in module_weight_chunks(model):
            self.llm.apply_model(lambda vllm_model, chunk=chunk: vllm_model.load_weights(iter(chunk)))
        self.reset_caches()

    def reset_caches(self) -> None:
        """Forget everything computed with earlier weights: prefix KV, processed media, vision embeddings."""
        self.llm.reset_prefix_cache()
        self.llm.reset_mm_cache()
        self.llm.llm_engine.reset_encoder_cache()

    def sleep(self) -> None:
        """Discard weights and KV cache (level 2) and return free cached blocks to CUDA for the update.

        A no-op when vllm_sleep is off or while part of the engine is still asleep."""
        if self.cfg.vllm_sleep and not self._asleep:
            self.llm.sleep(level=2)
            self._asleep = set(SLEEP_TAGS)
            _release_cached_blocks()

    def wake(self) -> None:
        """Be ready to generate: weights that were discarded are re-synced from the policy, then the
        KV cache is restored (a no-op when awake)."""
        if "weights" in self._asleep:
            if self.model is None:
                raise RuntimeError("the vLLM engine's weights were discarded by sleep() and no policy model "
                                   "was given to reload them from; call sync_weights(model) first")
            self.sync_weights(self.model)
        if "kv_cache" in self._asleep:
            _release_cached_blocks()
            self.llm.wake_up(tags=["kv_cache"])
            self._asleep.discard("kv_cache")


def _release_cached_blocks() -> None:
    """Hand PyTorch's cached but free CUDA blocks back to the driver: vLLM's sleep-mode pool maps
    its own memory and cannot use them (the trainer leaves several GiB cached after an update)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _as_rollouts(rows: list, tokenizer, group_size: int) -> Rollouts:
    """vLLM CompletionOutputs (P*G, in prompt order) as right-padded Rollouts with sampler log-probs."""
    width = max(1, max(len(c.token_ids) for c in rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)     # [P*G, C]
    logprobs = torch.zeros(len(rows), width, dtype=torch.float32)                    # [P*G, C]
    for i, c in enumerate(rows):
        tokens = list(c.token_ids)
        ids[i, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        logprobs[i, :len(tokens)] = torch.tensor([c.logprobs[t][tok].logprob for t, tok in enumerate(tokens)])
    lengths = torch.tensor([len(c.token_ids) for c in rows])
    mask = completion_mask(ids, tokenizer.eos_token_id)
    mask = mask * (torch.arange(width)[None] < lengths[:, None]).long()                 # no pad past the end
    logprobs = torch.where(mask.bool(), logprobs, 0.0)
    return Rollouts(ids, mask, decode_completions(tokenizer, ids, mask), group_size, logprobs=logprobs)
