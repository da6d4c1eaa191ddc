"""The closed-form per-token GRPO derivative and the aggregation weights, against autograd.

grpo_math.dterm must equal what autograd gives for the reference formula everywhere,
including the non-smooth points: ratio exactly on a clip bound, ratio == 1 (on-policy ties),
zero advantages, and the KL log-ratio exactly on its +-10 clamp.
"""

import pytest
import torch

from videorft.kernels import reference
from videorft.kernels.grpo_math import grpo_token_terms, token_weights


def _logp_hitting(old: float, bound: float) -> float:
    """An fp32 logp with exp(logp - old) == fp32(bound) exactly (walks ulps near the solution)."""
    target = torch.tensor(bound, dtype=torch.float32)
    base = torch.tensor(old, dtype=torch.float32)
    logp = base + torch.log(target)
    for _ in range(256):
        r = torch.exp(logp - base)
        if r == target:
            return float(logp)
        logp = torch.nextafter(logp, torch.tensor(float("inf") if r < target else float("-inf")))
    raise AssertionError(f"no fp32 logp puts the ratio exactly on {bound}")


def _cases(clip_low: float, clip_high: float):
    """(logp, old, ref, adv) rows covering the kinks of the objective, fp32 [N]."""
    old = 0.0  # fine fp32 spacing near 0 lets a logp put the ratio exactly on a bound
    logps = [old, _logp_hitting(old, 1 - clip_low), _logp_hitting(old, 1 + clip_high),
             -0.7, -0.1, 0.1, 0.7, -2.0, -3.0]  # -2, -3: ref - logp is exactly +-10 below
    kl_gaps = [10.0, -10.0, 12.0, -12.0, 0.3, 0.0]
    rows = []
    for logp in logps:
        for gap in kl_gaps:
            for adv in (-1.3, 0.0, 0.8):
                rows.append((logp, old, logp + gap, adv))
    return [torch.tensor(col, dtype=torch.float32) for col in zip(*rows)]


@pytest.mark.parametrize("with_old, with_ref, beta", [(True, True, 0.04), (True, False, 0.0),
                                                       (False, True, 0.5), (True, True, 0.0)])
def test_closed_form_derivative_equals_autograd(with_old, with_ref, beta):
    clip_low, clip_high = 0.2, 0.28
    logp, old, ref, adv = _cases(clip_low, clip_high)
    old, ref = (old if with_old else None), (ref if with_ref else None)
    active = torch.ones_like(logp, dtype=torch.bool)
    ours = grpo_token_terms(logp, active, adv, old, ref, beta, clip_low, clip_high)
    x = logp.clone().requires_grad_()
    term, ratio, kl = reference.grpo_token_term(x, active, adv, old, ref, beta, clip_low, clip_high)
    term.sum().backward()
    torch.testing.assert_close(ours.term, term.detach(), rtol=0, atol=0)
    torch.testing.assert_close(ours.dterm, x.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.kl, kl.detach(), rtol=0, atol=0)
    torch.testing.assert_close(ours.ratio, ratio.detach(), rtol=0, atol=0)


def test_the_boundary_cases_are_really_on_the_bounds():
    logp, old, _, _ = _cases(0.2, 0.28)
    ratio = torch.exp(logp - old)
    assert bool((ratio == torch.tensor(0.8)).any()) and bool((ratio == torch.tensor(1.28)).any())


@pytest.mark.parametrize("agg", reference.LOSS_AGGREGATIONS)
@pytest.mark.parametrize("mask_kind", ["bool", "float", "empty_row", "all_empty"])
def test_token_weights_reproduce_the_reference_aggregation(agg, mask_kind):
    gen = torch.Generator().manual_seed(3)
    term = torch.randn(4, 9, generator=gen, dtype=torch.float64)
    mask = (torch.rand(4, 9, generator=gen) > 0.4).to(torch.float64)
    if mask_kind == "float":
        mask = mask * torch.rand(4, 9, generator=gen, dtype=torch.float64)
    if mask_kind == "empty_row":
        mask[2] = 0
    if mask_kind == "all_empty":
        mask.zero_()
    weights = token_weights(mask, agg).double()
    expected = reference._aggregate(term, mask, agg)
    assert float((weights * term).sum()) == pytest.approx(float(expected), rel=1e-6, abs=1e-12)
    assert bool((weights[mask == 0] == 0).all())


def test_unknown_aggregation_is_rejected():
    with pytest.raises(ValueError, match="loss_agg must be one of"):
        token_weights(torch.ones(2, 3), "mean")
