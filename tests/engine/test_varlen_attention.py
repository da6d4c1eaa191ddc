"""Varlen attention: the op against a naive oracle, the transformers adapter, the vision tower."""

import pytest
import torch
import torch.nn.functional as F

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.attention import (
    VARLEN_ATTENTION,
    VARLEN_ATTENTION_VISION,
    apply_attention,
    attention_of,
    register_varlen_attention,
    varlen_attention_forward,
)
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.varlen_attention import (
    block_diagonal_mask,
    choose_backend,
    cu_seqlens_from_lengths,
    cu_seqlens_from_position_ids,
    segment_ids,
    varlen_attention,
    varlen_attention_reference,
)
from videorft.loaders.qwen_preprocess import preprocess_video

ATOL_FP32 = 1e-5


class _Attn(torch.nn.Module):
    """Stand-in for the `module` argument transformers passes (only is_causal is read)."""

    def __init__(self, is_causal: bool):
        super().__init__()
        self.is_causal = is_causal


def _qkv(total, hq=4, hkv=2, dim=16, dtype=torch.float32, device="cpu", grad=False):
    return [torch.randn(total, h, dim, dtype=dtype, device=device, requires_grad=grad) for h in (hq, hkv, hkv)]


def test_cu_seqlens_helpers():
    cu = cu_seqlens_from_lengths([3, 1, 4])
    assert cu.dtype == torch.int32 and cu.tolist() == [0, 3, 4, 8]
    assert segment_ids(cu).tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    # packed row restarting at 0 (a length-1 sample in the middle), then a plain second row
    pos = torch.tensor([[0, 1, 2, 0, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7]])
    assert cu_seqlens_from_position_ids(pos).tolist() == [0, 3, 4, 8, 16]
    mask = block_diagonal_mask(cu, causal=True)
    assert mask[2, 0] and not mask[0, 2] and not mask[3, 2] and mask[7, 4] and not mask[4, 7]
    assert block_diagonal_mask(cu, causal=False)[4, 7]
    with pytest.raises(ValueError, match="lengths"):
        cu_seqlens_from_lengths([2, -1])


@pytest.mark.parametrize("backend", ["sdpa_segments", "sdpa_block_mask"])
@pytest.mark.parametrize("causal", [True, False])
def test_cpu_backends_match_oracle_and_its_gradients(backend, causal):
    lengths = [37, 1, 64, 5, 20]                      # odd sizes and a single-token sequence
    cu = cu_seqlens_from_lengths(lengths)
    q, k, v = _qkv(sum(lengths), grad=True)
    out = varlen_attention(q, k, v, cu, causal=causal, scale=0.3, backend=backend)
    ref = varlen_attention_reference(q, k, v, cu, causal=causal, scale=0.3)
    torch.testing.assert_close(out, ref, atol=ATOL_FP32, rtol=1e-4)
    grad_out = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), grad_out)
    want = torch.autograd.grad(ref, (q, k, v), grad_out)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=ATOL_FP32, rtol=1e-4)


def test_each_sequence_is_independent_of_its_neighbours():
    cu = cu_seqlens_from_lengths([10, 12, 7])
    q, k, v = _qkv(29)
    base = varlen_attention(q, k, v, cu, causal=True)
    k2, v2 = k.clone(), v.clone()
    k2[10:22] += 5.0                                    # change only the middle sequence's keys/values
    v2[10:22] -= 3.0
    moved = varlen_attention(q, k2, v2, cu, causal=True)
    torch.testing.assert_close(moved[:10], base[:10], atol=0, rtol=0)
    torch.testing.assert_close(moved[22:], base[22:], atol=0, rtol=0)
    assert not torch.allclose(moved[10:22], base[10:22])


def test_backend_choice_and_errors():
    q = torch.randn(4, 2, 8)
    assert choose_backend(q) == "sdpa_segments"
    with pytest.raises(ValueError, match="backend"):
        choose_backend(q, "triton")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="flash-attn"):
            choose_backend(q, "flash_attn")
    with pytest.raises(ValueError, match="cu_seqlens"):
        varlen_attention(q, q, q, torch.tensor([0, 3], dtype=torch.int32), causal=True)
    with pytest.raises(ValueError, match="multiple"):
        varlen_attention(torch.randn(4, 3, 8), q, q, torch.tensor([0, 4]), causal=True)


def _per_row_sdpa(query, key, value, valid, causal):
    """Reference for padded rows: SDPA on each row's real tokens only. Returns [B, T, H, D] (pads 0)."""
    rep = query.shape[1] // key.shape[1]
    out = torch.zeros(query.shape[0], query.shape[2], query.shape[1], query.shape[3])
    for b in range(query.shape[0]):
        idx = valid[b].nonzero().squeeze(1)
        q, k, v = query[b][:, idx], key[b][:, idx].repeat_interleave(rep, 0), value[b][:, idx].repeat_interleave(rep, 0)
        out[b, idx] = F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(0, 1)
    return out


