"""Attention over packed variable-length sequences vs a padded batch.

CPU (small shapes): the varlen strategies (one SDPA call per sequence, one call with a
block-diagonal mask) against padding every sequence to the longest, for language-model-like and
vision-window-like segment patterns; and a whole tiny Qwen2.5-VL forward, packed with
"videorft_varlen" against a padded batch with "sdpa".
CUDA (Qwen2.5-VL-7B shapes, bf16, gpu marker): flash-attn varlen against padded SDPA and the
per-sequence loop, forward and forward+backward.
tokens_per_s counts real (unpadded) tokens; on CPU it uses the fastest round (CUDA: the mean).
tflops counts only the useful (in-sequence) work. Guarded: the padded baseline's time over the
varlen path's, per case (sdpa_segments, what "auto" runs on CPU and on CUDA without flash-attn; on
CUDA flash_attn too), and the padded tiny Qwen2.5-VL forward's over the packed one.

On a shared CPU machine wall-clock rounds vary 10x with other users' load; record with one
thread and CPU time, which measures the work itself:
  OMP_NUM_THREADS=1 pytest bench/bench_attention.py --benchmark-timer=time.process_time \
      --benchmark-json=bench/results/cpu-2core/attention-<yyyymmdd>.json
"""

import pytest
import torch
import torch.nn.functional as F
from bench.conftest import HAS_CUDA, stamp  # pytest (importlib mode) registers it under this name
from bench.guard import fastest_round

from videorft.engine.models.varlen_attention import cu_seqlens_from_lengths, varlen_attention

CPU_PROVIDERS = ["sdpa_segments", "sdpa_block_mask", "sdpa_padded"]   # "auto" is sdpa_segments on CPU
CPU_CASES = {
    # name: (lengths, query heads, kv heads, head dim, causal)
    "lm_packed": ([300, 700, 150, 900], 8, 2, 64, True),
    "vit_windows": ([64] * 40 + [16] * 8, 4, 4, 80, False),
}
GPU_CASES = {
    "lm_7b": ([6144, 3000, 1800, 5200], 28, 4, 128, True),              # 16k tokens, GQA 7:1
    "vit_full": ([1024] * 24, 16, 16, 80, False),                        # 3 videos x 8 frames of 32x32 patches
    "vit_windows": ([64] * 384, 16, 16, 80, False),                      # the same patches in 8x8 windows
}


def _padded_sdpa(q, k, v, lengths, causal):
    """Baseline: pad every sequence to the longest, one batched SDPA call ([B, H, Lmax, D])."""
    rep = q.shape[1] // k.shape[1]
    longest = max(lengths)
    chunks = [torch.split(t, lengths) for t in (q, k, v)]
    qp, kp, vp = (torch.stack([F.pad(c, (0, 0, 0, 0, 0, longest - c.shape[0])) for c in cs]).transpose(1, 2)
                  for cs in chunks)                                       # [B, H, Lmax, D]
    kp, vp = kp.repeat_interleave(rep, 1), vp.repeat_interleave(rep, 1)
    if causal:   # right padding + causal: real queries never see the padded tail
        out = F.scaled_dot_product_attention(qp, kp, vp, is_causal=True)
    else:
        keys = torch.arange(longest, device=q.device)[None] < torch.tensor(lengths, device=q.device)[:, None]
        out = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=keys[:, None, None, :])
    return torch.cat([o[:, :n].transpose(0, 1) for o, n in zip(out, lengths)])   # [T, Hq, D]


def _runner(provider, q, k, v, lengths, causal):
    """provider: "sdpa_padded" (the baseline) or a varlen backend name."""
    cu = cu_seqlens_from_lengths(lengths, device=q.device)
    if provider == "sdpa_padded":
        return lambda: _padded_sdpa(q, k, v, lengths, causal)
    backend = provider                                              # flash_attn | sdpa_segments | sdpa_block_mask
    return lambda: varlen_attention(q, k, v, cu, max(lengths), causal=causal, backend=backend)


def _useful_flops(lengths, heads, dim, causal, backward):
    pairs = sum(n * n / 2 if causal else n * n for n in lengths)
    return 4 * pairs * heads * dim * (3.5 if backward else 1.0)          # backward ~2.5x forward


@pytest.mark.parametrize("case", list(CPU_CASES))
@pytest.mark.parametrize("provider", CPU_PROVIDERS)
def test_cpu_varlen_strategies(benchmark, guard, case, provider):
    if HAS_CUDA:
        pytest.skip("CPU suite")
    lengths, hq, hkv, dim, causal = CPU_CASES[case]
    total = sum(lengths)
    q, k, v = (torch.randn(total, h, dim) for h in (hq, hkv, hkv))
    benchmark.pedantic(_runner(provider, q, k, v, lengths, causal), rounds=7, warmup_rounds=1)
    best = benchmark.stats.stats.min
    stamp(benchmark, provider, {"case": case, "segments": len(lengths), "tokens": total, "heads": hq,
                                "kv_heads": hkv, "head_dim": dim, "causal": causal},
          tokens_per_s=total / best, tflops=_useful_flops(lengths, hq, dim, causal, False) / best / 1e12)
    guard.measured(f"attention/{case}", provider, fastest_round(benchmark))


