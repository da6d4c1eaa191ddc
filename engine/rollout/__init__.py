"""Rollout engines: sample G completions per prompt (HF generate on CPU, colocated vLLM on CUDA).

Both satisfy `types.RolloutEngine`: generate(batch) -> Rollouts (ids, mask, texts, sampler
log-probs), sleep(), wake(), sync_weights(model).
"""

from videorft.engine.rollout.types import RolloutEngine

DEFAULT_MAX_MODEL_LEN = 32768
"""vLLM's context when neither rollout.vllm_max_model_len nor the video settings give a budget."""


def build_rollout(backend: str, model, tokenizer, cfg, model_path: str = "", dtype: str = "bfloat16",
                  seed: int = 0, video=None) -> RolloutEngine:
    """The rollout engine for a resolved backend name ("hf" or "vllm").

    model: the policy (plain transformers model; vLLM re-syncs from it when its weights are stale).
    cfg: the RolloutConfig. video: the run's VideoConfig, from which vLLM's max_model_len is derived
    when rollout.vllm_max_model_len is unset (without it, DEFAULT_MAX_MODEL_LEN). seed: the run's
    seed (vLLM adds the tensor-parallel group index; HF generate draws from torch's generator,
    seeded per rank).
    """
    if backend == "hf":
        from videorft.engine.rollout.hf import HFRollout

        return HFRollout(model, tokenizer, cfg)
    if backend == "vllm":
        from videorft.engine.rollout.vllm_colocated import VLLMRollout, default_max_model_len

        derived = default_max_model_len(video, cfg.max_new_tokens) if video is not None else None
        max_len = cfg.vllm_max_model_len or derived or DEFAULT_MAX_MODEL_LEN
        return VLLMRollout(model_path, model, tokenizer, cfg, max_model_len=max_len, dtype=dtype, seed=seed)
    raise ValueError(f"unknown rollout backend {backend!r}; choose 'hf' or 'vllm'")