def test_adapter_padding_mask_rows_match_per_row_attention():
    query, key, value = (torch.randn(3, h, 9, 8) for h in (4, 2, 2))     # [B, H, T, D]
    valid = torch.ones(3, 9, dtype=torch.bool)
    valid[0, :4] = False                                                  # left padding
    valid[2, :1] = False
    out, _ = varlen_attention_forward(_Attn(True), query, key, value, valid)
    want = _per_row_sdpa(query, key, value, valid, causal=True)
    torch.testing.assert_close(out[valid], want[valid], atol=ATOL_FP32, rtol=1e-4)
    assert torch.all(out[~valid] == 0)


def test_adapter_packed_position_ids_match_per_sample_attention():
    lengths = [5, 11, 3]
    query, key, value = (torch.randn(1, h, 19, 8) for h in (4, 2, 2))
    positions = torch.cat([torch.arange(n) for n in lengths])[None]      # [1, T]
    out, _ = varlen_attention_forward(_Attn(True), query, key, value, None, position_ids=positions)
    cu = cu_seqlens_from_lengths(lengths)
    ref = varlen_attention_reference(query[0].transpose(0, 1), key[0].transpose(0, 1),
                                     value[0].transpose(0, 1), cu, causal=True)
    torch.testing.assert_close(out[0], ref, atol=ATOL_FP32, rtol=1e-4)


def test_adapter_decoding_with_a_cache_aligns_causality_to_the_last_query():
    query, key, value = (torch.randn(2, 4, t, 8) for t in (3, 10, 10))  # 3 new queries, 10 cached keys
    keys_valid = torch.ones(2, 10, dtype=torch.bool)
    keys_valid[1, :2] = False
    out, _ = varlen_attention_forward(_Attn(True), query, key, value, keys_valid)
    allowed = torch.ones(3, 10, dtype=torch.bool).tril(diagonal=7)[None, None] & keys_valid[:, None, None]
    want = F.scaled_dot_product_attention(query, key, value, attn_mask=allowed).transpose(1, 2)
    torch.testing.assert_close(out, want, atol=ATOL_FP32, rtol=1e-4)


def test_adapter_uses_a_prepared_4d_mask_as_given():
    query, key, value = (torch.randn(2, 4, 6, 8) for _ in range(3))
    mask = torch.rand(2, 1, 6, 6) > 0.3
    mask[..., 0] = True                                                     # no empty rows
    out, _ = varlen_attention_forward(_Attn(True), query, key, value, mask)
    want = F.scaled_dot_product_attention(query, key, value, attn_mask=mask).transpose(1, 2)
    torch.testing.assert_close(out, want, atol=ATOL_FP32, rtol=1e-4)


def test_adapter_rejects_sliding_windows():
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(NotImplementedError, match="sliding"):
        varlen_attention_forward(_Attn(True), q, q, q, None, sliding_window=2)


def _videos():
    """Three small videos of different sizes and lengths: patch rows [N, 1176] and grids [3, 3]."""
    shapes = [(4, 56, 84), (6, 112, 56), (2, 56, 56)]
    rows, grids = [], []
    for frames, h, w in shapes:
        pixels, grid = preprocess_video(torch.randint(0, 256, (frames, h, w, 3), dtype=torch.uint8),
                                        max_pixels=h * w)
        rows.append(pixels)
        grids.append(grid)
    return torch.cat(rows), torch.stack(grids)


@pytest.fixture(scope="module")
def tiny_vl(bpe_tokenizer):
    # window_size 56 = 2x2 merged tokens: several windows per frame, so window and full blocks differ
    return build_tiny_model(TinyModelConfig(vision_depth=3), bpe_tokenizer)


def test_vision_tower_output_and_gradients_match_sdpa(tiny_vl):
    pixels, grids = _videos()
    results = {}
    for name in ("sdpa", VARLEN_ATTENTION):
        apply_attention(tiny_vl, name)
        tiny_vl.zero_grad()
        x = pixels.clone().requires_grad_(True)
        out = tiny_vl.model.visual(x, grid_thw=grids).pooler_output            # [N/4, H]
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads = {n: p.grad.clone() for n, p in tiny_vl.model.visual.named_parameters() if p.grad is not None}
        results[name] = (out.detach(), x.grad, grads)
    apply_attention(tiny_vl, "sdpa")
    (out_a, gx_a, ga), (out_b, gx_b, gb) = results["sdpa"], results[VARLEN_ATTENTION]
    torch.testing.assert_close(out_b, out_a, atol=ATOL_FP32, rtol=1e-4)
    torch.testing.assert_close(gx_b, gx_a, atol=ATOL_FP32, rtol=1e-4)
    assert ga.keys() == gb.keys() and any("attn.qkv" in n for n in ga)
    for n in ga:
        torch.testing.assert_close(gb[n], ga[n], atol=1e-4, rtol=1e-4, msg=n)