def _tiny_samples(tok, model, count=4):
    from videorft.loaders.family import family_named
    from videorft.loaders.qwen_inputs import token_type_ids
    from videorft.loaders.qwen_preprocess import preprocess_video

    img, vid = tok.convert_tokens_to_ids("<|image_pad|>"), tok.convert_tokens_to_ids("<|video_pad|>")
    samples = []
    for i in range(count):
        frames, h, w = 2 + 2 * i, 56 * (1 + i % 2), 56 * (2 + i % 3)
        pixels, grid = preprocess_video(torch.randint(0, 256, (frames, h, w, 3), dtype=torch.uint8),
                                        max_pixels=h * w)
        msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe. " * (1 + 6 * i)}]}]
        text = family_named("qwen2_5_vl").expand_video(tok.apply_chat_template(msgs, tokenize=False), [grid.tolist()])
        ids = tok(text, return_tensors="pt")["input_ids"][0]
        samples.append({"input_ids": ids, "mm_token_type_ids": token_type_ids(ids, img, vid),
                        "pixel_values_videos": pixels, "video_grid_thw": grid[None]})
    return samples


def _padded_batch(samples, pad_id):
    from videorft.loaders.qwen_inputs import left_pad

    ids, mask = left_pad([s["input_ids"] for s in samples], pad_id)
    types, _ = left_pad([s["mm_token_type_ids"] for s in samples], 0)
    return {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": types, "use_cache": False,
            "pixel_values_videos": torch.cat([s["pixel_values_videos"] for s in samples]),
            "video_grid_thw": torch.cat([s["video_grid_thw"] for s in samples])}


@pytest.mark.parametrize("provider", ["packed_videorft_varlen", "padded_sdpa"])
def test_cpu_tiny_qwen_forward(benchmark, guard, provider):
    if HAS_CUDA:
        pytest.skip("CPU suite")
    from videorft.engine.config import TinyModelConfig
    from videorft.engine.models.attention import VARLEN_ATTENTION, apply_attention
    from videorft.engine.models.packing import pack_samples
    from videorft.engine.models.tiny import build_tiny_model
    from videorft.engine.models.tokenizer import build_tokenizer

    tok = build_tokenizer("bpe")
    model = build_tiny_model(TinyModelConfig(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=256,
                                             vision_hidden_size=64, vision_depth=4), tok)
    samples = _tiny_samples(tok, model)
    if provider == "padded_sdpa":
        apply_attention(model, "sdpa")
        inputs = _padded_batch(samples, tok.pad_token_id)
    else:
        apply_attention(model, VARLEN_ATTENTION)
        inputs = pack_samples(samples, model).model_inputs()
    tokens = sum(int(s["input_ids"].numel()) for s in samples)

    def forward():
        with torch.no_grad():
            return model.model(**inputs).last_hidden_state

    benchmark.pedantic(forward, rounds=7, warmup_rounds=1)
    stamp(benchmark, provider, {"samples": len(samples), "tokens": tokens,
                                "padded_tokens": len(samples) * max(int(s["input_ids"].numel()) for s in samples)},
          tokens_per_s=tokens / benchmark.stats.stats.min)
    guard.measured("attention/tiny_qwen_forward", provider, fastest_round(benchmark))


@pytest.mark.gpu
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd_bwd"])
@pytest.mark.parametrize("case", list(GPU_CASES))
@pytest.mark.parametrize("provider", ["flash_attn", "sdpa_padded", "sdpa_segments"])
def test_cuda_varlen_vs_padded(benchmark, guard, case, provider, backward):
    if provider == "flash_attn":
        pytest.importorskip("flash_attn")
    lengths, hq, hkv, dim, causal = GPU_CASES[case]
    total = sum(lengths)
    q, k, v = (torch.randn(total, h, dim, device="cuda", dtype=torch.bfloat16, requires_grad=backward)
               for h in (hq, hkv, hkv))
    run = _runner(provider, q, k, v, lengths, causal)
    grad_out = torch.randn(total, hq, dim, device="cuda", dtype=torch.bfloat16)

    def step():
        out = run()
        if backward:
            torch.autograd.grad(out, (q, k, v), grad_out)
        torch.cuda.synchronize()

    step()
    torch.cuda.reset_peak_memory_stats()
    benchmark.pedantic(step, rounds=10, warmup_rounds=2)
    mean = benchmark.stats.stats.mean
    stamp(benchmark, provider, {"case": case, "segments": len(lengths), "tokens": total, "heads": hq,
                                "kv_heads": hkv, "head_dim": dim, "causal": causal, "backward": backward},
          tokens_per_s=total / mean, tflops=_useful_flops(lengths, hq, dim, causal, backward) / mean / 1e12,
          peak_mem_mib=torch.cuda.max_memory_allocated() / 2**20)
    guard.measured(f"attention/{case}/{'fwd_bwd' if backward else 'fwd'}", provider, fastest_round(benchmark))


def test_guarded_ratios(guard):
    """Guarded: the padded baseline's time over the varlen path's, per case (runs after the providers)."""
    varlen = ["flash_attn", "sdpa_segments"] if HAS_CUDA else ["sdpa_segments"]   # what "auto" may run
    guard.ratios("attention", [("sdpa_padded", v) for v in varlen] + [("padded_sdpa", "packed_videorft_varlen")])
