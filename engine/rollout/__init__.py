"""Rollout engines: sample G completions per prompt (HF generate on CPU, colocated vLLM on CUDA)."""


def build_rollout(backend: str, model, tokenizer, cfg, model_path: str = "", max_model_len: int = 32768,
                  dtype: str = "bfloat16", seed: int = 0):
    """The rollout engine for a resolved backend name ("hf" or "vllm")."""
    if backend == "hf":
        from videorft.engine.rollout.hf import HFRollout

        return HFRollout(model, tokenizer, cfg)
    if backend == "vllm":
        from videorft.engine.rollout.vllm_colocated import VLLMRollout

        return VLLMRollout(model_path, tokenizer, cfg, max_model_len=max_model_len, dtype=dtype, seed=seed)
    raise ValueError(f"unknown rollout backend {backend!r}; choose 'hf' or 'vllm'")
