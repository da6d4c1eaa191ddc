"""fused_linear_grpo_loss: every backend against the naive reference, loss, metrics, gradients.

The torch backend is checked over the full grid (3 aggregations x old_logp given/None x
ref_logp given/None x beta in {0, 0.04} x temperature in {1, 0.7}); the triton kernels,
which run under the interpreter on CPU, over a covering subset of it.
"""

import itertools

import pytest
import torch

from videorft.kernels import LOSS_AGGREGATIONS, fused_linear_grpo_loss, reference
from videorft.kernels.testing import check_close, make_head, old_logp_with_ratios

B, T, H, V = 3, 13, 48, 131


def _batch(dtype=torch.float32, device="cpu", bt=(B, T), hidden_size=H, vocab=V, seed=0):
    """Inputs with one fully masked sequence, ratios on both sides of the clip range, ref noise."""
    hidden, weight, targets = make_head(bt, hidden_size, vocab, dtype, device=device, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    mask = torch.rand(bt, generator=gen) > 0.3
    mask[1] = False
    mask[0, 0] = True
    advantages = torch.randn(bt[0], generator=gen)
    with torch.no_grad():
        logp = reference.linear_logprob(hidden.float(), weight.float(), targets)
    old = old_logp_with_ratios(logp)
    ref = logp.float() + 0.5 * torch.randn(bt, generator=gen).to(device)
    return hidden, weight, targets, mask.to(device), advantages.to(device), old, ref


def _loss_and_grads(backend, hidden, weight, *args, **kwargs):
    h = hidden.detach().clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    fn = reference.fused_linear_grpo_loss if backend == "naive" else fused_linear_grpo_loss
    extra = {} if backend == "naive" else {"backend": backend}
    if backend == "naive":
        extra["upcast"] = kwargs.pop("upcast", True)
    loss, metrics = fn(h, w, *args, **kwargs, **extra)
    loss.backward()
    return loss.detach(), h.grad, w.grad, metrics


GRID = list(itertools.product(LOSS_AGGREGATIONS, [False, True], [False, True], [0.0, 0.04], [1.0, 0.7]))


def _compare_fp32(backend, agg, with_old, with_ref, beta, temperature, **chunks):
    hidden, weight, targets, mask, adv, old, ref = _batch()
    args = (targets, mask, adv, old if with_old else None, ref if with_ref else None, beta, 0.2, 0.28, temperature, agg)
    ours = _loss_and_grads(backend, hidden, weight, *args, **chunks)
    truth = _loss_and_grads("naive", hidden.double(), weight.double(), *args)
    base = _loss_and_grads("naive", hidden, weight, *args)
    for name, o, t, b in zip(("loss", "d_hidden", "d_weight"), ours, truth, base):
        check_close(f"{backend} {name}", o, t, b, torch.float32)
    assert ours[3].keys() == truth[3].keys()
    for key, value in truth[3].items():
        assert ours[3][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert bool((ours[1][1] == 0).all()), "a fully masked sequence must get zero gradient"
    return ours


@pytest.mark.parametrize("agg, with_old, with_ref, beta, temperature", GRID)
def test_torch_backend_full_grid(agg, with_old, with_ref, beta, temperature):
    _compare_fp32("torch", agg, with_old, with_ref, beta, temperature, token_chunk=16, vocab_chunk=64)


@pytest.mark.parametrize("agg, with_old, with_ref, beta, temperature", [
    ("seq-mean-token-mean", False, True, 0.04, 1.0),   # VideoRFT's on-policy setting
    ("token-mean", True, True, 0.04, 0.7),
    ("seq-mean-token-sum-norm", True, False, 0.0, 1.0),
    ("seq-mean-token-mean", True, True, 0.0, 0.7),
])
def test_triton_kernels_grid_subset(agg, with_old, with_ref, beta, temperature):
    _compare_fp32("triton", agg, with_old, with_ref, beta, temperature, token_chunk=16, vocab_chunk=64)


def test_clipping_is_active_in_the_grid_inputs():
    """The shared inputs select both clip branches, so the grid would catch a wrong clip."""
    metrics = _compare_fp32("torch", "token-mean", True, False, 0.0, 1.0)[3]
    assert 0.1 < metrics["clip_fraction"] < 0.9


@pytest.mark.parametrize("backend", ["torch", "triton", "reference"])
@pytest.mark.parametrize("agg", LOSS_AGGREGATIONS)
def test_fully_masked_batch_gives_zero_loss_and_zero_grads(backend, agg):
    hidden, weight, targets, mask, adv, old, ref = _batch()
    mask = torch.zeros_like(mask)
    loss, d_hidden, d_weight, metrics = _loss_and_grads(
        backend, hidden, weight, targets, mask, adv, old, ref, 0.04, 0.2, 0.2, 0.7, agg)
    assert float(loss) == 0.0 and torch.isfinite(loss)
    assert torch.count_nonzero(d_hidden) == 0 and torch.count_nonzero(d_weight) == 0
    assert metrics["tokens"] == 0.0 and metrics["kl"] == 0.0


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_garbage_in_padding_does_not_leak(backend):
    hidden, weight, targets, mask, adv, old, ref = _batch()
    old = torch.where(mask, old, torch.full_like(old, float("-inf")))
    ref = torch.where(mask, ref, torch.full_like(ref, float("nan")))
    ours = _loss_and_grads(backend, hidden, weight, targets, mask, adv, old, ref, 0.04, 0.2, 0.2, 1.0,
                           "token-mean")
    truth = _loss_and_grads("naive", hidden.double(), weight.double(), targets, mask, adv, old, ref,
                            0.04, 0.2, 0.2, 1.0, "token-mean")
    for name, o, t in zip(("loss", "d_hidden", "d_weight"), ours, truth):
        assert bool(torch.isfinite(o).all()), name
        check_close(name, o, t, None, torch.float32)


def test_on_policy_loss_is_minus_mean_advantage():
    """With ratio == 1 and no KL, seq-mean-token-mean is -mean of A over non-empty sequences."""
    hidden, weight, targets, mask, adv, _, _ = _batch()
    loss, metrics = fused_linear_grpo_loss(hidden, weight, targets, mask, adv, beta=0.0, backend="torch")
    keep = mask.any(1)
    assert float(loss) == pytest.approx(float(-adv[keep].mean()), rel=1e-6)
    assert metrics["ratio_mean"] == pytest.approx(1.0) and metrics["clip_fraction"] == 0.0


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_bf16_operands_within_tolerance(backend):
    hidden, weight, targets, mask, adv, old, ref = _batch(torch.bfloat16)
    args = (targets, mask, adv, old, ref, 0.04, 0.2, 0.28, 0.7, "seq-mean-token-mean")
    ours = _loss_and_grads(backend, hidden, weight, *args, token_chunk=16, vocab_chunk=64)
    truth = _loss_and_grads("naive", hidden.float(), weight.float(), *args)
    base = _loss_and_grads("naive", hidden, weight, *args, upcast=False)
    for name, o, t, b in zip(("loss", "d_hidden", "d_weight"), ours, truth, base):
        check_close(f"{backend} bf16 {name}", o, t, b, torch.bfloat16)
    assert ours[3]["clip_fraction"] == truth[3]["clip_fraction"]


@pytest.mark.parametrize("mutate, message", [
    (dict(mask=torch.ones(B, T + 1, dtype=torch.bool)), r"mask must be \[B, T\]"),
    (dict(advantages=torch.zeros(B + 1)), r"advantages must be \[B\]"),
    (dict(old_logp=torch.zeros(B, 2)), r"old_logp must be \[B, T\]"),
    (dict(ref_logp=torch.zeros(T)), r"ref_logp must be \[B, T\]"),
    (dict(loss_agg="sum"), "loss_agg must be one of"),
    (dict(clip_low=1.5), "clip_low"),
])
def test_bad_inputs_name_the_argument(mutate, message):
    hidden, weight, targets, mask, adv, _, _ = _batch()
    kwargs = dict(mask=mask, advantages=adv) | mutate
    with pytest.raises(ValueError, match=message):
        fused_linear_grpo_loss(hidden, weight, targets, backend="torch", **kwargs)


def test_flat_hidden_is_rejected_for_the_loss():
    hidden, weight, targets, mask, adv, _, _ = _batch()
    with pytest.raises(ValueError, match=r"\[B, T, H\]"):
        fused_linear_grpo_loss(hidden.reshape(B * T, H), weight, targets.reshape(-1), mask, adv)


# ---------------------------------------------------------------- CUDA, real shapes

@pytest.mark.gpu
@pytest.mark.parametrize("agg", LOSS_AGGREGATIONS)
def test_cuda_triton_real_shapes_bf16(agg):
    hidden, weight, targets, mask, adv, old, ref = _batch(torch.bfloat16, "cuda", bt=(4, 500),
                                                          hidden_size=3584, vocab=151936)
    args = (targets, mask, adv, old, ref, 0.04, 0.2, 0.28, 1.0, agg)
    ours = _loss_and_grads("triton", hidden, weight, *args)
    truth = _loss_and_grads("naive", hidden.float(), weight.float(), *args)
    base = _loss_and_grads("naive", hidden, weight, *args, upcast=False)
    for name, o, t, b in zip(("loss", "d_hidden", "d_weight"), ours, truth, base):
        check_close(f"cuda bf16 {name}", o, t, b, torch.bfloat16)