def test_vision_tower_hands_cu_seqlens_in_one_call_per_block(tiny_vl):
    """With the "flash" vision name each block makes one varlen call, not one call per window."""
    from transformers import AttentionInterface

    pixels, grids = _videos()
    calls = []

    def recording(module, query, key, value, attention_mask, **kwargs):
        calls.append((query.shape[2], kwargs.get("cu_seq_lens_q")))
        return varlen_attention_forward(module, query, key, value, attention_mask, **kwargs)

    apply_attention(tiny_vl, VARLEN_ATTENTION)
    try:
        AttentionInterface.register(VARLEN_ATTENTION_VISION, recording)
        with torch.no_grad():
            tiny_vl.model.visual(pixels, grid_thw=grids)
    finally:
        register_varlen_attention()
        apply_attention(tiny_vl, "sdpa")
    assert len(calls) == tiny_vl.config.vision_config.depth
    frames = int(grids[:, 0].sum())
    for tokens, cu in calls:
        assert tokens == pixels.shape[0] and cu is not None and int(cu[-1]) == tokens
    segments = [len(cu) - 1 for _, cu in calls]
    assert segments[-1] == frames                 # the full-attention block: one segment per frame
    assert segments[0] > frames                   # window blocks: several windows per frame


def test_apply_attention_sets_each_config_and_switches_back(tiny_vl):
    assert apply_attention(tiny_vl, VARLEN_ATTENTION) == {
        "": VARLEN_ATTENTION, "vision_config": VARLEN_ATTENTION_VISION, "text_config": VARLEN_ATTENTION}
    assert set(apply_attention(tiny_vl, "sdpa").values()) == {"sdpa"}
    assert attention_of(tiny_vl)["text_config"] == "sdpa"
    with pytest.raises(ValueError, match="model.attention"):
        apply_attention(tiny_vl, "flex")


def test_generate_with_a_left_padded_batch_matches_sdpa(tiny_vl, bpe_tokenizer):
    """Prefill with padding and cached decoding steps give sdpa's scores (rollouts stay valid)."""
    from videorft.loaders.family import family_named
    from videorft.loaders.qwen_inputs import left_pad, token_type_ids

    tok = bpe_tokenizer
    pixels, grids = _videos()
    rows = []
    for grid, question in zip(grids, ["What moves?", "Which colour is the large box on the left?", "Count."]):
        msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        rows.append(tok(family_named("qwen2_5_vl").expand_video(text, [grid.tolist()]), return_tensors="pt")["input_ids"][0])
    ids, mask = left_pad(rows, tok.pad_token_id)
    inputs = {"input_ids": ids, "attention_mask": mask, "pixel_values_videos": pixels, "video_grid_thw": grids,
              "mm_token_type_ids": token_type_ids(ids, tok.convert_tokens_to_ids("<|image_pad|>"),
                                                  tok.convert_tokens_to_ids("<|video_pad|>"))}
    scores = {}
    for name in ("sdpa", VARLEN_ATTENTION):
        apply_attention(tiny_vl, name)
        out = tiny_vl.generate(**inputs, max_new_tokens=5, do_sample=False, output_scores=True,
                               return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
        scores[name] = torch.stack(out.scores)                                   # [steps, B, V]
    apply_attention(tiny_vl, "sdpa")
    assert len(set(mask.sum(-1).tolist())) == 3                                  # really padded
    torch.testing.assert_close(scores[VARLEN_ATTENTION], scores["sdpa"], atol=ATOL_FP32, rtol=1e-4)


@pytest.mark.gpu
def test_flash_varlen_matches_oracle_at_bf16_realistic_lengths():
    pytest.importorskip("flash_attn")
    lengths = [3000, 1700, 64, 2333]                  # several thousand visual/text tokens, odd sizes
    cu = cu_seqlens_from_lengths(lengths, device="cuda")
    for causal, (hq, hkv, dim) in ((True, (28, 4, 128)), (False, (16, 16, 80))):   # Qwen2.5-VL-7B LM / ViT
        exact = _qkv(sum(lengths), hq, hkv, dim, torch.float32, "cuda", grad=True)
        q, k, v = (t.detach().bfloat16().requires_grad_(True) for t in exact)
        ref = varlen_attention_reference(*exact, cu, causal=causal)                # fp32 oracle
        grad_out = torch.randn_like(ref)
        ref_grads = torch.autograd.grad(ref, exact, grad_out)
        errors = {}
        for backend in ("flash_attn", "sdpa_segments"):
            out = varlen_attention(q, k, v, cu, causal=causal, backend=backend)
            grads = torch.autograd.grad(out, (q, k, v), grad_out.to(out.dtype))
            errors[backend] = [(out.float() - ref).abs().max().item()] + [
                (g.float() - r.float()).abs().max().item() for g, r in zip(grads, ref_grads)]
        for err_flash, err_sdpa in zip(errors["flash_attn"], errors["sdpa_segments"]):
            assert err_flash <= 2 * err_sdpa + 5e-2, errors


def test_config_value_resolves_on_cpu():
    from videorft.engine.backends import resolve_attention
    from videorft.engine.config import load_config

    cfg = load_config(None, ["model.attention=videorft_varlen"])
    assert cfg.model.attention == VARLEN_ATTENTION
    assert resolve_attention(cfg.model.attention, torch.device("cpu")) == VARLEN_ATTENTION
    assert resolve_attention("auto", torch.device("cpu")) == "sdpa"
